"""Verification metrics: FVC comparison pairs, ROC, TAR at a FAR, the equal error rate and rank-1 identification,
as a functional core (numpy scores; torch embeddings) and :class:`VerificationMetrics`, a torchmetrics ``Metric``
that collects embeddings across batches and processes.

Scores are similarities (higher = more likely the same finger). Conventions (FVC / NIST):

- genuine pairs: every pair of impressions of the same finger; impostor pairs: the first impression of every
  finger against the first impression of every other finger (``impostors="fvc"``, F (F - 1) / 2 pairs), or every
  pair of samples of different fingers (``impostors="all"``, about (F m)^2 / 2 pairs for F fingers of m
  impressions: zero false accepts in N impostor pairs only bound the FAR at ~3 / N, so TAR@FAR=1e-4 needs
  >= 30,000 of them);
- ``TAR@FAR=x``: the threshold is the ``(1 - x)`` quantile of the impostor scores -- taken as the score of the
  ``floor(x * n) + 1``-th best impostor, so at most a share ``x`` of impostors scores above it -- and TAR is the
  share of genuine scores above it (the achieved FAR never exceeds ``x``);
- EER: the error rate where the false accept rate equals the false reject rate (linear interpolation between
  the two ROC points that bracket the crossing);
- rank-1: the gallery holds the first impression of every finger, every other impression is a probe; a probe is
  identified when its most similar gallery sample (cosine) is of its finger.

Probes and galleries may be embedded apart (``gallery`` arguments: e.g. decoded probes against the uncompressed
enrolment of the IPR codec's evaluation): a pair ``(i, j)``, ``i`` the earlier impression, is then scored as
``gallery[i] . probe[j]``; without them both sides are the same embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

IMPOSTOR_PROTOCOLS = ("fvc", "all")


def fvc_pairs(finger: np.ndarray, impression: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(genuine [G, 2], impostor [I, 2])`` of the FVC protocol over samples labelled by finger.

    ``impression`` orders the impressions of a finger; the lowest one is its "first" impression. With F fingers
    of m impressions each, G = F m (m - 1) / 2 and I = F (F - 1) / 2.
    """
    finger, impression = np.asarray(finger), np.asarray(impression)
    if finger.size == 0 and impression.size == 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros((0, 2), dtype=np.int64)
    if finger.shape != impression.shape or finger.ndim != 1:
        raise ValueError(f"fvc_pairs: finger and impression must be equal-length 1-D arrays, got {finger.shape} "
                         f"and {impression.shape}.")  # fmt: skip
    order = np.lexsort((impression, finger))
    sorted_fingers = finger[order]
    starts = np.flatnonzero(np.r_[True, sorted_fingers[1:] != sorted_fingers[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    genuine = []
    for size in np.unique(sizes[sizes > 1]):
        i, j = np.triu_indices(size, k=1)
        group_starts = starts[sizes == size][:, None]
        genuine.append(np.stack([order[group_starts + i], order[group_starts + j]], axis=-1).reshape(-1, 2))
    firsts = order[starts]
    i, j = np.triu_indices(len(firsts), k=1)
    genuine_pairs = np.concatenate(genuine) if genuine else np.zeros((0, 2), dtype=np.int64)
    return genuine_pairs.astype(np.int64), np.stack([firsts[i], firsts[j]], axis=1).astype(np.int64)


def _check_scores(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    genuine, impostor = np.asarray(genuine, dtype=np.float64).ravel(), np.asarray(impostor, dtype=np.float64).ravel()
    if len(genuine) == 0 or len(impostor) == 0:
        raise ValueError(f"Verification needs genuine and impostor scores, got {len(genuine)} and {len(impostor)}.")
    return genuine, impostor


def roc(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(far, tar, thresholds)`` for accepting scores ``>= threshold``, thresholds decreasing (from +inf)."""
    genuine, impostor = _check_scores(genuine, impostor)
    thresholds = np.r_[np.inf, np.unique(np.concatenate([genuine, impostor]))[::-1]]
    g, i = np.sort(genuine), np.sort(impostor)
    tar = 1.0 - np.searchsorted(g, thresholds, side="left") / len(g)
    far = 1.0 - np.searchsorted(i, thresholds, side="left") / len(i)
    return far, tar, thresholds


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> float:
    """Share of genuine scores above the threshold that at most a ``far`` share of impostor scores exceed."""
    genuine, impostor = _check_scores(genuine, impostor)
    if not 0.0 < far < 1.0:
        raise ValueError(f"tar_at_far: far must be in (0, 1), got {far}.")
    ranked = np.sort(impostor)[::-1]
    threshold = ranked[min(int(np.floor(far * len(ranked))), len(ranked) - 1)]
    return float(np.mean(genuine > threshold))


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Error rate where FAR = FRR along the ROC."""
    far, tar, _ = roc(genuine, impostor)
    frr = 1.0 - tar
    k = int(np.argmax(far >= frr))  # first point where FAR has caught up with the falling FRR
    if k == 0:
        return float(far[0])
    d0, d1 = frr[k - 1] - far[k - 1], frr[k] - far[k]
    w = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(far[k - 1] + w * (far[k] - far[k - 1]))


def far_name(far: float) -> str:
    """Metric leaf of a TAR at ``far``: ``tar@far=1e-3``."""
    mantissa, exponent = f"{far:.0e}".split("e")
    return f"tar@far={mantissa}e{int(exponent)}"


def _probe_gallery(embeddings: torch.Tensor, gallery: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised ``(probe, gallery)`` rows; the gallery is the probes themselves when not given."""
    e = F.normalize(embeddings.float(), dim=1)
    if gallery is None:
        return e, e
    if gallery.shape != embeddings.shape:
        raise ValueError(f"Gallery embeddings {tuple(gallery.shape)} must match the probes' {tuple(embeddings.shape)}.")
    return e, F.normalize(gallery.float(), dim=1)


def pair_similarities(
    embeddings: torch.Tensor, pairs: torch.Tensor, chunk: int = 1 << 16, gallery: torch.Tensor | None = None
) -> torch.Tensor:
    """Cosine similarity of the row pairs ``pairs [P, 2]`` of ``embeddings [N, D]`` (gathered ``chunk`` pairs at a
    time, so memory stays bounded for the F (F - 1) / 2 impostor pairs of a large set); with ``gallery``,
    ``gallery[p0] . embeddings[p1]``."""
    e, g = _probe_gallery(embeddings, gallery)
    if len(pairs) == 0:
        return e.new_zeros(0)
    return torch.cat([(g[p[:, 0]] * e[p[:, 1]]).sum(1) for p in pairs.split(chunk)])


def all_impostor_scores(
    embeddings: torch.Tensor, finger: np.ndarray, chunk: int = 2048, gallery: torch.Tensor | None = None
) -> torch.Tensor:
    """Cosine similarity of every pair ``i < j`` of samples of different fingers (row blocks of ``chunk`` samples
    against all later ones, so memory is bounded by ``chunk x N`` besides the scores themselves); with ``gallery``,
    ``gallery[i] . embeddings[j]``."""
    e, g = _probe_gallery(embeddings, gallery)
    fingers = torch.as_tensor(np.asarray(finger), device=e.device)
    n, scores = len(e), []
    columns = torch.arange(n, device=e.device)
    for start in range(0, n, chunk):
        rows = columns[start : start + chunk]
        later = columns[None, :] > rows[:, None]
        scores.append((g[rows] @ e.T)[later & (fingers[rows, None] != fingers[None, :])])
    return torch.cat(scores) if scores else e.new_zeros(0)


def rank1_identification(
    embeddings: torch.Tensor,
    finger: np.ndarray,
    impression: np.ndarray,
    chunk: int = 4096,
    gallery: torch.Tensor | None = None,
) -> float:
    """Share of probes whose most similar gallery sample (cosine) is of their finger; the gallery is the first
    (lowest) impression of every finger (its row of ``gallery`` where given), the probes are the other impressions
    (``nan`` when there are none)."""
    finger, impression = np.asarray(finger), np.asarray(impression)
    order = np.lexsort((impression, finger))
    first = np.r_[True, finger[order][1:] != finger[order][:-1]]
    first_rows, probes = order[first], order[~first]
    if len(probes) == 0:
        return float("nan")
    e, enrolled = _probe_gallery(embeddings, gallery)
    g = enrolled[torch.as_tensor(first_rows, device=e.device)]
    probe_rows = torch.as_tensor(probes, device=e.device)
    nearest = torch.cat([(e[rows] @ g.T).argmax(1) for rows in probe_rows.split(chunk)]).cpu().numpy()
    return float(np.mean(finger[first_rows][nearest] == finger[probes]))


class VerificationMetrics(Metric):
    """TAR at each FAR of ``fars``, EER and rank-1 of embeddings labelled by finger and impression (FVC protocol).

    ``update(embeddings [N, D], finger [N], impression [N], index [N])`` over batches (and processes: the states are
    concatenated across ranks); ``compute()`` keeps one row per sample ``index`` (DistributedSampler pads ranks
    with repeated samples), scores the genuine and impostor pairs (``impostors``: ``"fvc"`` or ``"all"``, see the
    module docstring) by cosine similarity and returns ``{"tar@far=1e-2": ..., "eer": ..., "rank1": ...,
    "genuine_pairs": G, "impostor_pairs": I}``. The per-pair ``genuine`` / ``impostor`` scores and the pairs'
    sample indices (``genuine_index`` / ``impostor_index`` ``[P, 2]``; no ``impostor_index`` for ``"all"``, whose
    pairs are every cross-finger pair in sample order) of the last ``compute()`` are kept in :attr:`scores`.
    ``update(..., gallery=...)`` (in every update or none) scores probes against separately embedded gallery rows
    of the same samples (module docstring).
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    def __init__(self, fars: Sequence[float] = (1e-2, 1e-3, 1e-4), impostors: str = "fvc", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if impostors not in IMPOSTOR_PROTOCOLS:
            raise ValueError(f"Verification impostors must be one of {IMPOSTOR_PROTOCOLS}, got '{impostors}'.")
        self.fars = tuple(float(f) for f in fars)
        self.impostors = impostors
        for name in ("embeddings", "gallery", "finger", "impression", "index"):
            self.add_state(name, default=[], dist_reduce_fx="cat")
        self.scores: dict[str, np.ndarray] = {}

    def update(
        self,
        embeddings: torch.Tensor,
        finger: torch.Tensor,
        impression: torch.Tensor,
        index: torch.Tensor,
        gallery: torch.Tensor | None = None,
    ) -> None:
        n = len(embeddings)
        if embeddings.ndim != 2 or any(t.shape != (n,) for t in (finger, impression, index)):
            raise ValueError(
                f"VerificationMetrics.update needs embeddings [N, D] and finger / impression / index [N], got "
                f"{tuple(embeddings.shape)}, {tuple(finger.shape)}, {tuple(impression.shape)}, {tuple(index.shape)}."
            )
        if (gallery is None) != (len(self.gallery) == 0) and len(self.embeddings):
            raise ValueError("VerificationMetrics.update: give gallery embeddings in every update or in none.")
        if gallery is not None:
            if gallery.shape != embeddings.shape:
                raise ValueError(f"Gallery embeddings {tuple(gallery.shape)} must match {tuple(embeddings.shape)}.")
            self.gallery.append(gallery.detach().float())
        self.embeddings.append(embeddings.detach().float())
        self.finger.append(finger.long())
        self.impression.append(impression.long())
        self.index.append(index.long())

    def _unique_samples(self) -> tuple[torch.Tensor, torch.Tensor | None, np.ndarray, np.ndarray, np.ndarray]:
        """``(embeddings, gallery, finger, impression, index)`` with one row per sample index (its first
        occurrence); ``gallery`` is ``None`` when none was given."""
        if isinstance(self.index, list) and not self.index:  # a list before, a tensor after a sync across ranks
            raise ValueError("VerificationMetrics.compute: no samples were given (update was never called).")
        index = dim_zero_cat(self.index).cpu().numpy()
        finger, impression = dim_zero_cat(self.finger).cpu().numpy(), dim_zero_cat(self.impression).cpu().numpy()
        unique, first, inverse = np.unique(index, return_index=True, return_inverse=True)
        clash = (finger[first][inverse] != finger) | (impression[first][inverse] != impression)
        if clash.any():
            raise ValueError(
                f"VerificationMetrics: sample index {index[clash][0]} came with different finger / impression labels."
            )
        rows = torch.as_tensor(first, device=self.device)
        embeddings = dim_zero_cat(self.embeddings)[rows]
        # a list before a sync across ranks, a tensor after (empty where no rank gave a gallery)
        has_gallery = len(self.gallery) > 0 if isinstance(self.gallery, list) else self.gallery.numel() > 0
        gallery = dim_zero_cat(self.gallery)[rows] if has_gallery else None
        return embeddings, gallery, finger[first], impression[first], unique

    def compute(self) -> dict[str, torch.Tensor]:
        embeddings, gallery, finger, impression, index = self._unique_samples()
        genuine_pairs, impostor_pairs = fvc_pairs(finger, impression)
        device = embeddings.device
        genuine = pair_similarities(embeddings, torch.as_tensor(genuine_pairs, device=device), gallery=gallery)
        self.scores = {"genuine": genuine.cpu().double().numpy(), "genuine_index": index[genuine_pairs]}
        if self.impostors == "all":
            impostor = all_impostor_scores(embeddings, finger, gallery=gallery)
        else:
            impostor = pair_similarities(embeddings, torch.as_tensor(impostor_pairs, device=device), gallery=gallery)
            self.scores["impostor_index"] = index[impostor_pairs]
        self.scores["impostor"] = impostor.cpu().double().numpy()
        genuine, impostor = self.scores["genuine"], self.scores["impostor"]
        results = {far_name(far): tar_at_far(genuine, impostor, far) for far in self.fars}
        results["eer"] = equal_error_rate(genuine, impostor)
        results["rank1"] = rank1_identification(embeddings, finger, impression, gallery=gallery)
        results["genuine_pairs"], results["impostor_pairs"] = len(genuine), len(impostor)
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in results.items()}

    def reset(self) -> None:
        super().reset()
        self.scores = {}

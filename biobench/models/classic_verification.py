"""A classic minutiae matcher (afis: NIST MINDTCT + Bozorth3) scored like the embedders, through ``biobench-eval``:

biobench-eval experiment=verify_bozorth3                              # MINDTCT templates of the served images
biobench-eval experiment=verify_bozorth3 model.minutiae_source=truth  # the generator's ground-truth minutiae

The system has no weights (``requires_checkpoint = False``) and only a test stage. Test batches are collected
(grey pixels, or the served ground-truth minutiae); at the end of the test epoch the templates are extracted and
the FVC pairs of :func:`~biobench.metrics.verification.fvc_pairs` are scored by Bozorth3 (raw scores, higher =
same finger) in ``workers`` processes. It logs ``test/tar@far=1e-2`` / ``1e-3`` / ``1e-4`` and ``test/eer`` and
writes the artifacts of :func:`~biobench.models.recognizer_verification.save_verification_artifacts` (ROC / DET,
per-pair scores, TAR@FAR table) plus ``classic_templates.npz`` (minutiae per sample).

``test/rank1`` needs every probe against every gallery sample: F (m - 1) x F matches for F fingers of m
impressions, against F m (m - 1) / 2 + F (F - 1) / 2 for the FVC pairs (40 x 4: 4,800 against 1,020), so it is
computed only with ``rank1=true``; ties (common with integer scores) go to the first gallery sample.

One process only: MINDTCT and Bozorth3 are parallelised by ``workers``, not by DDP ranks, and a run on several
devices is refused (its ranks would each see a part of the test set). MINDTCT expects about 500 dpi: serve the
generator's native size (``data.image_size=null``, 320 px), as ``experiment=verify_bozorth3`` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from biobench.contracts import DataSpec
from biobench.metrics.afis_matcher import extract_templates, require_afis, score_pairs, to_afis, to_uint8
from biobench.metrics.verification import equal_error_rate, far_name, fvc_pairs, tar_at_far
from biobench.models.base import System
from biobench.models.recognizer_verification import FARS, save_verification_artifacts
from biobench.utils.artifacts import save_arrays

SOURCES = ("mindtct", "truth")
BATCH_KEYS = ("image", "finger", "impression", "index")


def gallery_probes(finger: np.ndarray, impression: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample positions of the gallery (each finger's lowest impression) and of the probes (all others)."""
    order = np.lexsort((impression, finger))
    first = np.r_[True, finger[order][1:] != finger[order][:-1]]
    return order[first], order[~first]


class ClassicVerification(System):
    """Scores afis MINDTCT + Bozorth3 by the FVC verification protocol (test stage only; see the module docstring).

    Args:
        spec: the :class:`DataSpec` of the served images, passed by the entrypoint (``data_args = ("spec",)``).
        minutiae_source: ``mindtct`` (extract from the served images) or ``truth`` (the served ground-truth
            minutiae of synthetic data: the matcher alone, without extraction errors).
        workers: processes for extraction and matching (0 = in this process).
        rank1: also compute rank-1 identification (every probe against every gallery sample; costly).
    """

    data_args = ("spec",)
    metrics = (*(f"test/{far_name(far)}" for far in FARS), "test/eer")  # and test/rank1 with rank1=true
    requires_checkpoint = False

    def __init__(self, spec: DataSpec, minutiae_source: str = "mindtct", workers: int = 1, rank1: bool = False):
        super().__init__()
        if minutiae_source not in SOURCES:
            raise ValueError(f"model.minutiae_source must be one of {SOURCES}, got '{minutiae_source}'.")
        if workers < 0:
            raise ValueError(f"model.workers must be >= 0 (0 = in this process), got {workers}.")
        require_afis()  # fail before any data is rendered
        self.spec, self.minutiae_source, self.workers, self.rank1 = spec, minutiae_source, int(workers), bool(rank1)
        self._samples: dict[int, tuple[int, int, np.ndarray]] = {}
        self._shape: tuple[int, int] | None = None

    def on_test_start(self) -> None:
        if self.trainer.world_size > 1:
            raise ValueError(
                f"ClassicVerification runs in one process, got {self.trainer.world_size} (trainer.devices / "
                "num_nodes): set trainer.devices=1 and parallelise MINDTCT and Bozorth3 with model.workers=N."
            )

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        keys = BATCH_KEYS + (("minutiae", "n_minutiae") if self.minutiae_source == "truth" else ())
        missing = [k for k in keys if k not in batch]
        if missing:
            raise KeyError(
                f"ClassicVerification needs test samples with {list(keys)}, the data serves no {missing}: use data "
                "labelled by finger and impression (e.g. data=fingerprints data.task=finger)."
            )
        self._shape = tuple(batch["image"].shape[-2:])
        if self.minutiae_source == "truth":
            rows, counts = batch["minutiae"].cpu().numpy(), batch["n_minutiae"].cpu().numpy()
            items = [r[:k] for r, k in zip(rows, counts, strict=True)]
        else:
            items = list(to_uint8(batch["image"], self.spec))
        labels = (batch[k].cpu().numpy() for k in ("index", "finger", "impression"))
        for i, f, m, item in zip(*labels, items, strict=True):
            self._samples.setdefault(int(i), (int(f), int(m), item))  # one entry per sample index

    def _templates(self, items: list[np.ndarray]) -> list[np.ndarray]:
        if self.minutiae_source == "mindtct":
            return extract_templates(items, workers=self.workers)
        if not any(len(rows) for rows in items):
            raise ValueError(
                "model.minutiae_source=truth needs ground-truth minutiae, but every test sample has n_minutiae = 0 "
                "(real folders have none): use model.minutiae_source=mindtct."
            )
        return [to_afis(rows) for rows in items]

    def on_test_epoch_end(self) -> None:
        if not self._samples:
            raise ValueError("ClassicVerification: no test samples were given (test_step never ran).")
        index = np.array(sorted(self._samples))
        finger, impression, items = zip(*(self._samples[i] for i in index), strict=True)
        finger, impression = np.array(finger), np.array(impression)
        templates = self._templates(list(items))
        genuine_pairs, impostor_pairs = fvc_pairs(finger, impression)
        wanted = [genuine_pairs, impostor_pairs]
        if self.rank1:
            gallery, probes = gallery_probes(finger, impression)
            wanted.append(np.stack(np.meshgrid(probes, gallery, indexing="ij"), -1).reshape(-1, 2))
        # Bozorth3 is symmetric (the best of both directions): score every unordered pair once
        every = np.sort(np.concatenate(wanted), axis=1)
        unique, inverse = np.unique(every, axis=0, return_inverse=True)
        scored = score_pairs(templates, unique, self._shape, workers=self.workers)[inverse.ravel()]
        genuine, impostor, rest = np.split(scored, np.cumsum([len(genuine_pairs), len(impostor_pairs)]))
        results = {far_name(far): tar_at_far(genuine, impostor, far) for far in FARS}
        results["eer"] = equal_error_rate(genuine, impostor)
        if self.rank1:
            nearest = gallery[rest.reshape(len(probes), len(gallery)).argmax(1)]
            results["rank1"] = float(np.mean(finger[nearest] == finger[probes])) if len(probes) else float("nan")
        self.log_dict({f"test/{k}": float(v) for k, v in results.items()})
        scores = {"genuine": genuine, "impostor": impostor, "genuine_index": index[genuine_pairs],
                  "impostor_index": index[impostor_pairs]}  # fmt: skip
        save_verification_artifacts(self.trainer, results, scores)
        save_arrays(self.trainer, "classic_templates", {"index": index, "n_minutiae": [len(t) for t in templates]})
        self._samples.clear()

    def check_checkpoint(self, checkpoint: dict[str, Any], path: str) -> None:
        raise ValueError(
            f"ClassicVerification (MINDTCT + Bozorth3) has no weights of its own, so ckpt_path='{path}' has nothing "
            "to load into: drop ckpt_path."
        )

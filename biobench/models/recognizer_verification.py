"""Verification of any Recognizer on data labelled by finger and impression (FVC protocol), through ``biobench-eval``:

biobench-eval experiment=verify_fingerprints recognizer=classifier recognizer.path=<run>/checkpoints/best.ckpt

The system has no weights of its own (``requires_checkpoint = False``) and only a test stage: every test batch is
embedded by the frozen recognizer and collected by :class:`~biobench.metrics.verification.VerificationMetrics`;
at the end of the test epoch it logs ``test/tar@far=1e-2`` / ``1e-3`` / ``1e-4``, ``test/eer`` and ``test/rank1``
and writes the artifacts ``verification_roc.png`` (ROC and DET), ``verification_scores.npz`` (per-pair scores
and sample indices) and ``tar_at_far.csv``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure

from biobench.contracts import DataSpec, Recognizer
from biobench.metrics.verification import VerificationMetrics, far_name, roc
from biobench.models.base import System
from biobench.recognizers import build_recognizer
from biobench.utils.artifacts import save_arrays, save_figure, save_table

FARS = (1e-2, 1e-3, 1e-4)
BATCH_KEYS = ("image", "finger", "impression", "index")
PAIR_COUNTS = ("test/genuine_pairs", "test/impostor_pairs")


def roc_det_figure(genuine: np.ndarray, impostor: np.ndarray) -> Figure:
    """ROC (TAR vs FAR) and DET (FRR vs FAR) on log axes; points with a zero rate are left off the log scales (an
    axis with no such point, e.g. from a handful of pairs, stays linear)."""
    far, tar, _ = roc(genuine, impostor)
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax_roc, ax_det = fig.subplots(1, 2)
    on_roc = far > 0
    on_det = on_roc & (tar < 1)
    ax_roc.plot(far[on_roc], tar[on_roc])
    ax_roc.set(xlabel="false accept rate", ylabel="true accept rate", title="ROC", ylim=(0, 1.01))
    ax_det.plot(far[on_det], 1 - tar[on_det])
    ax_det.set(xlabel="false accept rate", ylabel="false reject rate", title="DET")
    if on_roc.any():
        ax_roc.set_xscale("log")
    if on_det.any():
        ax_det.set(xscale="log", yscale="log")
    for ax in (ax_roc, ax_det):
        ax.grid(True, which="both", alpha=0.3)
    return fig


def save_verification_artifacts(trainer: pl.Trainer, results: dict[str, float], scores: dict[str, np.ndarray]) -> None:
    """The ROC / DET figure, the per-pair scores and a TAR@FAR table of one evaluation under ``<run>/artifacts``."""
    save_figure(trainer, "verification_roc", roc_det_figure(scores["genuine"], scores["impostor"]))
    save_arrays(trainer, "verification_scores", scores)
    save_table(trainer, "tar_at_far", [{"far": far, "tar": results[far_name(far)]} for far in FARS])


class RecognizerVerification(System):
    """Scores a frozen Recognizer by the FVC verification protocol (test stage only).

    Args:
        recognizer: a Recognizer, or a factory taking ``spec=`` (a ``conf/recognizer/`` config, ``_partial_: true``).
        spec: the :class:`DataSpec` of the served images, passed by the entrypoint (``data_args = ("spec",)``).
        impostors: ``"fvc"`` (first impressions of every two fingers) or ``"all"`` (every cross-finger pair).
    """

    data_args = ("spec",)
    metrics = (*(f"test/{far_name(far)}" for far in FARS), "test/eer", "test/rank1", *PAIR_COUNTS)
    requires_checkpoint = False

    def __init__(
        self, recognizer: Recognizer | Callable[..., Recognizer], spec: DataSpec, impostors: str = "fvc"
    ) -> None:
        super().__init__()
        self.recognizer = build_recognizer(recognizer, spec)
        self.test_metrics = VerificationMetrics(FARS, impostors=impostors)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise KeyError(
                f"RecognizerVerification needs test samples with {list(BATCH_KEYS)}, the data serves no {missing}: "
                "use data labelled by finger and impression (e.g. data=fingerprints data.task=finger)."
            )
        embeddings = self.recognizer.embed(batch["image"])
        self.test_metrics.update(embeddings, batch["finger"], batch["impression"], batch["index"])

    def on_test_epoch_end(self) -> None:
        results = self.test_metrics.compute()  # identical on every rank (states gathered across processes)
        self.log_dict({f"test/{k}": v for k, v in results.items()}, sync_dist=True)
        save_verification_artifacts(self.trainer, {k: float(v) for k, v in results.items()}, self.test_metrics.scores)
        self.test_metrics.reset()

    def check_checkpoint(self, checkpoint: dict[str, Any], path: str) -> None:
        raise ValueError(
            f"RecognizerVerification has no weights of its own, so ckpt_path='{path}' has nothing to load into: "
            "give the recognizer's file as recognizer.path (e.g. recognizer=classifier recognizer.path=<ckpt>)."
        )

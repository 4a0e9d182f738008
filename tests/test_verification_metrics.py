"""VerificationMetrics against the functional core and scikit-learn; de-duplication by sample index (as under DDP);
the RecognizerVerification system's logged metrics and artifacts, in one process and in two (gloo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve
from torch import nn
from torch.utils.data import DataLoader, Dataset

from biobench.contracts import DataSpec
from biobench.metrics.verification import (
    VerificationMetrics,
    equal_error_rate,
    fvc_pairs,
    rank1_identification,
    tar_at_far,
)
from biobench.models.recognizer_verification import RecognizerVerification
from biobench.recognizers import FrozenRecognizer

FARS = (1e-2, 1e-3, 1e-4)
TAR_KEYS = ("tar@far=1e-2", "tar@far=1e-3", "tar@far=1e-4")


def prints(fingers: int = 60, impressions: int = 4, dim: int = 16, noise: float = 0.9, seed: int = 0):
    """Embeddings of ``fingers`` identities x ``impressions`` (a centre + noise: genuine and impostor scores overlap),
    with finger, impression and sample index, in a shuffled order."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(fingers, dim))
    finger = np.repeat(np.arange(fingers), impressions)
    impression = np.tile(np.arange(impressions), fingers)
    emb = centres[finger] + noise * rng.normal(size=(len(finger), dim))
    order = rng.permutation(len(finger))
    return (
        torch.tensor(emb[order], dtype=torch.float32),
        torch.tensor(finger[order]),
        torch.tensor(impression[order]),
        torch.arange(len(finger)),
    )


def run_metric(emb, finger, impression, index, batch: int = 7) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    metric = VerificationMetrics(FARS)
    for s in range(0, len(emb), batch):
        metric.update(emb[s : s + batch], finger[s : s + batch], impression[s : s + batch], index[s : s + batch])
    return {k: float(v) for k, v in metric.compute().items()}, metric.scores


def test_equals_the_functional_core_on_the_same_scores() -> None:
    emb, finger, impression, index = prints()
    results, scores = run_metric(emb, finger, impression, index)
    e = emb.double().numpy()
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    genuine_pairs, impostor_pairs = fvc_pairs(finger.numpy(), impression.numpy())
    genuine = (e[genuine_pairs[:, 0]] * e[genuine_pairs[:, 1]]).sum(1)
    impostor = (e[impostor_pairs[:, 0]] * e[impostor_pairs[:, 1]]).sum(1)
    assert len(scores["genuine"]) == 60 * 4 * 3 // 2 and len(scores["impostor"]) == 60 * 59 // 2
    np.testing.assert_allclose(scores["genuine"], genuine, atol=1e-6)  # float32 cosine vs float64
    np.testing.assert_allclose(scores["impostor"], impostor, atol=1e-6)
    np.testing.assert_array_equal(scores["genuine_index"], index.numpy()[genuine_pairs])
    for far, key in zip(FARS, TAR_KEYS, strict=True):
        assert results[key] == pytest.approx(tar_at_far(scores["genuine"], scores["impostor"], far), abs=1e-7)
    assert results["eer"] == pytest.approx(equal_error_rate(scores["genuine"], scores["impostor"]), abs=1e-7)
    assert 0.02 < results["eer"] < 0.4  # overlapping scores: a non-trivial operating point
    assert set(results) == {*TAR_KEYS, "eer", "rank1", "genuine_pairs", "impostor_pairs"}
    assert (results["genuine_pairs"], results["impostor_pairs"]) == (len(genuine), len(impostor))


def test_all_impostors_score_every_cross_finger_pair() -> None:
    """``impostors="all"``: every pair of samples of different fingers, once (brute force over i < j)."""
    emb, finger, impression, index = prints(fingers=12, impressions=3)
    metric = VerificationMetrics(FARS, impostors="all")
    metric.update(emb, finger, impression, index)
    results = {k: float(v) for k, v in metric.compute().items()}
    e = torch.nn.functional.normalize(emb.double(), dim=1).numpy()
    i, j = np.triu_indices(len(e), k=1)
    cross = finger.numpy()[i] != finger.numpy()[j]
    expected = (e[i[cross]] * e[j[cross]]).sum(1)
    assert results["impostor_pairs"] == len(expected) == 36 * 35 // 2 - 12 * 3
    np.testing.assert_allclose(np.sort(metric.scores["impostor"]), np.sort(expected), atol=1e-6)
    assert "impostor_index" not in metric.scores
    assert results["genuine_pairs"] == 12 * 3
    with pytest.raises(ValueError, match="impostors must be one of"):
        VerificationMetrics(FARS, impostors="first")


def test_eer_and_tar_agree_with_scikit_learn() -> None:
    """TAR@FAR: the best TPR of scikit-learn's ROC points with FPR <= far (drop_intermediate=False keeps every
    threshold) -- exactly ours for continuous scores, since both accept the genuine scores above the impostor
    score ranked floor(far * I) + 1. EER: the classic brentq root of 1 - x = TPR(x) on scikit-learn's linearly
    interpolated ROC; ours is the FAR = FRR crossing of the same piecewise-linear curve, so they differ only by
    brentq's tolerance (2e-12) -- 1e-9 allows for float rounding in the two interpolations."""
    emb, finger, impression, index = prints(seed=1)
    results, scores = run_metric(emb, finger, impression, index)
    y = np.r_[np.ones(len(scores["genuine"])), np.zeros(len(scores["impostor"]))]
    fpr, tpr, _ = roc_curve(y, np.r_[scores["genuine"], scores["impostor"]], drop_intermediate=False)
    for far, key in zip(FARS, TAR_KEYS, strict=True):
        assert results[key] == pytest.approx(tpr[fpr <= far].max(), abs=1e-7)  # float32 results
    eer_sklearn = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)
    assert equal_error_rate(scores["genuine"], scores["impostor"]) == pytest.approx(eer_sklearn, abs=1e-9)
    assert results["eer"] == pytest.approx(eer_sklearn, abs=1e-7)


def test_duplicated_samples_do_not_change_the_result() -> None:
    emb, finger, impression, index = prints(fingers=20)
    results, scores = run_metric(emb, finger, impression, index)
    extra = torch.tensor([0, 3, 3, 17, 41])  # as DistributedSampler pads a rank, and more
    padded = [torch.cat([t, t[extra]]) for t in (emb, finger, impression, index)]
    results_padded, scores_padded = run_metric(*padded, batch=9)
    assert results_padded == results
    for key in scores:
        np.testing.assert_array_equal(scores_padded[key], scores[key])
    metric = VerificationMetrics()
    metric.update(emb[:2], finger[:2], impression[:2], index[:2])
    metric.update(emb[:1], finger[:1] + 1, impression[:1], index[:1])  # the same sample with another finger
    with pytest.raises(ValueError, match=r"sample index \d+ came with different finger / impression labels"):
        metric.compute()


def test_rank1_identifies_against_the_first_impressions() -> None:
    """3 fingers x 2 impressions at angles on the unit circle; the gallery is each finger's lowest impression."""
    angles = torch.tensor([0.25, 0.1, 2.0, 2.1, 4.0, 0.3])  # finger 0: 0.25, 0.1; 1: 2.0, 2.1; 2: 4.0, 0.3
    emb = torch.stack([angles.cos(), angles.sin()], 1)
    finger, impression = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 0, 1, 0, 1])
    assert rank1_identification(emb, finger, impression) == pytest.approx(2 / 3)  # 0.3 is nearest 0.25 (finger 0)
    swapped = 1 - impression  # gallery 0.1, 2.1, 0.3: now the probes 0.25 and 4.0 are nearest another finger
    assert rank1_identification(emb, finger, swapped) == pytest.approx(1 / 3)


class PrintImages(Dataset):
    """Test samples whose 1 x 4 x 4 "image" is an embedding of :func:`prints` (an odd count: DDP pads)."""

    def __init__(self, fingers: int = 25) -> None:
        emb, self.finger, self.impression, _ = prints(fingers=fingers, impressions=3, seed=2)
        self.images = emb.view(-1, 1, 4, 4)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        return {"image": self.images[i], "finger": self.finger[i], "impression": self.impression[i], "index": i}


def flatten_system() -> RecognizerVerification:
    spec = DataSpec(1, (4, 4), (0.0,), (1.0,))
    return RecognizerVerification(FrozenRecognizer(nn.Flatten(), spec, 1, (0.0,), (1.0,)), spec)


def evaluate_system(root: Path, devices: int) -> dict[str, float]:
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp_spawn" if devices > 1 else "auto",
        logger=False,
        enable_progress_bar=False,
        default_root_dir=str(root),
    )
    return trainer.test(flatten_system(), dataloaders=DataLoader(PrintImages(), batch_size=8), verbose=False)[0]


def test_system_logs_the_metrics_and_saves_the_artifacts(tmp_path: Path) -> None:
    logged = evaluate_system(tmp_path, devices=1)
    data = PrintImages()
    expected, scores = run_metric(data.images.flatten(1), data.finger, data.impression, torch.arange(len(data)))
    assert logged == pytest.approx({f"test/{k}": v for k, v in expected.items()})
    saved = np.load(tmp_path / "artifacts" / "verification_scores.npz")
    np.testing.assert_allclose(saved["genuine"], scores["genuine"], atol=1e-6)  # normalised twice in float32
    assert saved["impostor_index"].shape == (25 * 24 // 2, 2)
    assert (tmp_path / "artifacts" / "verification_roc.png").stat().st_size > 0
    rows = (tmp_path / "artifacts" / "tar_at_far.csv").read_text().splitlines()
    assert rows[0] == "far,tar" and len(rows) == 4
    with pytest.raises(ValueError, match="has no weights of its own"):
        flatten_system().check_checkpoint({}, "x.ckpt")


@pytest.mark.slow
def test_two_processes_give_the_same_eer_as_one(tmp_path: Path) -> None:
    """75 samples on 2 ranks: DistributedSampler pads one repeat, which the metric drops by index."""
    single = evaluate_system(tmp_path / "one", devices=1)
    ddp = evaluate_system(tmp_path / "two", devices=2)
    assert ddp == pytest.approx(single, abs=1e-7)
    one, two = (np.load(tmp_path / d / "artifacts" / "verification_scores.npz") for d in ("one", "two"))
    assert len(two["genuine"]) == len(one["genuine"]) == 25 * 3


@pytest.mark.parametrize("impostors", ["fvc", "all"])
def test_a_separate_gallery_scores_the_earlier_impression_against_the_probe(impostors: str) -> None:
    emb, finger, impression, index = prints(fingers=20)
    gallery = emb + 0.5 * torch.randn_like(emb)  # e.g. the uncompressed enrolment of decoded probes
    same = VerificationMetrics(FARS, impostors=impostors)
    same.update(emb, finger, impression, index, gallery=emb)
    plain = VerificationMetrics(FARS, impostors=impostors)
    plain.update(emb, finger, impression, index)
    assert {k: float(v) for k, v in same.compute().items()} == {k: float(v) for k, v in plain.compute().items()}

    cross = VerificationMetrics(FARS, impostors=impostors)
    cross.update(emb[:30], finger[:30], impression[:30], index[:30], gallery=gallery[:30])
    cross.update(emb[30:], finger[30:], impression[30:], index[30:], gallery=gallery[30:])
    results = cross.compute()
    pairs = torch.as_tensor(cross.scores["genuine_index"])  # sample indices = rows here (index is arange)
    e, g = torch.nn.functional.normalize(emb, dim=1), torch.nn.functional.normalize(gallery, dim=1)
    first_earlier = (impression[pairs[:, 0]] < impression[pairs[:, 1]]).all()
    assert first_earlier
    expected = (g[pairs[:, 0]] * e[pairs[:, 1]]).sum(1).double().numpy()
    np.testing.assert_allclose(np.sort(cross.scores["genuine"]), np.sort(expected), rtol=1e-6)
    assert float(results["eer"]) != float(plain.compute()["eer"])

    with pytest.raises(ValueError, match="every update or in none"):
        cross.update(emb[:5], finger[:5], impression[:5], index[:5])

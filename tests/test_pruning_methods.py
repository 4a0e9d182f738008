"""SIM score, CCS and SIMS samplers, the dynamics recorder and the pruning cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from biobench.pruning.dynamics import ProxyRecord
from biobench.pruning.recorder import batch_dynamics
from biobench.pruning.samplers.ccs import CCSSampler
from biobench.pruning.samplers.sims import SIMSSampler
from biobench.pruning.scores.base import ScoreContext
from biobench.pruning.scores.sim import SIMScore, expert_agreement, rank_normalize, separability
from biobench.train import train
from biobench.utils.cache import cached_arrays


class _Data:
    def __init__(self, labels: np.ndarray) -> None:
        self.train_labels = labels

    def data_hash(self) -> str:
        return "toy"

    def transform_settings(self) -> dict:
        return {"mean": [0.5], "std": [0.5], "crop_padding": 0, "hflip": False, "image_size": None}


def record(features: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> ProxyRecord:
    n = len(labels)
    zeros = np.zeros((n, 2), np.float16)
    return ProxyRecord(labels, zeros, zeros, zeros.astype(bool), zeros, zeros, probs, features)


def test_separability_orders_samples_by_distance_ratio() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1])
    feats = np.array([[1, 0], [1, 0.1], [0.7, 0.7], [0, 1], [0.1, 1], [0.9, 0.2]], dtype=float)
    sep = separability(feats, labels, 2)
    f = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    centres = np.stack([f[labels == c].mean(0) for c in (0, 1)])
    d = np.linalg.norm(f[:, None] - centres[None], axis=2)
    d_neg, d_pos = d[np.arange(6), 1 - labels], d[np.arange(6), labels]
    expected = d_neg / (d_neg + d_pos)
    assert np.allclose(sep, expected, rtol=1e-6)
    assert sep.argmin() == 5  # the class-1 sample lying among class 0 is the least separable


def test_expert_agreement_is_one_when_experts_agree_and_falls_with_disagreement() -> None:
    p = np.array([[0.9, 0.1], [0.5, 0.5]])
    assert np.allclose(expert_agreement([p, p]), 1.0)
    q = np.array([[0.1, 0.9], [0.5, 0.5]])
    agree = expert_agreement([p, q])
    assert agree[0] < 0.7 and np.isclose(agree[1], 1.0)
    assert np.allclose(expert_agreement([p]), 1.0)


def test_sim_score_ranks_mislabelled_and_disputed_samples_hardest() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 20)
    centres = np.eye(3) * 4
    feats = centres[labels] + rng.normal(0, 0.3, (60, 3))
    feats[7] = centres[2]  # labelled 0, looks like class 2
    feats[21] *= 0.2  # a sample with a weak (low-integrity) embedding
    probs = np.eye(3)[labels] * 0.9 + 0.1 / 3
    other = probs.copy()
    other[13] = [0.1, 0.8, 0.1]  # second expert disputes sample 13
    ctx = ScoreContext(_Data(labels), 0, proxies=lambda: [record(feats, probs, labels), record(feats, other, labels)])
    scores = SIMScore()(ctx)
    assert scores.shape == (60,) and scores.min() >= 0 and scores.max() <= 1
    assert set(np.argsort(-scores)[:3]) == {7, 13, 21}
    only_sep = SIMScore(integrity=False, uncertainty=False)(ctx)
    assert np.argmax(only_sep) == 7 and only_sep[13] < np.sort(only_sep)[-3]  # ablation: uncertainty term off
    with pytest.raises(ValueError, match="enable at least one"):
        SIMScore(separability=False, integrity=False, uncertainty=False)


def test_rank_normalize_handles_ties() -> None:
    assert np.allclose(rank_normalize(np.array([3.0, 1.0, 1.0, 2.0])), [1.0, 0.375, 0.375, 0.75])


def test_ccs_drops_hardest_and_covers_score_range() -> None:
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(0, 1, 900), rng.normal(6, 0.5, 100)])  # 100 "noisy" high scores
    labels = np.zeros(1000, dtype=int)
    kept = CCSSampler(beta=0.1, strata=10)(scores, labels, 200, np.random.default_rng(1))
    assert len(np.unique(kept)) == 200
    assert scores[kept].max() <= np.sort(scores)[-101]  # the 100 hardest were dropped
    edges = np.linspace(scores[kept].min(), scores[kept].max(), 6)
    assert (np.histogram(scores[kept], edges)[0] > 0).all()  # coverage of the whole remaining range
    topk_like = np.argsort(-scores)[100:300]
    assert np.std(scores[kept]) > np.std(scores[topk_like])
    # beta is capped so the budget can always be met
    assert len(CCSSampler(beta=0.9)(scores, labels, 500, np.random.default_rng(0))) == 500


def test_ccs_is_deterministic_and_exact_for_many_budgets() -> None:
    scores = np.random.default_rng(3).random(777)
    labels = np.zeros(777, dtype=int)
    for budget in (1, 7, 77, 400, 776):
        a = CCSSampler(beta=0.05)(scores, labels, budget, np.random.default_rng(5))
        b = CCSSampler(beta=0.05)(scores, labels, budget, np.random.default_rng(5))
        assert len(np.unique(a)) == budget and np.array_equal(a, b)


def test_sims_budgets_classes_and_ratio_shift() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 4000)
    scores = rng.random(4000) + 0.3 * (labels == 4)  # class 4 is harder
    sampler = SIMSSampler()
    mean_hardness = []
    for ratio in (0.05, 0.3, 0.6, 0.9):
        budget = round(ratio * 4000)
        kept = sampler(scores, labels, budget, np.random.default_rng(1))
        assert len(np.unique(kept)) == budget
        assert set(labels[kept]) == set(range(5))
        assert np.array_equal(kept, sampler(scores, labels, budget, np.random.default_rng(1)))
        mean_hardness.append(rank_normalize(scores)[kept].mean())
        share = np.bincount(labels[kept], minlength=5) / budget
        assert share[4] > np.bincount(labels, minlength=5)[4] / 4000  # the harder class keeps more than its size
    assert mean_hardness[0] < mean_hardness[1] < 0.5 < mean_hardness[2]  # easy -> hard as more is kept
    dropped = np.setdiff1d(np.arange(4000), kept)  # at keep 0.9 the dropped samples are the easier ones
    assert rank_normalize(scores)[dropped].mean() < 0.45
    labels_rare = np.zeros(1000, dtype=int)
    labels_rare[:3] = 1
    assert 1 in labels_rare[sampler(rng.random(1000), labels_rare, 10, np.random.default_rng(0))]  # no empty class
    hard_rare = np.where(labels_rare == 1, 0.0, rng.random(1000) + 1)  # rare class easiest, budget tiny
    allow_empty = SIMSSampler(min_per_class=0, class_mix=0.0)(hard_rare, labels_rare, 5, np.random.default_rng(0))
    assert 1 not in labels_rare[allow_empty]


def test_batch_dynamics_match_a_direct_computation() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]])
    labels = torch.tensor([0, 2])
    d = batch_dynamics(logits, labels)
    p = logits.softmax(1)
    assert torch.allclose(d["target_prob"], p[[0, 1], [0, 2]])
    assert torch.allclose(d["other_max_prob"], torch.stack([p[0, 1], p[1, 1]]))
    assert d["correct"].tolist() == [True, False]
    assert torch.allclose(d["loss"], torch.nn.functional.cross_entropy(logits, labels, reduction="none"))
    assert torch.allclose(d["sq_norm"], (p**2).sum(1))


def test_cache_hits_and_rejects_foreign_or_corrupt_files(tmp_path: Path) -> None:
    calls = []

    def compute() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"scores": np.arange(5.0)}

    a, hit_a = cached_arrays(tmp_path, "scores", ("cfg",), "fp1", 5, compute)
    b, hit_b = cached_arrays(tmp_path, "scores", ("cfg",), "fp1", 5, compute)
    assert (hit_a, hit_b) == (False, True) and len(calls) == 1 and np.array_equal(a["scores"], b["scores"])
    path = next((tmp_path / "scores").glob("*.npz"))
    path.write_bytes(b"truncated")
    _, hit = cached_arrays(tmp_path, "scores", ("cfg",), "fp1", 5, compute)
    assert not hit and len(calls) == 2
    assert not any(p.suffix == ".tmp" for p in (tmp_path / "scores").iterdir())


def test_sweep_trains_proxies_once_and_hits_the_score_cache(compose_train) -> None:
    common = [
        "experiment=prune_digits",
        "trainer.max_epochs=1",
        "pruning.proxy.epochs=2",
        "pruning.proxy.num_experts=2",
        "logger=csv",
    ]
    el2n = ["pruning/score=el2n", "pruning.score.epochs=2"]
    first = compose_train(*common, *el2n, "pruning.keep_ratio=0.3", out="r1")
    m1 = train(first)
    second = compose_train(*common, *el2n, "pruning.keep_ratio=0.6", "pruning/sampler=ccs", out="r2")
    second.paths.cache_dir = first.paths.cache_dir
    m2 = train(second)
    assert m1["pruning/score_cached"] == 0.0 and m1["pruning/proxy_train_time_s"] > 0
    assert m2["pruning/score_cached"] == 1.0 and m2["pruning/proxy_train_time_s"] == 0.0
    third = compose_train(*common, "pruning.keep_ratio=0.6", "pruning/score=forgetting", out="r3")
    third.paths.cache_dir = first.paths.cache_dir
    m3 = train(third)  # another score: proxies come from the cache, the score is computed
    assert m3["pruning/score_cached"] == 0.0 and m3["pruning/proxy_train_time_s"] == 0.0
    subset = json.loads((Path(second.paths.output_dir) / "pruning" / "subset.json").read_text())
    assert len(subset["indices"]) == round(0.6 * subset["n_train"])


def test_per_sample_full_gradient_norms_match_a_loop_of_single_backward_passes() -> None:
    from biobench.models.nets import create_net
    from biobench.pruning.grad_norm import per_sample_grad_norms

    torch.manual_seed(0)
    net = create_net("small_cnn", num_classes=4, in_chans=1, width=4)
    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 3, 0, 1])
    norms = per_sample_grad_norms(net, [{"image": x, "label": y, "index": torch.arange(6)}], 6)
    for i in range(6):
        net.zero_grad()
        torch.nn.functional.cross_entropy(net(x[i : i + 1]), y[i : i + 1]).backward()
        expected = torch.sqrt(sum(p.grad.square().sum() for p in net.parameters()))
        assert norms[i] == pytest.approx(expected.item(), rel=1e-4)


def test_grand_full_mode_needs_and_uses_proxy_gradient_norms() -> None:
    from biobench.pruning.scores import GraNdScore

    labels = np.array([0, 1, 0])
    probs, feats = np.full((3, 2), 0.5), np.ones((3, 4))
    rec = record(feats, probs, labels)
    with pytest.raises(ValueError, match="full_grad_norm=true"):
        GraNdScore(mode="full")(ScoreContext(_Data(labels), 0, proxies=lambda: [rec]))
    rec.grad_norm = np.array([1.0, 3.0, 2.0])
    assert GraNdScore(mode="full")(ScoreContext(_Data(labels), 0, proxies=lambda: [rec])).tolist() == [1.0, 3.0, 2.0]

"""Classic proxy-based scores on hand-built proxy records with known answers (no training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from biobench import CONFIG_DIR
from biobench.pruning.dynamics import ProxyRecord
from biobench.pruning.scores import (
    AUMScore,
    DynamicUncertaintyScore,
    EL2NScore,
    ForgettingScore,
    GraNdScore,
    ModerateScore,
    Score,
    ScoreContext,
    UncertaintyScore,
)


class _Data:
    """The slice of the DataModule contract the scores read."""

    def __init__(self, labels: np.ndarray) -> None:
        self.train_labels = np.asarray(labels)

    def data_hash(self) -> str:
        return "toy"


def _ctx(records: list[ProxyRecord]) -> ScoreContext:
    return ScoreContext(_Data(records[0].labels), seed=0, proxies=lambda: records)


def _record(
    labels: np.ndarray,
    probs_per_epoch: np.ndarray,  # [N, E, C]
    final_probs: np.ndarray | None = None,
    features: np.ndarray | None = None,
) -> ProxyRecord:
    """A record whose dynamics follow from full per-epoch probabilities (float64, to check values exactly)."""
    labels = np.asarray(labels)
    n, _, c = probs_per_epoch.shape
    target = np.take_along_axis(probs_per_epoch, labels[:, None, None], axis=2)[..., 0]
    others = np.where(np.arange(c) == labels[:, None, None], -np.inf, probs_per_epoch).max(axis=2)
    final = probs_per_epoch[:, -1] if final_probs is None else final_probs
    return ProxyRecord(
        labels=labels,
        target_prob=target,
        other_max_prob=others,
        correct=probs_per_epoch.argmax(axis=2) == labels[:, None],
        loss=-np.log(np.maximum(target, 1e-12)),
        sq_norm=np.square(probs_per_epoch).sum(axis=2),
        probs=final,
        features=np.ones((n, 2)) if features is None else features,
    )


def _noisy_record(seed: int, n: int = 12, e: int = 5, c: int = 3, mislabelled: int = 0) -> ProxyRecord:
    """Random confident-ish predictions for the true class; sample ``mislabelled`` carries a wrong label."""
    rng = np.random.default_rng(seed)
    true = np.arange(n) % c
    logits = rng.normal(size=(n, e, c))
    logits[np.arange(n), :, true] += 3.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    labels = true.copy()
    labels[mislabelled] = (true[mislabelled] + 1) % c
    features = rng.normal(size=(n, 4))
    return _record(labels, probs, features=features)


ALL_SCORES: list[Score] = [
    EL2NScore(epochs=2),
    GraNdScore(),
    ForgettingScore(),
    AUMScore(),
    UncertaintyScore("least_confidence"),
    UncertaintyScore("entropy"),
    UncertaintyScore("margin"),
    DynamicUncertaintyScore(window=3),
    ModerateScore(),
]


@pytest.mark.parametrize("score", ALL_SCORES, ids=lambda s: repr(s.config()))
def test_shape_dtype_and_determinism(score: Score) -> None:
    records = [_noisy_record(0), _noisy_record(1)]
    out = score(_ctx(records))
    assert out.shape == (12,) and out.dtype == np.float64 and np.isfinite(out).all()
    assert np.array_equal(out, score(_ctx(records)))


@pytest.mark.parametrize(
    "score",
    # uncertainty averages the probabilities and moderate the distances before their non-linear steps
    [s for s in ALL_SCORES if not isinstance(s, UncertaintyScore | ModerateScore)],
    ids=lambda s: repr(s.config()),
)
def test_two_experts_average_single_expert_scores(score: Score) -> None:
    a, b = _noisy_record(0), _noisy_record(1)
    assert np.allclose(score(_ctx([a, b])), (score(_ctx([a])) + score(_ctx([b]))) / 2)


def test_uncertainty_uses_the_experts_mean_prediction() -> None:
    a, b = _noisy_record(0), _noisy_record(1)
    mean = _record(a.labels, np.stack([a.probs, b.probs]).mean(axis=0)[:, None, :])
    for method in ("least_confidence", "entropy", "margin"):
        assert np.allclose(UncertaintyScore(method)(_ctx([a, b])), UncertaintyScore(method)(_ctx([mean])))


def test_mislabelled_sample_is_hardest_for_el2n_aum_grand() -> None:
    records = [_noisy_record(seed, mislabelled=4) for seed in range(3)]
    for score in (EL2NScore(epochs=3), AUMScore(), GraNdScore(), ForgettingScore()):
        out = score(_ctx(records))
        assert out.argmax() == 4, type(score).__name__
    assert AUMScore()(_ctx(records))[4] > 0  # AUM itself is negative: the other class dominates throughout


def test_el2n_and_aum_hand_computed() -> None:
    # one sample, label 0, three classes, three epochs
    probs = np.array([[[0.5, 0.3, 0.2], [0.2, 0.7, 0.1], [0.6, 0.2, 0.2]]])
    record = _record(np.array([0]), probs)
    el2n = [np.sqrt(0.5**2 + 0.3**2 + 0.2**2), np.sqrt(0.8**2 + 0.7**2 + 0.1**2), np.sqrt(0.4**2 + 0.2**2 + 0.2**2)]
    assert EL2NScore(epochs=2)(_ctx([record])) == pytest.approx([(el2n[0] + el2n[1]) / 2], rel=1e-6)
    assert EL2NScore(epochs=3)(_ctx([record])) == pytest.approx([sum(el2n) / 3], rel=1e-6)
    assert AUMScore()(_ctx([record])) == pytest.approx([-((0.5 - 0.3) + (0.2 - 0.7) + (0.6 - 0.2)) / 3])


def test_grand_closed_form() -> None:
    labels = np.array([0, 1])
    final = np.array([[0.9, 0.1], [0.9, 0.1]])  # sample 1 is wrong
    features = np.array([[1.0, 2.0], [2.0, 2.0]])
    record = _record(labels, final[:, None, :], final_probs=final, features=features)
    err = np.array([np.sqrt(0.1**2 + 0.1**2), np.sqrt(0.9**2 + 0.9**2)])
    expected = err * np.sqrt(np.array([5.0, 8.0]) + 1)
    assert GraNdScore()(_ctx([record])) == pytest.approx(expected)

    torch = pytest.importorskip("torch")  # the closed form is the autograd norm of a linear layer's gradient
    layer = torch.nn.Linear(2, 2, dtype=torch.float64)
    f = torch.tensor(features)
    for i in range(2):
        layer.zero_grad()
        torch.nn.functional.cross_entropy(layer(f[i : i + 1]), torch.tensor([labels[i]])).backward()
        p = torch.softmax(layer(f[i : i + 1]), dim=1).detach().numpy()
        grad = torch.cat([layer.weight.grad.flatten(), layer.bias.grad]).norm().item()
        rec = _record(labels[i : i + 1], p[:, None, :], final_probs=p, features=features[i : i + 1])
        assert GraNdScore()(_ctx([rec]))[0] == pytest.approx(grad)


def test_forgetting_counts_transitions() -> None:
    correct = np.array(
        [[1, 0, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [0, 1, 1, 1, 1], [0, 1, 0, 1, 0]], dtype=bool
    )
    n, e = correct.shape
    record = _record(np.zeros(n, dtype=int), np.full((n, e, 2), 0.5))
    record.correct = correct
    assert ForgettingScore()(_ctx([record])).tolist() == [2.0, 0.0, e + 1.0, 0.0, 2.0]


def test_uncertainty_extremes() -> None:
    c = 4
    final = np.array([np.full(c, 1 / c), np.eye(c)[2], [0.7, 0.1, 0.1, 0.1], [0.4, 0.4, 0.1, 0.1]])
    record = _record(np.zeros(4, dtype=int), final[:, None, :])
    lc = UncertaintyScore("least_confidence")(_ctx([record]))
    ent = UncertaintyScore("entropy")(_ctx([record]))
    margin = UncertaintyScore("margin")(_ctx([record]))
    assert lc == pytest.approx([0.75, 0.0, 0.3, 0.6])
    assert ent[0] == pytest.approx(np.log(c)) and ent[1] == 0.0
    assert margin == pytest.approx([1.0, 0.0, 0.4, 1.0])
    for out in (lc, ent, margin):
        assert out[0] == out.max() and out[1] == out.min()


def test_dynamic_uncertainty() -> None:
    target = np.array([[0.5, 0.5, 0.5, 0.5], [0.2, 0.8, 0.2, 0.8], [0.1, 0.2, 0.3, 0.7]])
    probs = np.stack([target, 1 - target], axis=2)
    out = DynamicUncertaintyScore(window=3)(_ctx([_record(np.zeros(3, dtype=int), probs)]))
    assert out[0] == 0.0 and out[1] > 0
    # windows [.1 .2 .3] (std 0.1) and [.2 .3 .7] (mean 0.4, sample var (0.04 + 0.01 + 0.09) / 2 = 0.07)
    assert out[2] == pytest.approx((0.1 + np.sqrt(0.07)) / 2)
    assert out[1] == pytest.approx(np.std([0.2, 0.8, 0.2], ddof=1))


def test_moderate_keeps_samples_at_the_median_distance() -> None:
    # class 0 on a line (median feature 0): distances 0, 1, 2, 3, 10 -> median distance 2
    # class 1: two samples equidistant from the median -> both moderate
    labels = np.array([0, 0, 0, 0, 0, 1, 1])
    features = np.array([[0.0, 0], [1, 0], [-2, 0], [3, 0], [-10, 0], [5, 5], [7, 5]])
    record = _record(labels, np.full((7, 1, 2), 0.5), features=features)
    out = ModerateScore()(_ctx([record]))
    assert out.tolist() == pytest.approx([-2.0, -1.0, 0.0, -1.0, -8.0, 0.0, 0.0])
    assert out[4] == out.min() and out[2] == out.max() == 0.0
    # the distance is averaged over experts: features scaled by 2 in a second expert scale the distances by 1.5
    twice = _record(labels, np.full((7, 1, 2), 0.5), features=2 * features)
    assert ModerateScore()(_ctx([record, twice])) == pytest.approx(1.5 * out)


@pytest.mark.parametrize(
    ("make", "key"),
    [
        (lambda: EL2NScore(epochs=0), "pruning.score.epochs"),
        (lambda: EL2NScore(epochs=1.5), "pruning.score.epochs"),
        (lambda: GraNdScore(mode="all_layers"), "pruning.score.mode"),
        (lambda: UncertaintyScore(method="variance"), "pruning.score.method"),
        (lambda: DynamicUncertaintyScore(window=1), "pruning.score.window"),
    ],
)
def test_bad_parameters_name_the_config_key(make, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        make()


def test_windows_longer_than_the_recorded_epochs_are_rejected() -> None:
    ctx = _ctx([_noisy_record(0, e=5)])
    with pytest.raises(ValueError, match=r"pruning\.score\.epochs=6 .* 5 epochs"):
        EL2NScore(epochs=6)(ctx)
    with pytest.raises(ValueError, match=r"pruning\.score\.window=6 .* 5 epochs"):
        DynamicUncertaintyScore(window=6)(ctx)
    assert np.isfinite(DynamicUncertaintyScore(window=5)(ctx)).all()


@pytest.mark.parametrize("name", ["el2n", "grand", "forgetting", "aum", "uncertainty", "dyn_unc", "moderate"])
def test_configs_instantiate(name: str) -> None:
    score = instantiate(OmegaConf.load(Path(CONFIG_DIR) / "pruning" / "score" / f"{name}.yaml"))
    assert isinstance(score, Score)
    assert score(_ctx([_noisy_record(0)])).shape == (12,)

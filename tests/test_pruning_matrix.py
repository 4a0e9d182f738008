"""Pruning = score x sampler: every configured score works with every configured sampler on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from biobench import CONFIG_DIR
from biobench.data import DigitsDataModule
from biobench.pruning.proxy import ProxyStage
from biobench.pruning.scores import ScoreContext

SCORES = sorted(p.stem for p in (Path(CONFIG_DIR) / "pruning" / "score").glob("*.yaml"))
SAMPLERS = sorted(p.stem for p in (Path(CONFIG_DIR) / "pruning" / "sampler").glob("*.yaml"))


def group_node(group: str, name: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["pruning=default", f"pruning/{group}={name}"])  # pruning is opt-in
    GlobalHydra.instance().clear()
    return cfg.pruning[group]


@pytest.fixture(scope="module")
def digits_with_proxies(tmp_path_factory: pytest.TempPathFactory):
    dm = DigitsDataModule()
    proxies = ProxyStage(
        num_experts=2, epochs=8, net={"name": "small_cnn", "width": 16}, accelerator="cpu", full_grad_norm=True
    )
    records = proxies.run(dm, seed=0, cache_dir=tmp_path_factory.mktemp("cache"))
    return dm, records


def test_every_score_and_sampler_is_configured() -> None:
    assert set(SCORES) >= {"random", "el2n", "grand", "forgetting", "aum", "uncertainty", "dyn_unc", "moderate", "sim"}
    assert set(SAMPLERS) >= {"topk", "ccs", "sims"}


@pytest.mark.parametrize("score_name", SCORES)
def test_score_on_real_proxy_dynamics_predicts_proxy_errors(score_name: str, digits_with_proxies) -> None:
    dm, records = digits_with_proxies
    scores = instantiate(group_node("score", score_name))(ScoreContext(dm, 0, proxies=lambda: records))
    assert scores.shape == (len(dm.train_labels),) and np.isfinite(scores).all()
    if score_name in ("el2n", "grand", "aum", "forgetting", "uncertainty", "sim"):
        wrong = records[0].probs.argmax(1) != dm.train_labels  # samples the proxies still get wrong are hard
        if wrong.any():
            assert scores[wrong].mean() > scores[~wrong].mean()


@pytest.mark.parametrize("sampler_name", SAMPLERS)
@pytest.mark.parametrize("score_name", SCORES)
def test_any_score_with_any_sampler_meets_the_budget(score_name: str, sampler_name: str, digits_with_proxies) -> None:
    dm, records = digits_with_proxies
    labels = dm.train_labels
    scores = instantiate(group_node("score", score_name))(ScoreContext(dm, 0, proxies=lambda: records))
    sampler = instantiate(group_node("sampler", sampler_name))
    for budget in (13, round(0.5 * len(labels))):
        kept = sampler(scores, labels, budget, np.random.default_rng(0))
        assert len(np.unique(kept)) == budget and kept.min() >= 0 and kept.max() < len(labels)
        assert np.array_equal(kept, sampler(scores, labels, budget, np.random.default_rng(0)))


def test_full_and_last_layer_grand_agree_on_real_proxies(digits_with_proxies) -> None:
    from biobench.pruning.scores import GraNdScore
    from biobench.pruning.scores.sim import rank_normalize

    dm, records = digits_with_proxies
    ctx = ScoreContext(dm, 0, proxies=lambda: records)
    full, last = GraNdScore(mode="full")(ctx), GraNdScore()(ctx)
    assert np.isfinite(full).all() and (full >= last * 0.999).all()  # all parameters include the last layer
    assert np.corrcoef(rank_normalize(full), rank_normalize(last))[0, 1] > 0.8  # trained proxies: same ranking

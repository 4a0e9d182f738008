"""Study presets (conf/method/) compose with a pruning experiment into the intended score x sampler; the
end-of-multirun summary callback is wired in conf/hydra/default.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from biobench import CONFIG_DIR
from biobench.results.callback import SummarizeSweep

SCORES = {
    "random": "RandomScore",
    "el2n": "EL2NScore",
    "forgetting": "ForgettingScore",
    "aum": "AUMScore",
    "sim": "SIMScore",
}
SAMPLERS = {"topk": "TopKSampler", "sims": "SIMSSampler", "ccs": "CCSSampler"}
METHODS = {"random": ("random", "topk")} | {
    f"{score}_{sampler}": (score, sampler)
    for score in ("el2n", "forgetting", "aum", "sim")
    for sampler in ("topk", "sims")
}
METHODS["aum_ccs"] = ("aum", "ccs")


def test_every_method_file_is_covered() -> None:
    assert sorted(p.stem for p in (Path(CONFIG_DIR) / "method").glob("*.yaml")) == sorted(METHODS)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_preset_sets_score_and_sampler(compose_train, method: str) -> None:
    score, sampler = METHODS[method]
    cfg = compose_train("experiment=prune_digits", f"method={method}")
    assert cfg.pruning.score._target_ == f"biobench.pruning.scores.{SCORES[score]}"
    assert cfg.pruning.sampler._target_ == f"biobench.pruning.samplers.{SAMPLERS[sampler]}"
    choices = cfg.hydra.runtime.choices
    assert (choices["method"], choices["pruning/score"], choices["pruning/sampler"]) == (method, score, sampler)
    if method == "aum_ccs":
        assert cfg.pruning.sampler.beta == 0.1  # the CCS cut-off of the pruning study


def test_command_line_knobs_override_a_preset(compose_train) -> None:
    cfg = compose_train("experiment=kd_digits", "method=aum_ccs", "pruning.sampler.beta=0.2")
    assert cfg.pruning.sampler._target_.endswith("CCSSampler") and cfg.pruning.sampler.beta == 0.2


def test_summary_callback_is_wired(compose_train) -> None:
    cfg = compose_train("experiment=prune_digits")
    callback = instantiate(cfg.hydra.callbacks.summarize)
    assert isinstance(callback, SummarizeSweep) and callback.x == "pruning.keep_ratio"

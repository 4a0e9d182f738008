"""Pruning caches: score and proxy keys cover code versions and the train transforms; a re-used subset keeps its
true provenance; the pruning stage leaves the global random state as it found it."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

import biobench.pruning.proxy as proxy_module
from biobench.data import DigitsDataModule
from biobench.pruning import Pruner
from biobench.pruning.proxy import ProxyStage
from biobench.pruning.samplers import CCSSampler, TopKSampler
from biobench.pruning.scores import EL2NScore, ForgettingScore, RandomScore, Score


def tiny_proxies() -> ProxyStage:
    return ProxyStage(num_experts=1, epochs=1, net={"name": "small_cnn", "width": 4}, accelerator="cpu", batch_size=256)


@pytest.mark.parametrize("change", [{"hflip": True}, {"crop_padding": 1}, {"mean": (0.4,)}])
def test_score_cache_key_covers_the_train_transforms(tmp_path: Path, change: dict) -> None:
    base, changed = DigitsDataModule(), DigitsDataModule(**change)
    assert base.data_hash() == changed.data_hash()  # same data: only the transforms tell the two apart
    pruner = Pruner(RandomScore(), TopKSampler(), keep_ratio=0.5, cache_dir=str(tmp_path))
    assert [pruner.scores(dm)[1] for dm in (base, base, changed, changed)] == [False, True, False, True]


def test_score_cache_key_covers_the_score_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dm = DigitsDataModule()
    pruner = Pruner(RandomScore(), TopKSampler(), keep_ratio=0.5, cache_dir=str(tmp_path))
    assert [pruner.scores(dm)[1] for _ in range(2)] == [False, True]
    monkeypatch.setattr(RandomScore, "version", 2)  # the formula changed: old values must not be reused
    assert [pruner.scores(dm)[1] for _ in range(2)] == [False, True]


def test_every_score_declares_a_code_version() -> None:
    assert RandomScore().config()["version"] == 1
    with pytest.raises(TypeError, match="must declare a code version"):

        class Unversioned(Score):
            def __call__(self, ctx):
                return np.zeros(len(ctx.datamodule.train_labels))


def test_proxy_cache_key_covers_the_train_transforms_and_the_recipe_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxies = tiny_proxies()

    def trained(dm: DigitsDataModule) -> bool:
        proxies.run(dm, seed=0, cache_dir=tmp_path)
        return proxies.cost_s > 0

    base = DigitsDataModule()
    assert [trained(base), trained(base)] == [True, False]
    assert trained(DigitsDataModule(hflip=True))
    monkeypatch.setattr(proxy_module, "PROXY_VERSION", proxy_module.PROXY_VERSION + 1)
    assert [trained(base), trained(base)] == [True, False]


def test_a_reused_subset_records_the_provenance_of_its_source(tmp_path: Path) -> None:
    dm = DigitsDataModule()
    source = Pruner(RandomScore(), TopKSampler(keep="easy"), keep_ratio=0.3, seed=3)
    kept, _ = source.select(dm)
    first = source.save(tmp_path / "a" / "subset.json", kept, dm)
    expected = {k: json.loads(first.read_text())[k] for k in ("score", "sampler", "proxy", "keep_ratio", "seed")}
    # the re-using run's own score / sampler / ratio / seed choose nothing and must not be recorded
    reuse = Pruner(EL2NScore(), CCSSampler(), keep_ratio=0.9, seed=7, indices_file=str(first), proxy=tiny_proxies())
    again, _ = reuse.select(dm)
    second = json.loads(reuse.save(tmp_path / "b" / "subset.json", again, dm).read_text())
    assert np.array_equal(again, kept) and second["indices"] == kept.tolist()
    assert {k: second[k] for k in expected} == expected and second["indices_file"] == str(first.resolve())
    assert expected["score"]["score"] == "RandomScore" and expected["sampler"]["keep"] == "easy"

    chained = Pruner(ForgettingScore(), TopKSampler(), keep_ratio=0.5, indices_file=str(tmp_path / "b" / "subset.json"))
    third = json.loads(chained.save(tmp_path / "c" / "subset.json", chained.select(dm)[0], dm).read_text())
    assert {k: third[k] for k in expected} == expected  # a re-used re-use still names what chose the indices


def global_random_state() -> tuple:
    """Everything later training draws from: python, numpy, torch CPU generators and Lightning's seed variables."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    env = tuple(os.environ.get(k) for k in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"))
    return random.getstate(), (keys.tolist(), pos, has_gauss, gauss), torch.get_rng_state().tolist(), env


def test_pruning_leaves_the_global_random_state_untouched(tmp_path: Path) -> None:
    dm = DigitsDataModule()
    pl.seed_everything(123, workers=True)
    before = global_random_state()
    pruner = Pruner(EL2NScore(epochs=1), TopKSampler(), keep_ratio=0.5, cache_dir=str(tmp_path), proxy=tiny_proxies())
    kept, trained = pruner.select(dm)  # cache miss: trains a proxy, which seeds and draws from the globals
    assert trained["pruning/score_cached"] == 0.0 and trained["pruning/proxy_train_time_s"] > 0
    assert global_random_state() == before
    again, cached = pruner.select(dm)
    assert cached["pruning/score_cached"] == 1.0 and np.array_equal(kept, again)
    assert global_random_state() == before

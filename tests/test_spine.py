"""The spine's contracts: systems built from the data spec, selection metrics checked before training, run status,
failed runs that never look finished, W&B tags, opt-in pruning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from compressai.entropy_models import EntropyBottleneck
from compressai.models.utils import update_registered_buffers
from omegaconf import OmegaConf

from biobench.contracts import DataSpec
from biobench.models.base import System
from biobench.train import train
from biobench.utils.callbacks import NonFiniteLossError
from biobench.utils.run import WANDB_TAG_MAX, describe_failure, wandb_tag
from biobench.utils.systems import build_system

FAST = ["experiment=prune_digits", "trainer.max_epochs=2", "logger=csv"]


def status(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "status.json").read_text())


def test_data_spec_value_range_round_trips() -> None:
    spec = DataSpec(1, (8, 8), mean=(0.5,), std=(0.5,))
    assert spec.value_range == (-1.0, 1.0)
    pixels = torch.rand(2, 1, 8, 8)
    assert torch.allclose(spec.to_unit(spec.from_unit(pixels)), pixels)
    assert DataSpec(3, (4, 4), (0.0,), (1.0,)).value_range == (0.0, 1.0)
    with pytest.raises(ValueError, match="std must be positive"):
        DataSpec(1, None, (0.0,), (0.0,))


def test_systems_get_exactly_their_declared_data_args() -> None:
    spec = DataSpec(1, (8, 8), (0.3,), (0.4,), num_classes=10)
    model_cfg = OmegaConf.create(
        {
            "_target_": "biobench.models.pruned_classifier.PrunedClassifier",
            "net": {"name": "small_cnn"},
            "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
        }
    )
    model = build_system(model_cfg, spec)
    assert (model.hparams.num_classes, model.hparams.in_chans) == (10, 1)
    with pytest.raises(ValueError, match=r"PrunedClassifier needs 'num_classes' from the data"):
        build_system(model_cfg, DataSpec(1, (8, 8), (0.3,), (0.4,)))
    with pytest.raises(TypeError, match="is not a biobench system"):
        build_system(OmegaConf.create({"_target_": "torch.nn.Linear"}), spec)


def test_pruning_is_opt_in(compose_train) -> None:
    assert compose_train().get("pruning") is None
    assert compose_train("experiment=prune_digits").pruning.keep_ratio == 0.5
    assert compose_train("pruning=default").pruning.keep_ratio == 1.0


def test_monitor_is_checked_before_training(compose_train) -> None:
    cfg = compose_train(*FAST, "monitor.metric=val/loss")  # mode max, but a loss is better when lower
    with pytest.raises(ValueError, match=r"set monitor\.mode=min"):
        train(cfg)
    cfg = compose_train(*FAST, "monitor.metric=val/accuracy", out="other")
    with pytest.raises(ValueError, match=r"monitor.metric='val/accuracy' is not a metric PrunedClassifier logs"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()  # nothing was trained


def test_wrong_optimized_metric_fails_before_training(compose_train) -> None:
    cfg = compose_train(*FAST, "optimized_metric=val/acc_bets")
    with pytest.raises(ValueError, match=r"optimized_metric='val/acc_bets' is not produced"):
        train(cfg)
    out = Path(cfg.paths.output_dir)
    assert not (out / "checkpoints").exists() and not (out / "metrics.json").exists()
    assert status(out)["status"] == "failed" and "optimized_metric" in status(out)["error"]


def test_finished_run_says_done(compose_train) -> None:
    cfg = compose_train(*FAST, "trainer.max_epochs=1")
    train(cfg)
    state = status(cfg.paths.output_dir)
    assert state["status"] == "done" and state["error"] is None and state["ended"] >= state["started"]


def test_diverging_loss_fails_the_run_and_writes_no_metrics(compose_train) -> None:
    cfg = compose_train(*FAST, "model.optimizer.lr=1.0e+6", "model.scheduler=null")
    with pytest.raises(NonFiniteLossError, match=r"became (nan|inf).*epoch \d+, batch \d+.*lower learning rate"):
        train(cfg)
    out = Path(cfg.paths.output_dir)
    assert not (out / "metrics.json").exists()
    assert status(out)["status"] == "failed" and "NonFiniteLossError" in status(out)["error"]


def test_monitor_null_tests_the_last_checkpoint(compose_train) -> None:
    cfg = compose_train(*FAST, "monitor=null", "optimized_metric=null")
    metrics = train(cfg)
    ckpts = Path(cfg.paths.output_dir) / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt"]  # no "best" without a metric
    assert 0.0 <= float(metrics["test/acc"]) <= 1.0


def test_resume_refuses_a_checkpoint_of_another_model(compose_train) -> None:
    first = compose_train(*FAST, "trainer.max_epochs=1", out="a")
    train(first)
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    cfg = compose_train(*FAST, "model/net=resnet8", f"ckpt_path={last}", out="b")
    with pytest.raises(ValueError, match=r"last\.ckpt' was saved by a different model"):
        train(cfg)


def test_wandb_tags_fit_the_limit_and_stay_distinct() -> None:
    long_a = "model.teacher_ckpt=/very/long/path/" + "x" * 80 + "/teachers/wide/checkpoints/best.ckpt"
    long_b = long_a.replace("wide", "deep")
    tags = [wandb_tag(t) for t in (long_a, long_b, "seed=1")]
    assert all(len(t) <= WANDB_TAG_MAX for t in tags) and len(set(tags)) == 3
    assert tags[2] == "seed=1" and tags[0].startswith("model.teacher_ckpt=~")


def test_wandb_accepts_the_tags_of_a_long_override(tmp_path: Path, monkeypatch) -> None:
    """W&B validates tags at init (offline too): a raw KD teacher override would be refused."""
    from pytorch_lightning.loggers import WandbLogger

    monkeypatch.setenv("WANDB_SILENT", "true")
    override = "model.teacher_ckpt=" + str(tmp_path / ("t" * 70) / "checkpoints" / "best.ckpt")
    logger = WandbLogger(project="biobench", save_dir=str(tmp_path), mode="offline", tags=[wandb_tag(override)])
    try:
        assert list(logger.experiment.tags) == [wandb_tag(override)]
    finally:
        logger.experiment.finish()


def test_classifier_embed_is_differentiable_and_keeps_the_mode() -> None:
    """A loss through ``embed`` (IPR, identity losses) must reach the images; embed must not flip train/eval."""
    from functools import partial

    from biobench.models.pruned_classifier import PrunedClassifier

    model = PrunedClassifier({"name": "small_cnn"}, 10, 1, partial(torch.optim.SGD, lr=0.1)).train()
    images = torch.rand(4, 1, 8, 8, requires_grad=True)
    emb = model.embed(images)
    assert torch.allclose(emb.norm(dim=1), torch.ones(4), atol=1e-5)
    emb.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert model.training


class TinyCodec(System):
    """A system with CompressAI's entropy bottleneck: ``update()`` resizes its CDF buffers."""

    shape_flexible_prefixes = ("entropy_bottleneck._",)

    def __init__(self) -> None:
        super().__init__()
        self.entropy_bottleneck = EntropyBottleneck(4)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        names = ["_quantized_cdf", "_offset", "_cdf_length"]
        update_registered_buffers(self.entropy_bottleneck, "entropy_bottleneck", names, state_dict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def test_buffers_that_change_shape_load_through_the_systems_own_loader() -> None:
    trained = TinyCodec()
    trained.entropy_bottleneck.update(force=True)
    checkpoint = {"state_dict": trained.state_dict(), "hyper_parameters": {}}
    fresh = TinyCodec()
    assert fresh.entropy_bottleneck._quantized_cdf.numel() == 0  # before update(): empty tables
    fresh.check_checkpoint(checkpoint, "codec.ckpt")
    fresh.load_weights(checkpoint)
    assert torch.equal(fresh.entropy_bottleneck._quantized_cdf, trained.entropy_bottleneck._quantized_cdf)

    class StrictCodec(TinyCodec):
        shape_flexible_prefixes = ()

    with pytest.raises(ValueError, match=r"codec\.ckpt.*shape mismatches.*entropy_bottleneck\._"):
        StrictCodec().check_checkpoint(checkpoint, "codec.ckpt")


def test_data_spec_rejects_mean_and_std_of_other_lengths() -> None:
    with pytest.raises(ValueError, match="mean and std need the same number of values"):
        DataSpec(3, (4, 4), (0.5,), (0.2, 0.2, 0.2))


def test_an_interrupted_run_says_so() -> None:
    lightning_exit = SystemExit(1)  # what Lightning raises after its graceful shutdown on Ctrl-C
    lightning_exit.__context__ = KeyboardInterrupt()
    assert describe_failure(lightning_exit).startswith("interrupted (KeyboardInterrupt)")
    assert describe_failure(ValueError("bad value")).startswith("ValueError: bad value")


def test_pruning_unlabelled_data_is_refused_clearly(tmp_path: Path) -> None:
    from test_data_base import NoisePatches

    from biobench.pruning import Pruner
    from biobench.pruning.samplers.topk import TopKSampler
    from biobench.pruning.scores.random import RandomScore
    from biobench.pruning.stage import run_pruning_stage

    pruner = Pruner(RandomScore(), TopKSampler(), keep_ratio=0.5)
    with pytest.raises(ValueError, match="Pruning needs labelled training samples, but NoisePatches has none"):
        run_pruning_stage(pruner, NoisePatches(), tmp_path)
    assert not (tmp_path / "pruning").exists()

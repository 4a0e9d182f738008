"""Every experiment composes (train and eval) and runs one batch end to end under debug=fdr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED_DATA, make_cifar_folder, make_image_folder
from hydra.utils import instantiate

from biobench import CONFIG_DIR
from biobench.eval import evaluate
from biobench.metrics.registry import metric_info
from biobench.train import train
from biobench.utils.systems import system_class

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))


def teacher_checkpoint(tmp_path: Path, experiment: str, data: list[str]) -> Path:
    """A briefly trained teacher of ``experiment`` on ``data`` (the KD experiments need one)."""
    from conftest import compose_config

    short = ["trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "logger=csv"]
    cfg = compose_config("train", [f"experiment={experiment}", *short, *data], tmp_path / "teacher")
    cfg.test = False
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"


def controller_overrides(tmp_path: Path, data: list[str], gan: list[str]) -> list[str]:
    """A briefly trained tiny GAN and two attribute predictors on its 64 px prints, for experiment=fpgan_controller."""
    predictor = [*data, "model.net.stem_pool=2"]
    runs = {
        "gan": ("fpgan_fingerprint", gan),
        "condition": ("fpgan_attribute", [*predictor, "data.task=condition"]),
        "device": ("fpgan_attribute", [*predictor, "data.task=device"]),
    }
    checkpoints = {name: teacher_checkpoint(tmp_path / name, *run) for name, run in runs.items()}
    return ["data.resolution=64", "data.train=32", "data.val=16", "data.test=16", "data.batch_size=16",
            f"model.gan={checkpoints['gan']}", f"model.attributes.condition={checkpoints['condition']}",
            f"model.attributes.device={checkpoints['device']}", "model.evaluation.per_value=2",
            "model.evaluation.batch_size=16", "model.evaluation.grid_rows=2"]  # fmt: skip


def data_overrides(experiment: str, tmp_path: Path) -> list[str]:
    """Point data-hungry experiments at tiny on-disk datasets in the real formats, KD students at a teacher."""
    if experiment.startswith("fpgan_"):  # 64 px prints (48 = 3 * 2^4 at the paper's base 3); tiny embedder, channels
        size = 48 if experiment == "fpgan_fingerprint_paper" else 64
        data = ["data.n_fingers=16", "data.impressions=2", "data.generator.size=128", f"data.image_size={size}",
                "data.gen_workers=0", "data.val_fraction=0.25"]  # fmt: skip
        if experiment.startswith("fpgan_recognizer"):
            return data
        if experiment == "fpgan_attribute":
            return [*data, "model.net.stem_pool=2"]
        embedder = teacher_checkpoint(tmp_path, "fpgan_recognizer", data)
        gan = [*data, f"recognizer.path={embedder}", "model.generator.channel_base=256",
               "model.generator.channel_max=16", "model.evaluation.val=[8,2]"]  # fmt: skip
        return controller_overrides(tmp_path, data, gan) if experiment == "fpgan_controller" else gan
    if experiment == "verify_bozorth3":  # the classic matcher: no recognizer; native-size tiny prints
        pytest.importorskip("afis")
        return ["data.n_fingers=10", "data.impressions=2", "data.generator.size=128", "data.gen_workers=0",
                "data.val_fraction=0.2", "model.minutiae_source=truth", "model.workers=0"]  # fmt: skip
    if experiment.startswith("ipr_faces"):  # dlib-aligned chips of the real face photos, dlib's descriptor
        pytest.importorskip("dlib", reason="the face experiments need the faces extra")
        if not (SHARED_DATA / "faces-real").is_dir():
            pytest.skip("../shared/data/faces-real is absent")
        faces = [f"data.data_dir={SHARED_DATA / 'faces-real'}", "data.batch_size=32"]  # one batch: the test split
        return [*faces, "model.codec.N=16", "model.codec.M=24"]
    if experiment.endswith("_folder") or experiment.startswith("ipr_cifar"):
        data = [f"data.data_dir={make_image_folder(tmp_path / 'folder')}"]
    elif experiment.startswith("ipr_fingerprint"):  # codec: 64 px prints; the recognizer is a tiny embedder
        data = ["data.n_fingers=16", "data.impressions=2", "data.generator.size=128", "data.image_size=64",
                "data.gen_workers=0", "data.val_fraction=0.25"]  # fmt: skip
        embedder = teacher_checkpoint(tmp_path, "fp_cnn", data)
        return [*data, f"recognizer.path={embedder}", "model.codec.N=16", "model.codec.M=24"]
    elif "fingerprint" in experiment:
        tiny = ["data.n_fingers=10", "data.impressions=2", "data.generator.size=128", "data.image_size=64"]
        data = [*tiny, "data.gen_workers=0", "data.val_fraction=0.2"]
        if not experiment.startswith("verify_"):
            data.append("model.net.stem_pool=2")
    elif experiment.startswith("fp_"):  # embedders: enough fingers for genuine and impostor pairs in val and test
        data = ["data.n_fingers=16", "data.impressions=2", "data.generator.size=128", "data.image_size=64",
                "data.gen_workers=0", "data.val_fraction=0.25"]  # fmt: skip
    elif experiment.startswith("prune_cifar"):
        variant = 100 if experiment.endswith("100") else 10
        data = [f"data.data_dir={make_cifar_folder(tmp_path / 'cifar', variant)}"]
    else:
        data = []
    if experiment.startswith("kd_"):
        teacher = experiment.replace("kd_", "teacher_")
        return [*data, f"model.teacher_ckpt={teacher_checkpoint(tmp_path, teacher, data)}"]
    if experiment.startswith("ipr_cifar"):  # a briefly trained folder classifier's logits
        teacher = teacher_checkpoint(tmp_path, "teacher_folder", data)
        return [*data, f"recognizer.path={teacher}", "model.codec.N=16", "model.codec.M=24"]
    if experiment == "fp_fusion":  # one briefly trained ViT embedder fused with itself
        embedder = teacher_checkpoint(tmp_path, "fp_vit", data)
        return [*data, f"recognizer.first.path={embedder}", f"recognizer.second.path={embedder}"]
    if experiment.startswith("verify_"):  # a Henry-class classifier's features as the recognizer under test
        teacher = teacher_checkpoint(tmp_path, "teacher_fingerprint_class", [*data, "model.net.stem_pool=2"])
        return [*data, f"recognizer.path={teacher}"]
    return data


def trains(experiment: str, compose_train) -> bool:
    """Whether the experiment's system trains (systems without weights of their own are evaluated only)."""
    return system_class(compose_train(f"experiment={experiment}").model).requires_checkpoint


def test_experiments_are_discovered() -> None:
    expected = {"prune_digits", "prune_cifar10", "prune_cifar100", "prune_folder", "prune_fingerprint_class"}
    assert expected | {"teacher_digits", "kd_digits"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_for_train_and_eval(experiment: str, compose_train, compose_eval) -> None:
    cfg = compose_train(f"experiment={experiment}")
    assert cfg.task_name == experiment and cfg.model._target_ and cfg.data._target_
    if cfg.get("pruning"):
        instantiate(cfg.pruning)  # score, sampler and keep ratio are valid
    ecfg = compose_eval(f"experiment={experiment}", "ckpt_path=x.ckpt", out="run")
    assert ecfg.data == cfg.data and ecfg.model == cfg.model


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_under_fast_dev_run(experiment: str, compose_train, compose_eval, tmp_path: Path) -> None:
    overrides = [f"experiment={experiment}", "debug=fdr", *data_overrides(experiment, tmp_path)]
    if trains(experiment, compose_train):
        cfg = compose_train(*overrides)
        metrics = train(cfg)
        assert "train/loss" in metrics
    else:
        cfg = compose_eval(*overrides)
        metrics = evaluate(cfg)
    cls = system_class(cfg.model)
    test_metrics = [m for m in cls.metrics if m.startswith("test/")]
    written = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert test_metrics and set(test_metrics) <= set(written)
    assert all(0.0 <= written[m] <= 1.0 for m in test_metrics if metric_info(m).scale == 100.0)


def test_debug_limit_runs_three_short_epochs(compose_train) -> None:
    cfg = compose_train("experiment=prune_digits", "debug=limit")
    train(cfg)
    assert cfg.trainer.max_epochs == 3 and (Path(cfg.paths.output_dir) / "metrics.json").is_file()


def test_debug_overfit_drives_training_loss_to_zero(compose_train) -> None:
    metrics = train(compose_train("experiment=prune_digits", "debug=overfit"))
    assert float(metrics["train/loss"]) < 0.05

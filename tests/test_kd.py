"""Knowledge distillation: the loss against hand computations, alpha schedules, safe teacher loading."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import compose_config

from biobench.eval import evaluate
from biobench.models.kd_student import KDStudent, kd_alpha, kd_loss, load_teacher
from biobench.train import train

torch.manual_seed(0)
S, T, Y = torch.randn(8, 5), torch.randn(8, 5), torch.randint(0, 5, (8,))


def test_alpha_zero_is_exactly_cross_entropy() -> None:
    assert torch.equal(kd_loss(S, T, Y, alpha=0.0, temperature=4.0), F.cross_entropy(S, Y))


def test_kl_term_matches_a_hand_computation_and_scales_with_t_squared() -> None:
    for temp in (1.0, 2.0, 5.0):
        p_t, p_s = (T / temp).softmax(1), (S / temp).softmax(1)
        kl = (p_t * (p_t.log() - p_s.log())).sum(1).mean()
        assert kd_loss(S, T, Y, alpha=1.0, temperature=temp) == pytest.approx(temp**2 * kl.item(), rel=1e-5)
        mixed = 0.7 * F.cross_entropy(S, Y) + 0.3 * temp**2 * kl
        assert kd_loss(S, T, Y, alpha=0.3, temperature=temp) == pytest.approx(mixed.item(), rel=1e-5)
    assert kd_loss(S, S, Y, alpha=1.0, temperature=3.0) == pytest.approx(0.0, abs=1e-6)  # same logits: no KL


def test_alpha_schedules_follow_the_keep_ratio() -> None:
    assert kd_alpha("constant", 0.1, alpha=0.4) == 0.4
    assert kd_alpha("linear", 1.0, alpha_min=0.2, alpha_max=0.9) == pytest.approx(0.2)
    assert kd_alpha("linear", 0.1, alpha_min=0.2, alpha_max=0.9) == pytest.approx(0.83)
    table = {0.1: 0.9, 0.5: 0.5, 1.0: 0.1}
    assert kd_alpha("table", 0.3, table=table) == pytest.approx(0.7)
    assert kd_alpha("table", 0.05, table=table) == pytest.approx(0.9)  # clamped at the ends
    with pytest.raises(ValueError, match="alpha_schedule must be one of"):
        kd_alpha("cosine", 0.5)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        kd_alpha("constant", 0.5, alpha=1.5)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("teacher")
    cfg = compose_config("train", ["experiment=teacher_digits", "trainer.max_epochs=3", "logger=csv"], out)
    cfg.test = False
    train(cfg)
    return out / "checkpoints" / "best.ckpt"


def student(teacher_ckpt: Path, num_classes: int = 10, net: dict | None = None, **kwargs) -> KDStudent:
    return KDStudent(
        teacher_ckpt=str(teacher_ckpt),
        net=net or {"name": "small_cnn", "width": 8},
        num_classes=num_classes,
        in_chans=1,
        optimizer=partial(torch.optim.SGD, lr=0.1),
        **kwargs,
    )


def test_teacher_is_frozen_in_eval_mode_and_gives_the_soft_targets(teacher: Path) -> None:
    model = student(teacher, alpha=1.0, temperature=2.0)
    model.train()
    assert not model.teacher.training and not any(p.requires_grad for p in model.teacher.parameters())
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    logits = model(x)
    expected = kd_loss(logits, model.teacher(x), y, 1.0, 2.0)
    assert torch.allclose(model.compute_loss(logits, {"image": x, "label": y}), expected)


def test_folded_teacher_gives_the_checkpoint_networks_logits(teacher: Path) -> None:
    net, _ = load_teacher(teacher, 10, 1)
    model = student(teacher, channels_last=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.teacher.modules())  # folded into the convs
    x = torch.randn(6, 1, 8, 8)
    assert torch.allclose(model.teacher(x.contiguous(memory_format=torch.channels_last)), net(x), atol=1e-5)


def test_teacher_of_another_shape_or_data_fails_clearly(teacher: Path, compose_train) -> None:
    with pytest.raises(ValueError, match=r"predicts 10 classes from 1 channels, but the student's data has 5 classes"):
        student(teacher, num_classes=5)
    ckpt = torch.load(teacher, weights_only=True)
    ckpt["hyper_parameters"]["net"] = {**ckpt["hyper_parameters"]["net"], "width": 4}  # weights of another width
    torch.save(ckpt, teacher.parent / "resized.ckpt")
    with pytest.raises(ValueError, match=r"resized\.ckpt' does not fit its own network spec"):
        student(teacher.parent / "resized.ckpt")
    with pytest.raises(FileNotFoundError, match=r"missing\.ckpt"):
        load_teacher(teacher.parent / "missing.ckpt", 10, 1)
    cfg = compose_train(
        "experiment=kd_digits",
        f"model.teacher_ckpt={teacher}",
        "data.split_seed=3",
        "trainer.max_epochs=1",
        "logger=csv",
    )
    with pytest.raises(ValueError, match=r"was trained on data .* but the student's data is"):
        train(cfg)


@pytest.fixture(scope="module")
def kd_run(teacher: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A KD student trained from the config (keep 0.3, linear alpha): (run dir, its metrics)."""
    out = tmp_path_factory.mktemp("kd_run")
    overrides = [
        "experiment=kd_digits",
        f"model.teacher_ckpt={teacher}",
        "pruning.keep_ratio=0.3",
        "model.alpha_schedule=linear",
        "trainer.max_epochs=4",
        "logger=csv",
    ]
    return out, train(compose_config("train", overrides, out))


def test_kd_student_trains_from_the_config_and_records_its_weight(kd_run: tuple[Path, dict]) -> None:
    out, metrics = kd_run
    assert float(metrics["test/acc"]) > 0.5
    ckpt = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["kd"]["alpha"] == pytest.approx(0.7)  # linear: 1 - keep ratio
    assert json.loads((out / "metrics.json").read_text())["pruning/kept_fraction"] < 0.31


def test_student_checkpoint_holds_no_teacher_and_needs_the_same_teacher(
    teacher: Path, kd_run: tuple[Path, dict], compose_eval
) -> None:
    out, metrics = kd_run
    ckpt = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)
    assert not any(k.startswith("teacher.") for k in ckpt["state_dict"])  # a plain classifier's weights
    reloaded = student(teacher, net=ckpt["hyper_parameters"]["net"])
    reloaded.load_state_dict(ckpt["state_dict"])
    assert all(torch.equal(v, ckpt["state_dict"][k]) for k, v in reloaded.state_dict().items())
    wrapped = torch.nn.Sequential(reloaded)  # e.g. a weight-averaging wrapper: the teacher stays out there too
    assert set(wrapped.state_dict()) == {f"0.{k}" for k in ckpt["state_dict"]}
    wrapped.load_state_dict(wrapped.state_dict())
    # a checkpoint that still carries teacher weights (older format) loads and evaluates the same
    legacy = out / "legacy.ckpt"
    teacher_weights = {f"teacher.{k}": v for k, v in ckpt["state_dict"].items()}
    torch.save({**ckpt, "state_dict": {**ckpt["state_dict"], **teacher_weights}}, legacy)
    overrides = ("experiment=kd_digits", f"model.teacher_ckpt={teacher}", "logger=csv", f"ckpt_path={legacy}")
    evaluated = evaluate(compose_eval(*overrides))
    assert float(evaluated["test/acc"]) == pytest.approx(float(metrics["test/acc"]))
    # resuming with a teacher file whose content changed since is refused (the teacher is not in the checkpoint)
    other_teacher = {**ckpt["hyper_parameters"]["kd"], "teacher_hash": "0" * 16}
    with pytest.raises(ValueError, match=r"is not the teacher this run was trained with"):
        reloaded.on_load_checkpoint({"hyper_parameters": {"kd": other_teacher}})
    reloaded.on_load_checkpoint(ckpt)  # the same teacher file: accepted


def test_cached_teacher_logits_equal_online_ones_without_augmentation(teacher: Path, tmp_path: Path) -> None:
    import pytorch_lightning as pl

    from biobench.data import DigitsDataModule

    dm = DigitsDataModule(batch_size=32)
    model = student(teacher, alpha=0.8, teacher_logits="cached", cache_dir=str(tmp_path))
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        accelerator="cpu",
    )
    trainer.fit(model, datamodule=dm)
    assert list((tmp_path / "teacher_logits").glob("*.npz"))  # stored for the next run of the sweep
    batch = next(iter(dm.train_dataloader()))
    logits = model(batch["image"])
    cached = model.compute_loss(logits, batch)
    model.cached_logits = None
    assert torch.allclose(cached, model.compute_loss(logits, batch), atol=1e-5)

    augmented = DigitsDataModule(crop_padding=1)
    model = student(teacher, teacher_logits="cached")
    with pytest.raises(ValueError, match="without augmentation"):
        model._cached_teacher_logits(augmented)


def test_teacher_logit_cache_key_covers_normalisation_and_code_version(monkeypatch) -> None:
    from biobench.data import DigitsDataModule
    from biobench.models import kd_student

    base = kd_student.teacher_logits_key("abc", DigitsDataModule())
    assert base == kd_student.teacher_logits_key("abc", DigitsDataModule(batch_size=7))  # loader knobs do not count
    assert base != kd_student.teacher_logits_key("abc", DigitsDataModule(mean=[0.3], std=[0.38]))
    assert base != kd_student.teacher_logits_key("abd", DigitsDataModule())
    monkeypatch.setattr(kd_student, "TEACHER_LOGITS_VERSION", kd_student.TEACHER_LOGITS_VERSION + 1)
    assert base != kd_student.teacher_logits_key("abc", DigitsDataModule())


def test_kd_from_a_clean_teacher_beats_cross_entropy_on_noisy_labels(teacher: Path) -> None:
    """40% of the student's training labels are wrong; the clean teacher's soft targets correct much of it."""
    import pytorch_lightning as pl

    from biobench.data import DigitsDataModule

    accuracy = {}
    for alpha in (0.0, 0.9):
        pl.seed_everything(0)
        noisy = DigitsDataModule(label_noise=0.4, batch_size=64)
        model = KDStudent(
            teacher_ckpt=str(teacher),
            net={"name": "small_cnn", "width": 32},
            num_classes=10,
            in_chans=1,
            alpha=alpha,
            temperature=4.0,
            optimizer=partial(torch.optim.SGD, lr=0.05, momentum=0.9, nesterov=True),
        )
        trainer = pl.Trainer(
            max_epochs=5,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            accelerator="cpu",
            num_sanity_val_steps=0,
        )
        trainer.fit(model, train_dataloaders=noisy.train_dataloader())
        accuracy[alpha] = trainer.test(model, dataloaders=noisy.test_dataloader(), verbose=False)[0]["test/acc"]
    print("KD vs CE test accuracy on 40% noisy labels:", accuracy)
    assert accuracy[0.9] > accuracy[0.0] + 0.03, accuracy

"""Shared fixtures: configs composed with Hydra's compose API, outputs under tmp_path, CPU only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict
from PIL import Image

from biobench.models.nets import register_net
from biobench.train import train
from biobench.utils.compose import compose_run_config

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


CLI_ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def run_python(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python <args>`` as a user runs it (a fresh process, W&B offline), output captured."""
    env = {**CLI_ENV, **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def compose_config(name: str, overrides: list[str], out: Path) -> DictConfig:
    """Compose ``conf/<name>.yaml`` with overrides, all outputs under ``out``, on one CPU device, no progress bar."""
    cfg = compose_run_config(name, overrides, out)
    with open_dict(cfg):
        cfg.trainer.accelerator = "cpu"
        cfg.trainer.devices = 1
        cfg.trainer.enable_progress_bar = False
        if cfg.get("callbacks"):
            cfg.callbacks.pop("progress_bar", None)
    return cfg


def _composer(name: str, default_out: str, tmp_path: Path):
    def _compose(*overrides: str, out: str = default_out) -> DictConfig:
        return compose_config(name, list(overrides), tmp_path / out)

    return _compose


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``): for single images
    and tiny GEMMs on a shared CPU, an OpenMP team waiting for descheduled threads costs more than it brings."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def compose_train(tmp_path: Path):
    """``compose_train(*overrides, out=subdir)`` -> a train config writing under tmp_path."""
    yield _composer("train", "run", tmp_path)
    GlobalHydra.instance().clear()


@pytest.fixture
def compose_eval(tmp_path: Path):
    """``compose_eval(*overrides, out=subdir)`` -> an eval config writing under tmp_path."""
    yield _composer("eval", "eval", tmp_path)
    GlobalHydra.instance().clear()


def make_image_folder(
    root: Path, classes: int = 3, per_class: int = 12, test_per_class: int = 4, size: int = 16, seed: int = 0
) -> Path:
    """A small ImageFolder dataset whose classes differ in mean colour (learnable)."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("test", test_per_class)):
        for c in range(classes):
            d = root / split / f"class_{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                base = np.zeros(3)
                base[c % 3] = 180
                img = np.clip(base + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i:04d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return make_image_folder(tmp_path / "folder")


@pytest.fixture(scope="session")
def cifar10_mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real CIFAR-10 subset from ../shared/data, extracted once per session (skipped when absent)."""
    tar = SHARED_DATA / "cifar10-mini.tar"
    if not tar.is_file():
        pytest.skip(f"real CIFAR-10 subset not available ({tar} missing)")
    out = tmp_path_factory.mktemp("cifar10mini")
    with tarfile.open(tar) as tf:
        tf.extractall(out, filter="data")
    return out / "cifar10-mini"


class CrashAtEpoch(pl.Callback):
    """Simulates a killed run: raises at the start of epoch ``epoch`` (after earlier checkpoints were saved)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"simulated crash at epoch {self.epoch}")


def train_crash_and_resume(compose_train, overrides: list[str], crash_epoch: int = 2) -> tuple[Path, Path]:
    """Train ``overrides`` uninterrupted, and again with a crash at ``crash_epoch`` resumed from ``last.ckpt``;
    returns the run dirs ``(uninterrupted, resumed)``. The crashed run's status says failed until the resume."""
    full = compose_train(*overrides, out="full")
    train(full)
    crash = ["+callbacks.crash._target_=conftest.CrashAtEpoch", f"+callbacks.crash.epoch={crash_epoch}"]
    crashed = compose_train(*overrides, *crash, out="crashed")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(crashed)
    out = Path(crashed.paths.output_dir)
    assert json.loads((out / "status.json").read_text())["status"] == "failed"
    assert not (out / "metrics.json").exists()  # a crashed run never looks finished
    last = out / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == crash_epoch - 1  # the last finished epoch
    train(compose_train(*overrides, f"ckpt_path={last}", out="crashed"))
    assert json.loads((out / "status.json").read_text())["status"] == "done"
    return Path(full.paths.output_dir), out


def make_cifar_folder(root: Path, variant: int = 10, n_train: int = 60, n_test: int = 20, seed: int = 0) -> Path:
    """A tiny dataset in torchvision's CIFAR-10 / CIFAR-100 pickle layout (random pixels)."""
    import pickle

    rng = np.random.default_rng(seed)
    classes = 10 if variant == 10 else 100
    folder = root / ("cifar-10-batches-py" if variant == 10 else "cifar-100-python")
    folder.mkdir(parents=True)
    key = "labels" if variant == 10 else "fine_labels"

    def batch(n: int) -> dict:
        return {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), key: rng.integers(0, classes, n).tolist()}

    names = (
        {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
        if variant == 10
        else {"train": ["train"], "test": ["test"]}
    )
    for split, files in names.items():
        for name in files:
            (folder / name).write_bytes(pickle.dumps(batch((n_train if split == "train" else n_test) // len(files))))
    meta_name, names_key = ("batches.meta", "label_names") if variant == 10 else ("meta", "fine_label_names")
    (folder / meta_name).write_bytes(pickle.dumps({names_key: [f"c{i}" for i in range(classes)]}))
    return root


class RecordSeenIndices(pl.Callback):
    """Writes the training-sample indices each rank saw in its first epoch to ``<out>/rank<r>.npy``."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.seen: list[np.ndarray] = []

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if trainer.current_epoch == 0:
            self.seen.append(batch["index"].cpu().numpy())

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            np.save(self.out / f"rank{trainer.global_rank}.npy", np.concatenate(self.seen))


class FixedLinear(torch.nn.Module):
    """A linear classifier on flattened pixels with no batch statistics: outputs depend on the sample only."""

    def __init__(self, num_classes: int, in_chans: int, pixels: int = 64) -> None:
        super().__init__()
        self.num_features = in_chans * pixels
        self.head = torch.nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(1))


@register_net
def fixed_linear(num_classes: int, in_chans: int = 1) -> FixedLinear:
    return FixedLinear(num_classes, in_chans)


def wandb_run_record(run_dir: Path):
    """The run record (id, project, group, tags) of an offline W&B run dir (``offline-run-*``), read from its
    ``.wandb`` log: a LevelDB-style log of 32 KiB blocks of (crc32, length, type) framed protobuf records."""
    from wandb.proto import wandb_internal_pb2

    data = next(Path(run_dir).glob("*.wandb")).read_bytes()
    pos, block, payload = 7, 32768, b""  # 7-byte file header ':W&B' + magic + version
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        payload += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(payload)
            payload = b""
            if record.WhichOneof("record_type") == "run":
                return record.run
    raise AssertionError(f"no run record in {run_dir}")

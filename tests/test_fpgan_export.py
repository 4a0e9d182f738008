"""Synthetic-set export from an FPGAN-Control checkpoint: exactly N x M prints in FVC naming with metadata, latents
that depend on the seed only, shared identity and appearance where asked, and folders that are never overwritten."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_fpgan_control import tiny_gan

from biobench.data.fingerprints.readers import read_fingerprint_folder
from biobench.models.fpgan_export import (
    FPGAN_SYSTEM,
    ExportSettings,
    export_generated,
    identity_latents,
    load_generator,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    model = tiny_gan()
    with torch.no_grad():  # g_ema differs from the generator, so loading the wrong one would show
        for p in model.g_ema.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("fpgan") / "gan.ckpt"
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("recognizer.")}
    torch.save({"system": FPGAN_SYSTEM, "hyper_parameters": dict(model.hparams), "state_dict": state}, path)
    return path


def read_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "metadata.csv", newline="") as f:
        return list(csv.DictReader(f))


def pixels(out: Path, name: str) -> np.ndarray:
    return np.asarray(Image.open(out / name), dtype=np.int16)


def test_the_ema_generator_is_loaded(checkpoint: Path) -> None:
    g = load_generator(checkpoint)
    saved = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert all(torch.equal(v, saved[f"g_ema.{k}"]) for k, v in g.state_dict().items())
    assert not g.training and not any(p.requires_grad for p in g.parameters())


def test_export_writes_exactly_n_by_m_prints_with_metadata(checkpoint: Path, tmp_path: Path) -> None:
    g = load_generator(checkpoint)
    metadata = export_generated(g, tmp_path / "set", 3, 4, ExportSettings(seed=5), batch_size=5, source=str(checkpoint))
    out = metadata.parent
    rows = read_rows(out)
    assert [r["file"] for r in rows] == [f"{i}_{j}.png" for i in range(1, 4) for j in range(1, 5)]
    assert sorted(p.name for p in out.glob("*_*.png")) == sorted(r["file"] for r in rows)
    assert len({r["appearance"] for r in rows}) == 12  # random appearance: one z_app per print
    image = Image.open(out / "2_3.png")
    assert image.size == (32, 32) and image.mode == "L"
    record = json.loads((out / "export.json").read_text())
    assert record["status"] == "done" and record["seed"] == 5 and record["source"] == str(checkpoint)
    assert (out / "grid.svg").is_file()
    records = read_fingerprint_folder(out)  # the set reads back as a folder of prints (data.data_dir=<out>)
    assert len(records) == 12 and records.finger.tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_a_set_depends_on_the_seed_not_on_the_batch_size(checkpoint: Path, tmp_path: Path) -> None:
    g = load_generator(checkpoint)
    a, b, c = (export_generated(g, tmp_path / name, 2, 3, ExportSettings(seed=seed), batch_size=size).parent
               for name, seed, size in (("a", 1, 1), ("b", 1, 64), ("c", 2, 64)))  # fmt: skip
    names = [r["file"] for r in read_rows(a)]
    assert all(np.array_equal(pixels(a, n), pixels(b, n)) for n in names)
    assert not np.array_equal(pixels(a, "1_1.png"), pixels(c, "1_1.png"))


def test_shared_appearance_repeats_the_columns_across_identities(checkpoint: Path, tmp_path: Path) -> None:
    g = load_generator(checkpoint)
    out = export_generated(g, tmp_path / "set", 3, 2, ExportSettings(shared_appearance=True)).parent
    assert [r["appearance"] for r in read_rows(out)] == ["0", "1"] * 3
    (id_a, app_a, noise_a, _), (id_b, app_b, noise_b, _) = list(
        identity_latents(g, 2, 2, ExportSettings(shared_appearance=True))
    )
    assert torch.equal(app_a, app_b) and not torch.equal(id_a, id_b)  # columns share z_app, rows their own z_id
    assert torch.equal(id_a[0], id_a[1]) and not torch.equal(noise_a[0], noise_b[0])  # one z_id + noise per row


def test_existing_sets_and_foreign_images_are_never_overwritten(checkpoint: Path, tmp_path: Path) -> None:
    g = load_generator(checkpoint)
    out = export_generated(g, tmp_path / "set", 2, 2).parent
    before = (out / "1_1.png").read_bytes()
    with pytest.raises(FileExistsError, match="already holds an exported set"):
        export_generated(g, out, 2, 2, ExportSettings(seed=9))
    assert (out / "1_1.png").read_bytes() == before and len(read_rows(out)) == 4
    export_generated(g, out, 1, 2, ExportSettings(seed=9), overwrite=True)  # deletes the listed files first
    assert sorted(p.name for p in out.glob("*_*.png")) == ["1_1.png", "1_2.png"]

    foreign = tmp_path / "fvc"
    foreign.mkdir()
    (foreign / "2_1.png").write_bytes(b"a real print")
    with pytest.raises(FileExistsError, match=r"2_1\.png exists and is not part of an FPGAN export"):
        export_generated(g, foreign, 2, 2)
    assert (foreign / "2_1.png").read_bytes() == b"a real print"


def test_a_killed_export_is_written_again(checkpoint: Path, tmp_path: Path) -> None:
    g = load_generator(checkpoint)
    out = tmp_path / "set"
    out.mkdir()
    (out / "export.json").write_text(json.dumps({"status": "writing"}))  # what a killed export leaves
    (out / "1_1.png").write_bytes(b"half")
    export_generated(g, out, 1, 1)
    assert Image.open(out / "1_1.png").size == (32, 32) and len(read_rows(out)) == 1


def test_bad_checkpoints_and_counts_fail_clearly(checkpoint: Path, tmp_path: Path) -> None:
    other = tmp_path / "embedder.ckpt"
    torch.save({"system": "fingerprint_embedder", "hyper_parameters": {}, "state_dict": {}}, other)
    with pytest.raises(ValueError, match=r"embedder\.ckpt' is not an FPGAN-Control generator's \(fingerprint_embedder"):
        load_generator(other)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_generator(tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match="at least one identity"):
        export_generated(load_generator(checkpoint), tmp_path / "set", 0, 4)
    assert not (tmp_path / "set").exists()

"""Synthetic training sets from a trained FPGAN-Control checkpoint: ``identities x impressions`` prints of its EMA
generator in FVC naming, with metadata, a sample grid and a marker that makes a killed export restartable.

Each identity is one ``z_id`` and one set of noise maps (shared by its impressions, as in training); each impression
its own ``z_app`` (random appearance), or impression ``j`` of every identity the same ``z_app`` (``shared_appearance``:
the same appearance across identities, a grid's columns). Latents are drawn identity by identity from one seeded CPU
generator, so a set depends on the seed, never on the batch size or the device.

Files under ``out``: ``<identity>_<impression>.png`` (1-based, as FVC; 8-bit grey or RGB), ``metadata.csv``
(file, identity, impression, appearance index, the controller request if any), ``export.json`` (checkpoint, seed,
truncation, counts, ``status``) and ``grid.svg`` (the first identities x appearances; SVG, so the folder holds no
image but the prints and reads back as a fingerprint folder). ``export.json`` is written first with ``status:
writing`` and ``metadata.csv`` last: a folder with metadata holds a finished set and is refused (unless
``overwrite``, which first deletes the files its metadata lists); a folder holding other images of these names is
refused; a folder left ``writing`` by a killed export of ours is written again from the start.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image
from tqdm.auto import tqdm

from biobench.metrics.compression.decoded import to_uint8
from biobench.models.nets.fpgan_generator import FPGANGenerator
from biobench.utils.checkpoint import read_system_checkpoint
from biobench.utils.io import atomic_write, read_json, write_json, write_text

FPGAN_SYSTEM = "fpgan_control"  # the checkpoint's ``system`` entry (FPGANControl.on_save_checkpoint)
METADATA_FIELDS = ("file", "identity", "impression", "appearance", "requested")
GRID_SIDE = 6  # grid.svg: at most 6 identities x 6 impressions


def load_generator(path: str | Path) -> FPGANGenerator:
    """The EMA generator (``g_ema``) of FPGAN-Control checkpoint ``path``, rebuilt from its hyperparameters, frozen
    in eval mode; a checkpoint of another system is an error naming the file."""
    ckpt = read_system_checkpoint(
        path,
        FPGAN_SYSTEM,
        "an FPGAN-Control generator's",
        "give a model=fpgan_control run's checkpoint (experiment=fpgan_fingerprint).",
    )
    hp = ckpt["hyper_parameters"]
    g = FPGANGenerator(resolution=hp["resolution"], img_channels=hp["img_channels"], **hp["generator"])
    state = {k.removeprefix("g_ema."): v for k, v in ckpt["state_dict"].items() if k.startswith("g_ema.")}
    try:
        g.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"Checkpoint '{path}' does not fit its own generator spec {hp['generator']}: {err}") from err
    return g.eval().requires_grad_(False)


@dataclass(frozen=True)
class ExportSettings:
    """What a set is drawn with: ``seed``, truncation ``psi_id`` / ``psi_app`` (1 = none) and whether impression
    ``j`` shares one appearance across identities."""

    seed: int = 0
    psi_id: float = 1.0
    psi_app: float = 1.0
    shared_appearance: bool = False


@dataclass(frozen=True)
class RequestedAppearance:
    """A controller's appearance per impression column: ``w_app [impressions, d]`` (the appearance part of w, from
    :class:`~biobench.models.fpgan_controller.AttributeController`) and each column's request as text."""

    w_app: torch.Tensor
    requests: tuple[str, ...]


def identity_latents(
    g: FPGANGenerator, identities: int, impressions: int, settings: ExportSettings
) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], np.ndarray]]:
    """Per identity, in order: ``z_id [impressions, d]``, ``z_app [impressions, d]``, its noise maps (batch 1) and the
    impressions' appearance indices; all drawn on the CPU from one generator seeded with ``settings.seed``."""
    rng = torch.Generator().manual_seed(settings.seed)
    shared = torch.randn(impressions, g.appearance_dim, generator=rng) if settings.shared_appearance else None
    for identity in range(identities):
        z_id = torch.randn(1, g.identity_dim, generator=rng).expand(impressions, -1)
        noise = g.make_noise(1, rng)
        z_app = shared if shared is not None else torch.randn(impressions, g.appearance_dim, generator=rng)
        first = 0 if shared is not None else identity * impressions
        yield z_id, z_app, noise, np.arange(first, first + impressions)


def _check_folder(out: Path, identities: int, impressions: int, overwrite: bool) -> None:
    """Refuse a finished set (unless ``overwrite``: its listed files are deleted) and foreign images of our names."""
    metadata, marker = out / "metadata.csv", out / "export.json"
    if metadata.exists():
        if not overwrite:
            raise FileExistsError(f"{out} already holds an exported set ({metadata}); choose another folder or "
                                  "overwrite.")  # fmt: skip
        with open(metadata, newline="") as f:
            for row in csv.DictReader(f):
                (out / row["file"]).unlink(missing_ok=True)
        metadata.unlink()
        return
    ours = marker.exists() and read_json(marker, "export marker").get("status") == "writing"
    if ours or overwrite:
        return
    names = (f"{i + 1}_{j + 1}.png" for i in range(identities) for j in range(impressions))
    clash = next((out / n for n in names if (out / n).exists()), None)
    if clash is not None:
        raise FileExistsError(f"{clash} exists and is not part of an FPGAN export: choose another folder.")


def export_generated(
    g: FPGANGenerator,
    out_dir: str | Path,
    identities: int,
    impressions: int,
    settings: ExportSettings = ExportSettings(),
    batch_size: int = 64,
    source: str = "",
    overwrite: bool = False,
    requested: RequestedAppearance | None = None,
) -> Path:
    """Write ``identities x impressions`` prints of ``g`` to ``out_dir`` (module docstring); returns the metadata
    CSV's path. ``source`` (the checkpoint) is recorded in ``export.json``; ``requested`` replaces impression
    ``j``'s appearance with a controller's (``impressions`` must equal its columns)."""
    if identities < 1 or impressions < 1:
        raise ValueError(f"Need at least one identity and one impression, got {identities} x {impressions}.")
    if requested is not None and tuple(requested.w_app.shape) != (impressions, g.w_dim - g.identity_w_dim):
        raise ValueError(f"Requested appearance w_app {list(requested.w_app.shape)} must be [impressions="
                         f"{impressions}, {g.w_dim - g.identity_w_dim}] for this generator.")  # fmt: skip
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"Export folder '{out}' is a file.")
    out.mkdir(parents=True, exist_ok=True)
    _check_folder(out, identities, impressions, overwrite)
    record = {"source": str(source), "identities": identities, "impressions": impressions,
              "resolution": g.resolution, "channels": g.img_channels, **vars(settings),
              "requested": list(requested.requests) if requested is not None else None}  # fmt: skip
    write_json(out / "export.json", record | {"status": "writing"})

    device = g.const.device
    per_batch = max(1, batch_size // impressions)  # whole identities per forward pass
    rows, grid = [], []
    latents = identity_latents(g, identities, impressions, settings)
    with tqdm(total=identities * impressions, desc=f"exporting to {out}", unit="img") as bar:
        for start in range(0, identities, per_batch):
            chunk = [next(latents) for _ in range(min(per_batch, identities - start))]
            z_id, z_app = (torch.cat([c[k] for c in chunk]).to(device) for k in (0, 1))
            noise = [torch.cat([c[2][layer] for c in chunk]).repeat_interleave(impressions, dim=0).to(device)
                     for layer in range(len(chunk[0][2]))]  # fmt: skip
            with torch.no_grad():
                w = g.mapping(z_id, z_app)
                if requested is not None:
                    w[:, g.identity_w_dim :] = requested.w_app.to(w).repeat(len(chunk), 1)
                images = g.synthesis(g.truncate(w, settings.psi_id, settings.psi_app), noise)
            for k, pixels in enumerate(to_uint8((images.float().clamp(-1, 1) + 1) / 2)):  # [-1, 1] -> [0, 1]
                identity, impression = start + k // impressions, k % impressions
                name = f"{identity + 1}_{impression + 1}.png"
                atomic_write(out / name, lambda tmp, p=pixels: Image.fromarray(p).save(tmp, "PNG"))
                appearance = int(chunk[k // impressions][3][impression])
                asked = requested.requests[impression] if requested is not None else ""
                rows.append({"file": name, "identity": identity + 1, "impression": impression + 1,
                             "appearance": appearance, "requested": asked})  # fmt: skip
                if identity < GRID_SIDE and impression < GRID_SIDE:
                    grid.append(images[k : k + 1].cpu())
            bar.update(len(images))

    save_grid(out / "grid.svg", torch.cat(grid), min(identities, GRID_SIDE), min(impressions, GRID_SIDE))
    write_json(out / "export.json", record | {"status": "done"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METADATA_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return write_text(out / "metadata.csv", buffer.getvalue())


def sample_grid_figure(images: torch.Tensor, rows: int, cols: int) -> Figure:
    """``rows x cols`` images in [-1, 1]: a row per identity, a column per appearance."""
    fig = Figure(figsize=(1.6 * cols, 1.6 * rows + 0.3), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, image in enumerate(images.clamp(-1, 1).float().cpu()):
        ax = axes[i // cols, i % cols]
        shown = image.permute(1, 2, 0).numpy()
        ax.imshow(shown[..., 0] if shown.shape[-1] == 1 else (shown + 1) / 2, cmap="gray", vmin=-1, vmax=1)
        ax.set_axis_off()
    fig.suptitle("rows: identity, columns: appearance", fontsize=9)
    return fig


def save_grid(path: Path, images: torch.Tensor, rows: int, cols: int) -> Path:
    """``rows x cols`` images (row-major, in [-1, 1]) as one SVG figure: rows identity, columns appearance."""
    figure = sample_grid_figure(images, rows, cols)
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="svg"))

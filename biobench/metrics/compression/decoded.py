"""Decoded images as an identity folder, so that any scorer that reads folders can judge a codec setting: above all
the classic afis Bozorth3 matcher, which scores images rather than embeddings (the paper's unseen-recognizer test):

    biobench-eval experiment=verify_bozorth3 data.data_dir=<folder> data.test_fraction=1.0 data.image_size=320

Layout ``<identity>/<impression>.png`` (1-based; the fingerprint reader's ``nested`` layout, and identity folders for
any reader of classes): 8-bit grey or RGB PNGs, written atomically into a folder that must not exist yet, so no
earlier set is ever overwritten; a ``.complete`` file is written last, so a folder without it is a partial write.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from biobench.utils.io import atomic_write, write_text

COMPLETE = ".complete"


def to_uint8(images: torch.Tensor) -> list[np.ndarray]:
    """Images in [0, 1] ``[N, C, H, W]`` as the uint8 arrays the codecs take (``H x W`` grey, ``H x W x 3`` RGB)."""
    pixels = images.mul(255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [p[..., 0] if p.shape[-1] == 1 else p for p in pixels]


def write_identity_folder(
    out: str | Path, images: Sequence[np.ndarray], identity: Sequence[int], impression: Sequence[int]
) -> Path:
    """Write ``images`` (uint8) as ``out/<identity + 1>/<impression + 1>.png``; returns ``out``.

    ``identity`` / ``impression`` are 0-based labels; a repeated pair, or an ``out`` that already exists, is an
    error before anything is written."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists: decoded images are written into a new folder only.")
    if not len(images) == len(identity) == len(impression):
        raise ValueError(f"write_identity_folder: {len(images)} images, {len(identity)} identity and "
                         f"{len(impression)} impression labels.")  # fmt: skip
    names = [f"{int(i) + 1}/{int(j) + 1}.png" for i, j in zip(identity, impression, strict=True)]
    if len(set(names)) != len(names):
        raise ValueError("write_identity_folder: an (identity, impression) pair repeats; every image needs its own.")
    for name, image in zip(names, images, strict=True):
        atomic_write(out / name, lambda tmp, im=image: Image.fromarray(im).save(tmp, "PNG"))
    write_text(out / COMPLETE, f"{len(names)} images\n")
    return out

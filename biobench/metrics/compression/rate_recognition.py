"""Rate-recognition points of the baseline codecs: the bits per pixel of their real bitstreams against the quality
and the recognition metrics of the decoded images, measured the way the IPR codec's test stage measures its own.

Every image is round-tripped through a :class:`~biobench.metrics.compression.Codec` at each quality of a sweep;
a point is ``{codec, quality, bpp, psnr, ms_ssim, ms_ssim_window, **recognition metrics}``:

- ``bpp``: the mean over images of each bitstream's real bits per pixel (:meth:`Codec.roundtrip`);
- ``psnr`` / ``ms_ssim``: means over images, against the float originals (the codecs take the uint8 rounding of
  them, as the learned codec takes the floats: the rounding costs ~59 dB, far beyond any point). MS-SSIM uses the
  largest window the image size allows (``ms_ssim_window``, the IPR codec's ``test/ms_ssim`` choice: 7 px at
  128 px, so not comparable with the standard 11-px MS-SSIM below 161 px); ``nan`` for sides of 32 px or less;
- the recognition metrics of a :class:`Scorer`: decoded probes against the uncompressed gallery
  (:func:`verification_scorer`: TAR@FAR, EER, rank-1) or a classifier's accuracy (:func:`classification_scorer`),
  next to the same metrics of the uncompressed images (:attr:`Scorer.reference`).

:func:`cached_baseline` stores each point as a JSON file keyed by content (images, codec settings, quality, the
scorer's protocol and labels, caller keys such as the recognizer file's hash), so a comparison re-run with other
learned codecs does not redo the baselines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from biobench.contracts import Recognizer
from biobench.metrics.compression.base import Codec
from biobench.metrics.compression.decoded import to_uint8
from biobench.metrics.compression.parity import Point
from biobench.metrics.compression.quality import image_to_tensor, ms_ssim, ms_ssim_window, psnr
from biobench.metrics.verification import VerificationMetrics, far_name
from biobench.utils.hashing import content_hash
from biobench.utils.io import read_json, write_json

log = logging.getLogger(__name__)

# Version of the cached points: bump it when how a point is computed changes, so older cache files are not reused.
POINTS_VERSION = 1


@dataclass(frozen=True)
class Scorer:
    """``scorer(decoded [N, C, H, W] in [0, 1]) -> {metric: value}`` of decoded images, with the same metrics of the
    uncompressed images (``reference``) and the protocol as JSON-able ``settings`` (a cache key)."""

    score: Callable[[torch.Tensor], dict[str, float]]
    reference: dict[str, float]
    settings: dict[str, Any]

    def __call__(self, decoded: torch.Tensor) -> dict[str, float]:
        return self.score(decoded)


def check_images(images: torch.Tensor) -> torch.Tensor:
    """``images`` as float ``[N, C, H, W]`` (C = 1 or 3) in [0, 1], or a ValueError saying what was given."""
    if images.ndim != 4 or images.shape[1] not in (1, 3) or len(images) == 0 or not images.is_floating_point():
        raise ValueError(f"Rate-recognition points need float images [N, 1 or 3, H, W], got {images.dtype} "
                         f"{tuple(images.shape)}.")  # fmt: skip
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        raise ValueError(f"Rate-recognition points need images in [0, 1], got values in [{low:.3g}, {high:.3g}]: "
                         "pass the datamodule's spec.to_unit(images).")  # fmt: skip
    return images.float()


@torch.no_grad()
def embed_images(recognizer: Recognizer, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """``recognizer.embed`` of ``images`` in batches of ``batch_size``, without gradients."""
    return torch.cat([recognizer.embed(chunk) for chunk in images.split(batch_size)])


def verification_scorer(
    recognizer: Recognizer,
    images: torch.Tensor,
    finger: torch.Tensor,
    impression: torch.Tensor,
    index: torch.Tensor,
    fars: Sequence[float] = (1e-2, 1e-3, 1e-4),
    impostors: str = "all",
    batch_size: int = 64,
) -> Scorer:
    """TAR at each FAR of ``fars``, EER and rank-1 of decoded probes against the uncompressed gallery (the IPR
    codec's test protocol; :class:`VerificationMetrics` with ``gallery``). ``recognizer`` takes images in [0, 1]
    (built with a DataSpec of mean 0, std 1). The reference, the uncompressed images against themselves, also
    holds the number of genuine and impostor pairs."""
    gallery = embed_images(recognizer, check_images(images), batch_size)
    labels = (finger.long(), impression.long(), index.long())
    keys = (*(far_name(f) for f in fars), "eer", "rank1")

    def verify(probes: torch.Tensor, enrolled: torch.Tensor | None) -> dict[str, float]:
        metrics = VerificationMetrics(fars, impostors=impostors)
        metrics.update(probes, *labels, gallery=enrolled)
        return {k: float(v) for k, v in metrics.compute().items()}

    reference = verify(gallery, None)
    settings = {"kind": "verification", "fars": [float(f) for f in fars], "impostors": impostors,
                "labels": content_hash(*(t.cpu().numpy() for t in labels))}  # fmt: skip

    def score(decoded: torch.Tensor) -> dict[str, float]:
        results = verify(embed_images(recognizer, decoded, batch_size), gallery)
        return {k: results[k] for k in keys}

    return Scorer(score, reference, settings)


def classification_scorer(
    recognizer: Recognizer, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 64
) -> Scorer:
    """Accuracy (``acc``) of the argmax of a logits recognizer (``classifier_recognizer(..., output="logits")``,
    taking images in [0, 1]) on decoded images, the IPR codec's classification evaluation."""
    labels = labels.long()

    def accuracy(x: torch.Tensor) -> dict[str, float]:
        logits = embed_images(recognizer, x, batch_size)
        if logits.shape[1] <= int(labels.max()):
            raise ValueError(
                f"classification_scorer: the recognizer gives {logits.shape[1]} outputs but the labels go up to "
                f"{int(labels.max())}: give a classifier's logits (output='logits')."
            )
        return {"acc": float((logits.argmax(1) == labels).float().mean())}

    reference = accuracy(check_images(images))
    return Scorer(accuracy, reference, {"kind": "classification", "labels": content_hash(labels.cpu().numpy())})


def unsupported(codec: Codec, images: torch.Tensor) -> str | None:
    """Why ``codec`` cannot code ``images`` (RGB into a grey-only codec, sides below its minimum), else ``None``."""
    if codec.gray_only and images.shape[1] == 3:
        return f"{codec.name} codes grey images only"
    if min(images.shape[-2:]) < codec.min_side:
        return f"{codec.name} needs at least {codec.min_side} px per side, the images have {tuple(images.shape[-2:])}"
    return None


def distortion(decoded: torch.Tensor, images: torch.Tensor) -> dict[str, Any]:
    """Mean PSNR and MS-SSIM (with the window the size allows; ``nan`` where none does) of decoded images."""
    side = min(images.shape[-2:])
    try:
        window = ms_ssim_window(side)
    except ValueError:
        window = None
    quality = float(ms_ssim(decoded, images, win_size=window).mean()) if window else float("nan")
    return {"psnr": float(psnr(decoded, images).mean()), "ms_ssim": quality, "ms_ssim_window": window}


def roundtrip_images(
    codec: Codec, quality: float, arrays: Sequence[np.ndarray], pool: ThreadPoolExecutor, bar: tqdm | None = None
) -> tuple[torch.Tensor, float]:
    """``arrays`` (uint8) through ``codec`` at ``quality`` on ``pool``'s threads: the decoded images ``[N, C, H, W]``
    in [0, 1] and their mean bpp."""

    def roundtrip(image: np.ndarray) -> tuple[np.ndarray, float]:
        result = codec.roundtrip(image, quality)
        if bar is not None:
            bar.update()
        return result

    decoded, bpps = zip(*pool.map(roundtrip, arrays), strict=True)
    return torch.cat([image_to_tensor(d) for d in decoded]), float(np.mean(bpps))


def evaluate_baseline(
    codec: Codec,
    qualities: Sequence[float],
    images: torch.Tensor,
    recognize: Callable[[torch.Tensor], dict[str, float]],
    workers: int = 1,
    progress: bool = True,
) -> list[Point]:
    """One point per quality of ``codec`` on ``images`` (``[N, C, H, W]`` in [0, 1]; module docstring):
    ``recognize(decoded)`` gives its recognition metrics. ``workers`` threads round-trip images in parallel (the
    FFmpeg codecs spend most of their ~50 ms an image starting a process)."""
    images = check_images(images)
    reason = unsupported(codec, images)
    if reason is not None:
        raise ValueError(f"evaluate_baseline: {reason}.")
    arrays = to_uint8(images)
    points = []
    with (
        tqdm(total=len(qualities) * len(arrays), desc=codec.name, leave=False, disable=not progress) as bar,
        ThreadPoolExecutor(max(1, workers)) as pool,
    ):
        for quality in qualities:
            x_hat, bpp = roundtrip_images(codec, quality, arrays, pool, bar)
            points.append({"codec": codec.name, "quality": quality, "bpp": bpp, **distortion(x_hat, images),
                           **recognize(x_hat)})  # fmt: skip
    return points


def cached_baseline(
    codec: Codec,
    qualities: Sequence[float],
    images: torch.Tensor,
    scorer: Scorer,
    cache_dir: str | Path | None,
    key: Sequence[Any] = (),
    workers: int = 1,
) -> list[Point]:
    """:func:`evaluate_baseline` with every point stored as ``<cache_dir>/<hash>.json`` (atomic writes), keyed by
    the images' content, the codec's name and settings (its time limit aside), the quality, the scorer's settings
    and ``key`` (what else the metrics depend on: the recognizer file's hash). Only the missing qualities are
    evaluated; an unreadable file is recomputed. ``cache_dir=None`` disables the cache."""
    images = check_images(images)
    if cache_dir is None:
        return evaluate_baseline(codec, qualities, images, scorer, workers)
    images_hash = content_hash(images.cpu().numpy())
    settings = {"name": codec.name, **{k: v for k, v in vars(codec).items() if k != "timeout_s"}}
    paths = {
        q: Path(cache_dir) / f"{content_hash(POINTS_VERSION, images_hash, settings, q, scorer.settings, *key)}.json"
        for q in qualities
    }
    cached: dict[float, Point] = {}
    for quality, path in paths.items():
        if path.is_file():
            try:
                cached[quality] = read_json(path, "cached rate point")
            except ValueError as err:
                log.warning("Recomputing an unreadable cached point: %s", err)
    missing = [q for q in qualities if q not in cached]
    if missing:
        for point in evaluate_baseline(codec, missing, images, scorer, workers):
            cached[point["quality"]] = point
            write_json(paths[point["quality"]], point)
    return [cached[q] for q in qualities]

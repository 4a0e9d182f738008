"""Impressions of a master: where and how the finger touched the sensor, and what the sensor made of it.

Geometry (one inverse map, sampled with ``grid_sample``): an output pixel ``p`` reads the master at
``R^T (p - c - t) + c + d(p)`` -- rotation ``R`` about the canvas centre ``c``, displacement ``t``, and a
smooth non-linear distortion ``d`` that is zero in the middle of the contact region and grows towards its
border (skin is held by friction where it presses hardest; Cappelli et al.'s distortion model). Minutiae go
through the same map (fixed-point inversion) and are dropped outside the contact region.

Appearance: pressure / skin condition shifts the ridge threshold (dry -> thin ridges with breaks, wet -> thick
ridges that merge), the sensor renders background and contrast (optical: bright textured background;
capacitive: grey, low contrast, fixed-pattern row/column noise; rolled ink: paper grain and uneven ink), then
blur and noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torchvision.transforms.v2 import functional as TF

from biobench.data.fingerprints.master import MasterFingerprint
from biobench.data.fingerprints.minutiae import Minutiae, depth
from biobench.data.fingerprints.noise import smooth_noise

DEVICES: tuple[str, ...] = ("optical", "capacitive", "rolled_ink")
CONDITIONS: tuple[str, ...] = ("dry", "normal", "wet")


@dataclass(frozen=True)
class ImpressionParams:
    """Everything that varies between impressions of one finger (lengths in pixels, angles in degrees).

    ``contact`` scales the contact ellipse (1 = the whole finger area, smaller = partial print) and
    ``contact_dx/dy`` move it; ``pressure`` in ``[-1, 1]`` is the skin condition (-1 dry, 0 normal, +1 wet);
    ``distortion`` is the peak elastic displacement; ``noise`` the Gaussian noise std (intensity in [0, 1]).
    """

    dx: float = 0.0
    dy: float = 0.0
    rotation: float = 0.0
    contact: float = 1.0
    contact_dx: float = 0.0
    contact_dy: float = 0.0
    distortion: float = 0.0
    pressure: float = 0.0
    device: str = "optical"
    noise: float = 0.02
    blur: float = 0.6

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"Unknown fingerprint device '{self.device}'; choose one of {DEVICES}.")
        if not -1.0 <= self.pressure <= 1.0:
            raise ValueError(f"Impression pressure must be in [-1, 1], got {self.pressure}.")
        if not 0.2 <= self.contact <= 1.2:
            raise ValueError(f"Impression contact must be in [0.2, 1.2], got {self.contact}.")
        if self.blur < 0 or self.noise < 0 or self.distortion < 0:
            raise ValueError(
                f"Impression blur, noise and distortion must be >= 0, got {self.blur}, {self.noise}, {self.distortion}."
            )

    @property
    def condition(self) -> str:
        """Skin condition named from the pressure: one of :data:`CONDITIONS`."""
        return "dry" if self.pressure < -1 / 3 else "wet" if self.pressure > 1 / 3 else "normal"

    def as_dict(self) -> dict:
        return asdict(self) | {"condition": self.condition}


@dataclass(frozen=True)
class ImpressionRanges:
    """Sampling ranges of :class:`ImpressionParams` (uniform unless stated)."""

    displacement: float = 16.0  # std of dx, dy
    rotation: float = 15.0  # max |rotation|
    contact: tuple[float, float] = (0.8, 1.1)
    contact_shift: float = 12.0  # max |contact_dx|, |contact_dy|
    distortion: tuple[float, float] = (0.0, 8.0)
    pressure: tuple[float, float] = (-0.9, 0.9)
    devices: tuple[str, ...] = DEVICES
    device_weights: tuple[float, ...] | None = None
    noise: tuple[float, float] = (0.01, 0.05)
    blur: tuple[float, float] = (0.4, 1.0)

    def __post_init__(self) -> None:
        if self.device_weights is not None and len(self.device_weights) != len(self.devices):
            raise ValueError(
                f"generator.impression.device_weights has {len(self.device_weights)} entries for "
                f"{len(self.devices)} devices {list(self.devices)}."
            )

    def sample(self, rng: np.random.Generator, **fixed: object) -> ImpressionParams:
        """Draw every parameter (in a fixed order, so ``fixed`` values do not shift the others)."""
        u = rng.uniform
        weights = None if self.device_weights is None else np.asarray(self.device_weights) / sum(self.device_weights)
        drawn = {
            "dx": rng.normal(0, self.displacement),
            "dy": rng.normal(0, self.displacement),
            "rotation": u(-self.rotation, self.rotation),
            "contact": u(*self.contact),
            "contact_dx": u(-self.contact_shift, self.contact_shift),
            "contact_dy": u(-self.contact_shift, self.contact_shift),
            "distortion": u(*self.distortion),
            "pressure": u(*self.pressure),
            "device": str(rng.choice(list(self.devices), p=weights)),
            "noise": u(*self.noise),
            "blur": u(*self.blur),
        }
        unknown = set(fixed) - {f.name for f in fields(ImpressionParams)}
        if unknown:
            raise ValueError(f"Unknown impression parameters {sorted(unknown)}.")
        return ImpressionParams(**(drawn | fixed))


# Named starting points for ``ImpressionRanges`` (``data.generator.preset``); ``generator.impression`` overrides
# apply on top. ``default``: today's ranges (a classic matcher separates its fingers completely: Bozorth3 EER 0 %).
# ``hard``: FVC-like difficulty -- larger rotation and displacement, partial contact (smaller, shifted ellipse),
# stronger elastic distortion, blur and noise, skin from very dry to very wet -- calibrated so that afis MINDTCT +
# Bozorth3 has an EER near 10 % on the FVC protocol (NBIS on FVC2004 is about 10 %; docs/fingerprints.md).
PRESETS: dict[str, ImpressionRanges] = {
    "default": ImpressionRanges(),
    "hard": ImpressionRanges(
        displacement=30.0,
        rotation=40.0,
        contact=(0.48, 0.83),
        contact_shift=38.0,
        distortion=(6.0, 16.0),
        pressure=(-1.0, 1.0),
        noise=(0.03, 0.09),
        blur=(0.5, 1.3),
    ),
}


def preset_ranges(name: str) -> ImpressionRanges:
    """The :class:`ImpressionRanges` of preset ``name`` (one of :data:`PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"Unknown generator.preset '{name}'; choose one of {sorted(PRESETS)}.")
    return PRESETS[name]


@dataclass(frozen=True)
class Impression:
    """A rendered impression: ``image [H, W]`` uint8 (dark ridges), contact ``mask``, minutiae, parameters."""

    image: np.ndarray
    mask: np.ndarray
    minutiae: Minutiae
    params: ImpressionParams


class ImpressionWarp:
    """The impression's geometric map from output pixels to master pixels (see the module docstring)."""

    def __init__(self, shape: tuple[int, int], params: ImpressionParams, centre: np.ndarray, rng: np.random.Generator):
        h, w = shape
        self.shape = shape
        self.c = np.array([(w - 1) / 2, (h - 1) / 2])
        self.t = np.array([params.dx, params.dy])
        a = np.deg2rad(params.rotation)
        self.rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        self.centre = self.forward_affine(centre[None])[0] + [params.contact_dx, params.contact_dy]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        dist = np.hypot(xx - self.centre[0], yy - self.centre[1]) / (0.5 * min(h, w))
        ramp = np.clip((dist - 0.25) / 0.75, 0, 1) ** 1.5
        field = params.distortion * smooth_noise(rng, shape, cell=0.4 * min(h, w), channels=2) * ramp
        self.field = torch.from_numpy(np.ascontiguousarray(field, dtype=np.float32))
        self.grid_xy = np.stack([xx, yy], axis=-1)

    def forward_affine(self, xy: np.ndarray) -> np.ndarray:
        return (xy - self.c) @ self.rot.T + self.c + self.t

    def displacement(self, xy: np.ndarray) -> np.ndarray:
        """``d`` at arbitrary output points ``[N, 2]`` (bilinear)."""
        h, w = self.shape
        g = torch.from_numpy(np.asarray(xy, dtype=np.float32) / [w - 1, h - 1] * 2 - 1).float()
        out = F.grid_sample(self.field[None], g[None, None], mode="bilinear", align_corners=True)
        return out[0, :, 0].T.numpy()

    def source_grid(self) -> torch.Tensor:
        """Master coordinates of every output pixel, normalised for ``grid_sample``: ``[1, H, W, 2]``."""
        h, w = self.shape
        src = (self.grid_xy - self.c - self.t) @ self.rot + self.c + self.field.permute(1, 2, 0).numpy()
        return torch.from_numpy((src / [w - 1, h - 1] * 2 - 1).astype(np.float32))[None]

    def to_output(self, xy: np.ndarray, iters: int = 6) -> np.ndarray:
        """Output positions of master points: solve ``p = R (x - d(p) - c) + c + t`` by fixed-point iteration."""
        p = self.forward_affine(xy)
        for _ in range(iters):
            p = self.forward_affine(xy - self.displacement(p))
        return p


def render_impression(
    master: MasterFingerprint, params: ImpressionParams, rng: np.random.Generator, margin: float = 6.0
) -> Impression:
    """Render one impression of ``master`` with ``params``; ``rng`` draws the textures and noise."""
    shape = master.ridges.shape
    warp = ImpressionWarp(shape, params, np.array([master.area.cx, master.area.cy]), rng)
    grid = warp.source_grid()
    stack = torch.from_numpy(np.stack([master.ridges.astype(np.float32), master.mask.astype(np.float32)]))[None]
    ridges, inside = F.grid_sample(stack, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]

    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    u = (xx - warp.centre[0]) / (params.contact * master.area.a)
    v = (yy - warp.centre[1]) / (params.contact * master.area.b)
    contact = np.hypot(u, v) + 0.06 * smooth_noise(rng, shape, cell=30) <= 1.0
    region = (inside.numpy() > 0.5) & contact

    ink = _skin(ridges.numpy(), params.pressure, rng)
    image = _sensor(ink, region, params, rng)
    if params.blur > 0:
        kernel = 2 * int(3 * params.blur) + 1
        image = TF.gaussian_blur(torch.from_numpy(image)[None], kernel_size=kernel, sigma=params.blur)[0].numpy()
    image = image + params.noise * rng.standard_normal(shape).astype(np.float32)
    image = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)

    minutiae = master.minutiae
    if len(minutiae):
        xy = warp.to_output(minutiae.xy.astype(np.float64))
        step = np.column_stack([np.cos(minutiae.angle), np.sin(minutiae.angle)]) * 4.0
        ahead = warp.to_output(minutiae.xy + step)
        angle = np.mod(np.arctan2(ahead[:, 1] - xy[:, 1], ahead[:, 0] - xy[:, 0]), 2 * np.pi)
        ix, iy = np.rint(xy[:, 0]).astype(int), np.rint(xy[:, 1]).astype(int)
        ok = (ix >= 0) & (ix < shape[1]) & (iy >= 0) & (iy < shape[0])
        ok[ok] = depth(region)[iy[ok], ix[ok]] >= margin
        minutiae = Minutiae(xy[ok].astype(np.float32), angle[ok].astype(np.float32), minutiae.kind[ok])
    return Impression(image, region, minutiae, params)


def _skin(ridges: np.ndarray, pressure: float, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage in ``[0, 1]``: the ridge threshold moves with pressure and skin texture; dry skin breaks, wet
    skin blots."""
    texture = 0.3 * smooth_noise(rng, ridges.shape, cell=3)  # ragged ridge edges and pores of real skin
    ink = 1.0 / (1.0 + np.exp(-4.0 * (ridges + texture + 0.55 * pressure)))
    dry, wet = max(0.0, -pressure), max(0.0, pressure)
    if dry > 0:
        speckle = smooth_noise(rng, ridges.shape, cell=4)
        ink = ink * (speckle > np.quantile(speckle, 0.25 * dry))
    if wet > 0:
        blots = smooth_noise(rng, ridges.shape, cell=14)
        ink = np.maximum(ink, np.clip((blots - (2.4 - 1.2 * wet)) * 2.0, 0, 1))
    return ink.astype(np.float32)


def _sensor(ink: np.ndarray, region: np.ndarray, params: ImpressionParams, rng: np.random.Generator) -> np.ndarray:
    """Grey image in ``[0, 1]`` (dark ridges) as the chosen device renders contact ``ink`` inside ``region``."""
    shape = ink.shape
    edge = ndimage.gaussian_filter(region.astype(np.float32), 4.0)  # contrast fades towards the contact border
    if params.device == "optical":
        background = 0.86 + 0.04 * smooth_noise(rng, shape, cell=60)
        contrast = (0.62 + 0.06 * smooth_noise(rng, shape, cell=50)) * edge
    elif params.device == "capacitive":
        background = 0.58 + 0.02 * smooth_noise(rng, shape, cell=40)
        background = background + 0.015 * rng.standard_normal(shape[0])[:, None] + 0.01 * rng.standard_normal(shape[1])
        contrast = 0.42 * edge
    else:  # rolled ink on paper
        background = 0.93 + 0.015 * rng.standard_normal(shape)
        contrast = 0.78 * np.clip(1.0 + 0.3 * smooth_noise(rng, shape, cell=25), 0.3, 1.5) * edge
    return (background - contrast * ink * region).astype(np.float32)

"""dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1.dat``, CC0, shipped in the
``face_recognition_models`` package) re-implemented in PyTorch, so a loss through it (IPR) is differentiable.

- :class:`DlibFaceNet` is dlib's ``anet_type`` from ``dnn_face_recognition_ex.cpp`` built from the weight file itself
  (read by :mod:`biobench.recognizers.dlib_format`, no dlib needed): a 7x7/2 convolution, 3x3/2 max pooling, 14
  residual blocks (3 x 32, 4 x 64, 3 x 128, 3 + 1 x 256 filters; the first at 64, 128, 256 and the last downsample
  with a 3x3/2 unpadded convolution and a 2x2/2 average-pooled shortcut, added zero-padded where channels or sizes
  differ, as dlib's ``add_prev`` does), global average pooling and a 256 -> 128 ``fc_no_bias``. dlib's ``affine``
  layers (the frozen batch norms) are per-channel ``gamma * x + beta``.
- :class:`DlibFaceRecognizer` is the Recognizer of aligned 150x150 face chips: dlib's input is
  ``(pixel - mean_c) / 256`` for 0..255 pixels with the file's per-channel means (122.782, 117.001, 104.298).
  ``embed`` L2-normalises; :meth:`DlibFaceRecognizer.descriptor` is dlib's raw descriptor, compared by Euclidean
  distance with dlib's threshold 0.6 (same person below it; the loss layer's value, ``threshold``).
- :class:`FaceAligner` turns raw photos into those chips like ``dlib.get_face_chip(img, shape, 150, 0.25)``: dlib finds
  the face (frontal HOG detector) and its 5 landmarks (not differentiable, not needed to be), :func:`face_chip` then
  repeats dlib's ``extract_image_chip`` in torch, differentiable with respect to the photo: the same crop, the same
  ``pyramid_down<2>`` halvings for faces over ~2x the chip, the same bilinear sampling (``grid_sample``) and zeros
  where a chip pixel's 4 neighbours leave the photo. Only dlib's truncation to integers (of each pyramid level and of
  the chip) is left out, so a chip is ~0.5 grey level brighter per truncation than dlib's.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from biobench.contracts import DataSpec
from biobench.recognizers.dlib_format import DlibFormatError, DlibLayer, DlibMetricNet, read_dlib_metric_net
from biobench.recognizers.frozen import FrozenRecognizer

DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"


def face_model_path(name: str) -> Path:
    """``name`` in the installed ``face_recognition_models`` package (located without importing it: its
    ``__init__`` needs the removed ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"The dlib model file '{name}' comes from the package face_recognition_models, which is not installed "
            "(pip install face-recognition-models); or pass the path of the .dat file explicitly."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"face_recognition_models is installed but has no '{path}'.")
    return path


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError as err:
        raise ImportError(
            "Face detection and landmarks for the dlib face aligner need dlib (pip install dlib-bin); the descriptor "
            "network itself (DlibFaceNet) does not."
        ) from err
    return dlib


class Affine(nn.Module):
    """dlib's ``affine`` layer in conv mode: ``gamma[c] * x + beta[c]`` (a batch norm with folded statistics)."""

    def __init__(self, gamma: torch.Tensor, beta: torch.Tensor) -> None:
        super().__init__()
        self.gamma = nn.Parameter(gamma.view(1, -1, 1, 1))
        self.beta = nn.Parameter(beta.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma + self.beta


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum over the larger shape, the smaller tensor zero-padded at the channel/bottom/right
    ends."""
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


def _conv(layer: DlibLayer) -> nn.Conv2d:
    weight = torch.from_numpy(layer.arrays["weight"])
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:], layer.hyper["stride"], layer.hyper["padding"])
    conv.weight.data.copy_(weight)
    conv.bias.data.copy_(torch.from_numpy(layer.arrays["bias"]))
    return conv


def _affine(layer: DlibLayer) -> Affine:
    return Affine(torch.from_numpy(layer.arrays["gamma"]), torch.from_numpy(layer.arrays["beta"]))


def _pool(layer: DlibLayer) -> nn.Module:
    size, stride, padding = layer.hyper["size"], layer.hyper["stride"], layer.hyper["padding"]
    if layer.kind == "max_pool":
        return nn.MaxPool2d(size, stride, padding)
    return nn.AvgPool2d(size, stride, padding, count_include_pad=False)


class DlibResidual(nn.Module):
    """dlib's ``ares`` / ``ares_down``: ``relu(affine(con(relu(affine(con(x))))) + shortcut(x))``, the shortcut the
    identity or (downsampling) a 2x2/2 average pooling."""

    def __init__(self, layers: list[DlibLayer], shortcut: DlibLayer | None) -> None:
        super().__init__()
        self.conv1, self.affine1 = _conv(layers[0]), _affine(layers[1])
        self.conv2, self.affine2 = _conv(layers[3]), _affine(layers[4])
        self.shortcut = _pool(shortcut) if shortcut is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        return F.relu(_add_padded(y, self.shortcut(x)))


_STEM = ("con", "affine", "relu", "max_pool")
_BLOCK = ("tag", "con", "affine", "relu", "con", "affine")
_DOWN = ("tag", "tag", "avg_pool")
_HEAD = ("avg_pool", "fc")


Block = tuple[list[DlibLayer], DlibLayer | None]  # a residual block's layers, its downsampling shortcut or None


def _split_layers(layers: tuple[DlibLayer, ...]) -> tuple[list[DlibLayer], list[Block], list[DlibLayer]]:
    """(stem, blocks, head), or a :class:`DlibFormatError` where ``layers`` leave dlib's face ResNet layout."""
    kinds = [layer.kind for layer in layers]

    def expect(at: int, pattern: tuple[str, ...]) -> None:
        if tuple(kinds[at : at + len(pattern)]) != pattern:
            found = " ".join(kinds[at : at + len(pattern)]) or "the end"
            raise DlibFormatError(f"layer {at}: expected {' '.join(pattern)}, found {found}")

    expect(0, _STEM)
    at, blocks = len(_STEM), []
    while kinds[at : at + 1] == ["tag"]:
        expect(at, _BLOCK)
        body, at = list(layers[at + 1 : at + len(_BLOCK)]), at + len(_BLOCK)
        shortcut = None
        if kinds[at] == "tag":
            expect(at, _DOWN)
            shortcut, at = layers[at + 2], at + len(_DOWN)
        expect(at, ("add_prev", "relu"))
        blocks.append((body, shortcut))
        at += 2
    expect(at, _HEAD)
    if at + len(_HEAD) != len(kinds) or layers[at].hyper["size"] != (0, 0) or layers[-1].hyper["bias"]:
        raise DlibFormatError(f"layer {at}: expected a global average pooling and a bias-free fc layer to end it")
    return list(layers[: len(_STEM)]), blocks, list(layers[at:])


class DlibFaceNet(nn.Module):
    """dlib's face ResNet: ``forward(x [N, 3, 150, 150]) -> [N, 128]`` raw descriptors of dlib-normalised chips
    (``(pixel - input_mean) / 256``, RGB, 0..255 pixels)."""

    def __init__(self, net: DlibMetricNet) -> None:
        super().__init__()
        stem, blocks, head = _split_layers(net.layers)
        self.stem = nn.Sequential(_conv(stem[0]), _affine(stem[1]), nn.ReLU(), _pool(stem[3]))
        self.blocks = nn.Sequential(*(DlibResidual(body, shortcut) for body, shortcut in blocks))
        weight = torch.from_numpy(head[1].arrays["weight"])
        self.fc = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        self.fc.weight.data.copy_(weight)
        self.input_mean = net.input_mean
        self.input_size = net.input_size
        self.threshold = net.threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def load_dlib_face_net(path: str | Path | None = None) -> DlibFaceNet:
    """The network in ``path`` (default: face_recognition_models' ``dlib_face_recognition_resnet_model_v1.dat``)."""
    path = Path(path) if path is not None else face_model_path(DESCRIPTOR_FILE)
    parsed = read_dlib_metric_net(path)
    try:
        net = DlibFaceNet(parsed).eval()
        with torch.no_grad():
            net(torch.zeros(1, 3, *parsed.input_size))  # layer shapes that do not chain fail here
        return net
    except (DlibFormatError, RuntimeError) as err:
        raise DlibFormatError(
            f"'{path}' is a dlib metric network but not dlib's face ResNet layout (dnn_face_recognition_ex.cpp: "
            f"con affine relu max_pool, residual blocks, avg_pool fc): {err}."
        ) from None


class DlibFaceRecognizer(FrozenRecognizer):
    """dlib's face descriptor as a Recognizer of aligned RGB face chips (``dlib.get_face_chip`` alignment, see
    :class:`FaceAligner`); other sizes are resized to 150x150. dlib's descriptors have norms of ~1.4-1.6, so distances
    between ``embed`` rows are ~0.65x the raw ones that ``threshold`` applies to."""

    def __init__(self, net: DlibFaceNet, spec: DataSpec) -> None:
        super().__init__(net, spec, 3, [m / 255 for m in net.input_mean], [256 / 255], net.input_size)
        self.threshold = net.threshold

    def descriptor(self, images: torch.Tensor) -> torch.Tensor:
        """dlib's raw (unnormalised) 128-D descriptors ``[N, 128]``; same person when closer than ``threshold``."""
        return self.model(self.preprocess(images))


def dlib_face_recognizer(spec: DataSpec, path: str | Path | None = None) -> DlibFaceRecognizer:
    """dlib's face descriptor (weights from ``path``, default face_recognition_models') for images served by
    ``spec``."""
    return DlibFaceRecognizer(load_dlib_face_net(path), spec)


Rect = tuple[float, float, float, float]  # a dlib drectangle: left, top, right, bottom (pixel centres, inclusive)

_PYRAMID_TAPS = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def _rect_affine(rect: Rect, angle: float, rows: int, cols: int) -> torch.Tensor:
    """``[2, 3]`` map from chip pixel ``(x, y, 1)`` to image pixel: the chip's corners go to ``rect``'s corners rotated
    by ``angle`` about its centre (dlib's ``extract_image_chips``)."""
    left, top, right, bottom = rect
    cos, sin = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float64)
    centre = torch.tensor([(left + right) / 2, (top + bottom) / 2], dtype=torch.float64)
    scale = torch.tensor([(right - left) / (cols - 1), (bottom - top) / (rows - 1)], dtype=torch.float64)
    corner = torch.tensor([left, top], dtype=torch.float64)
    return torch.cat([rot * scale, (centre + rot @ (corner - centre)).unsqueeze(1)], dim=1)


def _rect_down(rect: Rect) -> Rect:
    """dlib's ``pyramid_down<2>::rect_down`` (its ``point_down`` is ``p / 2 - (1.25, 0.75)``)."""
    left, top, right, bottom = rect
    return left / 2 - 1.25, top / 2 - 0.75, right / 2 - 1.25, bottom / 2 - 0.75


def _area(rect: Rect) -> float:
    left, top, right, bottom = rect
    return (right - left + 1) * (bottom - top + 1)


def _pyramid_down(x: torch.Tensor) -> torch.Tensor:
    """dlib's ``pyramid_down<2>`` of ``x [N, C, H, W]``: separable ``[1 4 6 4 1] / 16`` filter, stride 2, no padding."""
    taps = x.new_tensor(_PYRAMID_TAPS)
    kernel = (taps[:, None] * taps[None, :]).expand(x.shape[1], 1, 5, 5)
    return F.conv2d(x, kernel, stride=2, groups=x.shape[1])


def extract_chips(images: torch.Tensor, affines: torch.Tensor, size: int | tuple[int, int] = 150) -> torch.Tensor:
    """Chips ``[N, C, h, w]`` of ``images [N, C, H, W]`` sampled bilinearly at ``affines [N, 2, 3]`` (chip pixel ->
    image pixel, pixel centres at integers as in dlib); differentiable with respect to ``images``. As dlib's
    ``interpolate_bilinear``, a chip pixel is 0 where one of its 4 neighbours lies outside the image."""
    h, w = (size, size) if isinstance(size, int) else size
    f64 = {"dtype": torch.float64, "device": images.device}
    ys, xs = torch.meshgrid(torch.arange(h, **f64), torch.arange(w, **f64), indexing="ij")
    chip = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).view(1, h * w, 3)
    pixels = (chip @ affines.to(**f64).transpose(1, 2)).view(-1, h, w, 2)  # image pixels (x, y)
    extent = torch.tensor([images.shape[3] - 1, images.shape[2] - 1], **f64)
    inside = ((pixels >= 0) & (pixels < extent)).all(dim=-1).unsqueeze(1)
    grid = (2 * pixels / extent.clamp(min=1) - 1).to(images.dtype)
    chips = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return chips * inside.to(chips)


def face_chip(image: torch.Tensor, details: Any) -> torch.Tensor:
    """dlib's ``extract_image_chip(img, details)`` (what ``get_face_chip`` returns) of one image ``[C, H, W]``,
    differentiable with respect to it: ``[C, rows, cols]``, in the image's value scale and not rounded.

    ``details`` is a ``dlib.chip_details`` (``rect``, ``angle``, ``rows``, ``cols``). As dlib, the image is cropped to
    the chip's rotated rectangle grown by a margin, halved by :func:`_pyramid_down` while the chip's rectangle would
    still cover more than the chip's pixels after one more halving (a face over ~2x the chip), then sampled by
    :func:`extract_chips`. dlib truncates every pyramid level and the chip to integers; this does not.
    """
    r, rows, cols = details.rect, details.rows, details.cols
    rect = (r.left(), r.top(), r.right(), r.bottom())
    halvings, down = 0, _rect_down(rect)
    while _area(down) > rows * cols:
        halvings, down = halvings + 1, _rect_down(down)
    grow = 2.0 ** (halvings + 2) - 2  # dlib's margin for the pyramid filter's border
    corners = (
        torch.tensor([[0, 0, 1], [cols - 1, 0, 1], [0, rows - 1, 1], [cols - 1, rows - 1, 1]], dtype=torch.float64)
        @ _rect_affine(rect, details.angle, rows, cols).T
    )
    high = torch.tensor([image.shape[2] - 1, image.shape[1] - 1], dtype=torch.float64)
    low_x, low_y = (math.floor(v + 0.5) for v in (corners.min(0).values - grow).clamp(min=0).tolist())
    high_x, high_y = (math.floor(v + 0.5) for v in torch.minimum(corners.max(0).values + grow, high).tolist())
    x = image[None, :, low_y : high_y + 1, low_x : high_x + 1]
    rect = (rect[0] - low_x, rect[1] - low_y, rect[2] - low_x, rect[3] - low_y)
    for _ in range(halvings):
        x, rect = _pyramid_down(x), _rect_down(rect)
    return extract_chips(x, _rect_affine(rect, details.angle, rows, cols)[None], (rows, cols))[0]


def to_uint8_hwc(image: torch.Tensor) -> np.ndarray:
    """A ``[3, H, W]`` image in [0, 1] as the ``H x W x 3`` uint8 array dlib takes."""
    pixels = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return np.ascontiguousarray(pixels.permute(1, 2, 0).cpu().numpy())


class FaceAligner:
    """Aligned 150x150 face chips of raw RGB photos, as ``dlib.get_face_chip(img, shape, size, padding)`` cuts them:
    dlib's frontal face detector (the largest face) and 5-point landmarks place the chip, :func:`face_chip` cuts it
    differentiably.

    Args:
        landmarks: dlib's ``shape_predictor_5_face_landmarks.dat`` (default: face_recognition_models').
        size, padding: the chip's side and the margin around the landmarks' template (dlib's defaults, which the
            face descriptor was trained with).
        upsample: times the detector upsamples the photo (finds faces down to ~40 px with 1).

    For a loss on a reconstruction (IPR), place the chip once on the original (``chip_details(to_uint8_hwc(x))``) and
    cut both with ``align(x, details)`` / ``align(x_hat, details)``.
    """

    def __init__(
        self, landmarks: str | Path | None = None, size: int = 150, padding: float = 0.25, upsample: int = 1
    ) -> None:
        dlib = _import_dlib()
        path = Path(landmarks) if landmarks is not None else face_model_path(LANDMARKS_FILE)
        if not path.is_file():
            raise FileNotFoundError(f"dlib landmark model '{path}' does not exist ({LANDMARKS_FILE}).")
        try:
            self.predictor = dlib.shape_predictor(str(path))
        except RuntimeError as err:
            raise ValueError(
                f"'{path}' is not a dlib shape predictor file (expected shape_predictor_5_face_landmarks.dat): {err}"
            ) from err
        self.detector = dlib.get_frontal_face_detector()
        self.dlib, self.size, self.padding, self.upsample = dlib, size, padding, upsample

    def landmarks(self, pixels: np.ndarray) -> Any:
        """dlib's 5 landmarks (``full_object_detection``) of the largest face in ``pixels`` (H x W x 3 uint8), or
        ``None`` when no face is found."""
        faces = self.detector(pixels, self.upsample)
        if not faces:
            return None
        return self.predictor(pixels, max(faces, key=lambda r: r.area()))

    def chip_details(self, pixels: np.ndarray) -> Any:
        """dlib's ``chip_details`` of the largest face in ``pixels`` (H x W x 3 uint8), ``None`` when none is found."""
        shape = self.landmarks(pixels)
        return None if shape is None else self.dlib.get_face_chip_details(shape, self.size, self.padding)

    def align(self, image: torch.Tensor, details: Any = None) -> torch.Tensor:
        """The ``[3, size, size]`` chip of one photo ``[3, H, W]`` in [0, 1] (differentiable with respect to it), at
        ``details`` (default: found by dlib in it). Raises ``ValueError`` when no face is found."""
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"FaceAligner.align expects one RGB photo [3, H, W] in [0, 1], got {tuple(image.shape)}.")
        details = details if details is not None else self.chip_details(to_uint8_hwc(image))
        if details is None:
            raise ValueError(f"FaceAligner: dlib's detector found no face in the {tuple(image.shape[1:])} photo.")
        return face_chip(image, details)

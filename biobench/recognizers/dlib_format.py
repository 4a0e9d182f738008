"""Reader of dlib's binary serialization of a ``loss_metric`` DNN (e.g. ``dlib_face_recognition_resnet_model_v1.dat``),
so its weights can be loaded into a PyTorch port without dlib.

dlib's ``serialize()`` writes an int as a control byte (bits 0-3: byte count, bit 7: sign) and that many little-endian
magnitude bytes; a scalar float as the ints ``mantissa, exponent`` (value ``mantissa * 2**exponent``); a string as its
length and bytes; a bool as the character ``'0'``/``'1'``; a tensor as version 2, four dims and raw little-endian
float32 values. A network is written from the loss inwards: the loss layer's version and details, then every
``add_layer``'s version down to the input layer, then each layer's details from the input outwards, each followed by
its ``add_layer`` state (three flags and three cached tensors). Tag and skip layers write only their version (1) and
are indistinguishable in the file; they appear as ``"tag"`` here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LOSS_NAME = "loss_metric_2"
INPUT_NAME = "input_rgb_image_sized"


class DlibFormatError(ValueError):
    """The file is not dlib's serialization of a ``loss_metric`` network of the supported layers."""


@dataclass(frozen=True)
class DlibLayer:
    """One layer from the input outwards: ``kind`` in con / affine / relu / max_pool / avg_pool / add_prev / fc / tag.

    ``arrays``: con ``weight [out, in, kh, kw]`` and ``bias [out]``; affine ``gamma``, ``beta`` ``[C]``; fc ``weight
    [out, in]`` (transposed from dlib's ``[in, out]``). ``hyper``: con and pools ``size``, ``stride``, ``padding`` as
    ``(y, x)`` pairs (a pool of size ``(0, 0)`` averages the whole map); fc ``bias`` (0/1).
    """

    kind: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    hyper: dict[str, tuple[int, int] | int] = field(default_factory=dict)


@dataclass(frozen=True)
class DlibMetricNet:
    """A parsed network: its RGB input (per-channel means subtracted from 0..255 pixels, size), the metric loss's
    margin and distance threshold, and its layers from the input outwards."""

    input_mean: tuple[float, float, float]
    input_size: tuple[int, int]
    margin: float
    threshold: float
    layers: tuple[DlibLayer, ...]


class _Reader:
    """Sequential decoder of dlib's portable encoding over the bytes of one file."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"truncated at byte {self.pos} (needs {n} more bytes)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self) -> int:
        control = self.take(1)[0]
        if control & 0x70 or (control & 0x0F) > 8:
            raise DlibFormatError(f"byte {self.pos - 1} is not the control byte of a dlib integer")
        value = int.from_bytes(self.take(control & 0x0F), "little")
        return -value if control & 0x80 else value

    def real(self) -> float:
        mantissa = self.integer()
        return mantissa * 2.0 ** self.integer()

    def string(self, max_len: int = 64) -> str:
        n = self.integer()
        if not 0 <= n <= max_len:
            raise DlibFormatError(f"byte {self.pos}: expected a layer name, got a length of {n}")
        return self.take(n).decode("latin-1")

    def flag(self) -> bool:
        ch = self.take(1)
        if ch not in (b"0", b"1"):
            raise DlibFormatError(f"byte {self.pos - 1}: expected a serialized bool ('0'/'1'), got {ch!r}")
        return ch == b"1"

    def version(self, expected: int, what: str) -> None:
        got = self.integer()
        if got != expected:
            raise DlibFormatError(f"byte {self.pos}: {what} has version {got}, expected {expected}")

    def tensor(self) -> np.ndarray:
        self.version(2, "tensor")
        dims = tuple(self.integer() for _ in range(4))
        if min(dims) < 0:
            raise DlibFormatError(f"byte {self.pos}: tensor with negative dimensions {dims}")
        return np.frombuffer(self.take(4 * math.prod(dims)), dtype="<f4").reshape(dims).astype(np.float32)

    def alias(self) -> tuple[int, int, int, int]:
        self.version(1, "alias_tensor")
        return tuple(self.integer() for _ in range(4))

    def pairs(self, n: int) -> list[tuple[int, int]]:
        values = [self.integer() for _ in range(2 * n)]
        return [(values[2 * i], values[2 * i + 1]) for i in range(n)]


def _params(params: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """Split a layer's flat parameter tensor into consecutive arrays of ``shapes`` (dlib's alias tensors)."""
    flat, out, offset = params.reshape(-1), [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(flat[offset : offset + size].reshape(shape))
        offset += size
    if offset != flat.size:
        raise DlibFormatError(f"parameter tensor of {flat.size} values does not fit the shapes {shapes}")
    return out


def _con(r: _Reader) -> DlibLayer:
    params = r.tensor()
    r.integer()  # num_filters (also in the filters' shape)
    size, stride, padding = r.pairs(3)
    filters, biases = r.alias(), r.alias()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.real()
    weight, bias = _params(params, filters, biases)
    hyper = {"size": size, "stride": stride, "padding": padding}
    return DlibLayer("con", {"weight": weight, "bias": bias.reshape(-1)}, hyper)


def _affine(r: _Reader) -> DlibLayer:
    params = r.tensor()
    gamma, beta = _params(params, r.alias(), r.alias())
    if r.integer() != 0:
        raise DlibFormatError(f"byte {r.pos}: affine layer in fc mode (per element), only conv mode is supported")
    return DlibLayer("affine", {"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)})


def _pool(kind: str):
    def read(r: _Reader) -> DlibLayer:
        size, stride, padding = r.pairs(3)
        return DlibLayer(kind, hyper={"size": size, "stride": stride, "padding": padding})

    return read


def _fc(r: _Reader) -> DlibLayer:
    n_out, n_in = r.integer(), r.integer()
    params = r.tensor()
    weights, biases = r.alias(), r.alias()
    bias_mode = r.integer()
    for _ in range(4):
        r.real()
    if weights != (n_in, n_out, 1, 1):
        raise DlibFormatError(f"fc layer {n_in} -> {n_out} has weights of shape {weights}")
    shapes = (weights, biases) if bias_mode == 0 else (weights,)
    arrays = dict(zip(("weight", "bias"), _params(params, *shapes), strict=False))
    arrays["weight"] = np.ascontiguousarray(arrays["weight"].reshape(n_in, n_out).T)
    if "bias" in arrays:
        arrays["bias"] = arrays["bias"].reshape(-1)
    return DlibLayer("fc", arrays, {"bias": int(bias_mode == 0)})


_LAYERS = {
    "con_4": _con,
    "affine_": _affine,
    "relu_": lambda r: DlibLayer("relu"),
    "max_pool_2": _pool("max_pool"),
    "avg_pool_2": _pool("avg_pool"),
    "add_prev_": lambda r: DlibLayer("add_prev"),
    "fc_2": _fc,
}


def _layer_state(r: _Reader) -> None:
    """An ``add_layer``'s state after its details: three flags and three cached tensors (ignored)."""
    for _ in range(3):
        r.flag()
    for _ in range(3):
        r.tensor()


def read_dlib_metric_net(path: str | Path) -> DlibMetricNet:
    """Parse dlib's ``serialize()`` of a ``loss_metric`` network whose input is ``input_rgb_image_sized``.

    Raises :class:`FileNotFoundError` when ``path`` is missing and :class:`DlibFormatError` (naming the file and what
    was expected) when it is not such a network or uses layers this reader does not know.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"dlib network file '{path}' does not exist (expected dlib's serialize() of a loss_metric network, such "
            "as dlib_face_recognition_resnet_model_v1.dat from face_recognition_models)."
        )
    r = _Reader(path.read_bytes())
    try:
        r.version(1, "loss layer")
        loss = r.string()
        if loss != LOSS_NAME:
            raise DlibFormatError(f"the file starts with {loss!r}, expected the loss layer {LOSS_NAME!r}")
        margin, threshold = r.real(), r.real()
        versions = []  # add_layer versions from the loss inwards: 2 = a layer, 1 = tag/skip, 3 = the input layer
        while not versions or versions[-1] != 3:
            versions.append(r.integer())
            if versions[-1] not in (1, 2, 3) or len(versions) > 10_000:
                raise DlibFormatError(f"byte {r.pos}: unexpected add_layer version {versions[-1]}")
        name = r.string()
        if name != INPUT_NAME:
            raise DlibFormatError(f"the input layer is {name!r}, expected {INPUT_NAME!r}")
        input_mean = (r.real(), r.real(), r.real())
        input_size = (r.integer(), r.integer())
        layers = []
        for version in reversed(versions):
            if version == 1:
                layers.append(DlibLayer("tag"))
                continue
            name = r.string()
            if name not in _LAYERS:
                raise DlibFormatError(f"byte {r.pos}: unsupported layer {name!r} (known: {sorted(_LAYERS)})")
            layers.append(_LAYERS[name](r))
            _layer_state(r)
            if version == 3:
                r.integer()  # the input add_layer's sample expansion factor
        if r.pos != len(r.data):
            raise DlibFormatError(f"{len(r.data) - r.pos} bytes left after the last layer")
    except DlibFormatError as err:
        raise DlibFormatError(
            f"'{path}' is not a dlib metric network file as expected (dlib's serialize() of a loss_metric network on "
            f"an RGB input, such as dlib_face_recognition_resnet_model_v1.dat): {err}."
        ) from None
    return DlibMetricNet(input_mean, input_size, margin, threshold, tuple(layers))

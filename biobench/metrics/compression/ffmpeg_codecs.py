"""The video-codec intra baselines, HEVC (libx265) and VVC (libvvenc), and JPEG XL (libjxl), through the static
FFmpeg binary of the optional ``imageio-ffmpeg`` wheel (``pip install 'biobench[codecs]'``).

One image is one intra frame. Raw pixels go in on stdin; the bitstream comes out bare (``-f hevc`` / ``-f vvc``
Annex-B NAL units, a JPEG XL codestream), and its length is the byte count. It comes out through a private pipe,
not stdout: libvvenc prints its configuration warnings to stdout, which would otherwise end up inside the
bitstream (~110 bytes of text in a 130-byte stream of a 16 x 16 image). Decoding pipes the bitstream back and reads
the frame as an 8-bit PAM (grey or RGB, whichever the stream holds).

Settings that change the byte count and are easy to forget:

- frame rate pinned to 1 fps (``-r 1``): x265's CRF depends on it (CRF 23 on a 128-px fingerprint: 7,715 bytes at
  1 fps, 3,511 at ffmpeg's default 25 fps);
- x265's ``info=0``: without it every stream carries a ~2.3 kB SEI with the encoder's version and options;
- grey images are coded as grey: HEVC as 8-bit 4:0:0 (``-pix_fmt gray``, x265 takes it directly), VVC as 10-bit
  4:0:0 (``ChromaFormatIDC=400`` from a full-range 10-bit frame; libvvenc only takes yuv420p10le, the chroma is
  dropped, the stream signals full range: 8 bytes of VUI); 4:0:0 takes any size, odd ones included;
- RGB goes through BT.709 limited-range YCbCr, 10 bits, which the 8-bit RGB survives exactly in 4:4:4: HEVC codes
  4:4:4 (a 10-bit RExt profile), VVC 4:2:0 (all libvvenc takes), whose odd sizes are padded to even by repeating
  the last row / column (the padding costs bits, not pixels: bpp is over the original); the stream then holds the
  padded size, so :meth:`~Codec.decode` needs the original ``shape`` to crop it;
- HEVC knob ``crf`` (x265 preset medium), VVC knob ``qp`` (vvenc preset medium, perceptual QPA off so that the
  rate goes to PSNR, the metric the curves use), JPEG XL knob ``distance`` (Butteraugli distance, effort 7;
  0 = lossless).

Both video codecs refuse images below 16 px per side: x265 fails on any smaller side, libvvenc on some (15 x 15 grey
passes, 14 x 14 fails, 8 x 64 passes). Every ffmpeg run has a time limit (``timeout_s``, 120 s by default), since
ffmpeg's libjxl decoder spins forever on a truncated codestream.
"""

from __future__ import annotations

import os
import subprocess
import threading
from abc import abstractmethod
from collections.abc import Sequence
from functools import lru_cache
from typing import ClassVar

import numpy as np

from biobench.metrics.compression.base import Codec

INSTALL_HINT = "pip install 'biobench[codecs]'"
SWS_FLAGS = "accurate_rnd+full_chroma_int+full_chroma_inp"
RGB_TO_YUV = f"scale=out_color_matrix=bt709:out_range=tv:flags={SWS_FLAGS}"
DECODE_FILTER = f"scale=in_color_matrix=bt709:in_range=tv:flags={SWS_FLAGS},format=gray|rgb24"


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of imageio-ffmpeg's FFmpeg binary, or an ImportError that says how to install it."""
    try:
        import imageio_ffmpeg
    except ImportError as err:
        raise ImportError(f"The HEVC, VVC and JPEG XL baselines need the optional imageio-ffmpeg package: "
                          f"{INSTALL_HINT}.") from err  # fmt: skip
    return imageio_ffmpeg.get_ffmpeg_exe()


@lru_cache(maxsize=2)
def ffmpeg_components(kind: str) -> frozenset[str]:
    """Names of the binary's ``"encoders"`` or ``"decoders"`` (asked once, then cached)."""
    listing = subprocess.run([ffmpeg_exe(), "-hide_banner", f"-{kind}"], capture_output=True, text=True, check=True)
    rows = listing.stdout.split("------", 1)[-1].splitlines()
    return frozenset(row.split()[1] for row in rows if len(row.split()) > 1)


def require_encoder(name: str) -> None:
    """Raise a RuntimeError naming ``name`` when the FFmpeg binary has no such encoder."""
    if name not in ffmpeg_components("encoders"):
        raise RuntimeError(f"The FFmpeg binary {ffmpeg_exe()} has no '{name}' encoder (see `ffmpeg -encoders`); "
                           "imageio-ffmpeg 0.8.1 (FFmpeg 9.0) has libx265, libvvenc and libjxl.")  # fmt: skip


def require_decoder(name: str) -> None:
    """Raise a RuntimeError naming ``name`` when the FFmpeg binary has no such decoder."""
    if name not in ffmpeg_components("decoders"):
        raise RuntimeError(f"The FFmpeg binary {ffmpeg_exe()} has no '{name}' decoder (see `ffmpeg -decoders`).")


def run_ffmpeg(args: Sequence[str], data: bytes, timeout_s: float) -> bytes:
    """What ffmpeg, fed ``data`` on stdin, writes to its output file (the last argument is added: a private pipe,
    so that nothing a library prints to stdout mixes in). A non-zero exit raises a RuntimeError with ffmpeg's
    errors, and so does a run past ``timeout_s`` (then stopped: ffmpeg's libjxl decoder waits forever on a
    truncated codestream)."""
    read_fd, write_fd = os.pipe()
    output: list[bytes] = []
    with os.fdopen(read_fd, "rb") as pipe:
        command = [ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", *args, f"pipe:{write_fd}"]
        try:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, pass_fds=(write_fd,))  # fmt: skip
        finally:
            os.close(write_fd)  # the child has its own copy; ours would keep the pipe from ever ending
        reader = threading.Thread(target=lambda: output.append(pipe.read()))
        reader.start()
        try:
            _, errors = process.communicate(data, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise RuntimeError(f"ffmpeg did not finish within {timeout_s:g} s and was stopped") from None
        finally:
            reader.join()
    if process.returncode != 0:
        first = " | ".join(errors.decode(errors="replace").strip().splitlines()[:3])  # the failing part speaks first
        raise RuntimeError(f"ffmpeg exited with code {process.returncode}: {first[:500] or '(no message)'}")
    return output[0]


def read_pam(data: bytes) -> np.ndarray:
    """The 8-bit image of a PAM file (``P7``; depth 1 -> ``H x W``, depth 3 -> ``H x W x 3``)."""
    header, separator, pixels = data.partition(b"ENDHDR\n")
    fields = dict(line.split(b" ", 1) for line in header.splitlines()[1:] if b" " in line)
    if not data.startswith(b"P7\n") or not separator:
        raise ValueError(f"the decoder wrote no PAM image ({len(data)} bytes)")
    height, width, depth = (int(fields.get(key, 0)) for key in (b"HEIGHT", b"WIDTH", b"DEPTH"))
    if fields.get(b"MAXVAL") != b"255" or depth not in (1, 3) or len(pixels) != height * width * depth:
        raise ValueError(f"the decoder wrote an unexpected PAM image ({header!r}, {len(pixels)} pixel bytes)")
    image = np.frombuffer(pixels, np.uint8).reshape(height, width, depth)
    return image[:, :, 0].copy() if depth == 1 else image.copy()


class FFmpegCodec(Codec):
    """An intra codec through FFmpeg: ``encoder`` writes the ``muxer`` format, ``decoder`` reads the ``demuxer``
    one; subclasses give the encoder's arguments for a grey or an RGB frame."""

    encoder: ClassVar[str]
    decoder: ClassVar[str]
    muxer: ClassVar[str]
    demuxer: ClassVar[str]

    def __init__(self, timeout_s: float = 120.0) -> None:
        require_encoder(self.encoder)
        require_decoder(self.decoder)
        self.timeout_s = timeout_s

    @abstractmethod
    def _encoder_args(self, rgb: bool, quality: float) -> list[str]:
        """The output arguments that set the encoder, its pixel format and ``quality``."""

    def _pad(self, image: np.ndarray) -> np.ndarray:
        """``image`` grown to a size the encoder takes (unchanged unless overridden)."""
        return image

    def _encode(self, image: np.ndarray, quality: float) -> bytes:
        image = self._pad(image)
        height, width = image.shape[:2]
        source = ["-f", "rawvideo", "-pix_fmt", "rgb24" if image.ndim == 3 else "gray", "-s", f"{width}x{height}",
                  "-r", "1", "-i", "pipe:0", "-frames:v", "1"]  # fmt: skip
        args = [*source, *self._encoder_args(image.ndim == 3, quality), "-f", self.muxer]
        data = run_ffmpeg(args, image.tobytes(), self.timeout_s)
        if not data:
            raise RuntimeError(f"{self.encoder} wrote no bitstream")
        return data

    def _decode(self, data: bytes) -> np.ndarray:
        args = ["-err_detect", "explode", "-f", self.demuxer, "-i", "pipe:0", "-frames:v", "1", "-vf", DECODE_FILTER,
                "-f", "image2pipe", "-c:v", "pam"]  # fmt: skip
        return read_pam(run_ffmpeg(args, data, self.timeout_s))


class HEVC(FFmpegCodec):
    """H.265 / HEVC intra through libx265 (knob: CRF; see the module docstring for the settings)."""

    name, knob = "hevc", "crf"
    encoder, decoder, muxer, demuxer = "libx265", "hevc", "hevc", "hevc"
    qualities = (43, 38, 33, 28, 23)
    quality_range = (0, 51)
    min_side = 16

    def __init__(self, preset: str = "medium", timeout_s: float = 120.0) -> None:
        super().__init__(timeout_s)
        self.preset = preset

    def _encoder_args(self, rgb: bool, quality: float) -> list[str]:
        pixels = ["-vf", f"{RGB_TO_YUV},format=yuv444p10le", "-pix_fmt", "yuv444p10le"] if rgb else ["-pix_fmt", "gray"]
        return [*pixels, "-c:v", "libx265", "-preset", self.preset, "-crf", str(quality),
                "-x265-params", "info=0:log-level=none"]  # fmt: skip


class VVC(FFmpegCodec):
    """H.266 / VVC intra through libvvenc (knob: QP; see the module docstring for the settings). RGB images of odd
    size decode to the even padded size unless ``decode`` gets the original ``shape``."""

    name, knob = "vvc", "qp"
    encoder, decoder, muxer, demuxer = "libvvenc", "vvc", "vvc", "vvc"
    qualities = (42, 37, 32, 27, 22)
    quality_range, integer_quality = (0, 63), True
    min_side = 16

    def __init__(self, preset: str = "medium", timeout_s: float = 120.0) -> None:
        super().__init__(timeout_s)
        self.preset = preset

    def _encoder_args(self, rgb: bool, quality: float) -> list[str]:
        common = ["-c:v", "libvvenc", "-preset", self.preset, "-qp", str(quality), "-qpa", "0"]
        if rgb:
            return ["-vf", f"{RGB_TO_YUV},format=yuv420p10le", *common]
        return ["-vf", f"scale=out_range=pc:flags={SWS_FLAGS},format=yuv420p10le", *common,
                "-vvenc-params", "ChromaFormatIDC=400:VideoFullRange=1"]  # fmt: skip

    def _pad(self, image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            return image
        rows, cols = image.shape[0] % 2, image.shape[1] % 2
        return np.pad(image, ((0, rows), (0, cols), (0, 0)), mode="edge") if rows or cols else image

    def _fit(self, image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        excess = np.subtract(image.shape, shape) if image.ndim == len(shape) == 3 else None
        if excess is not None and excess.min() >= 0 and excess.max() <= 1:
            image = image[: shape[0], : shape[1]]  # drop the 4:2:0 padding of an odd size
        return super()._fit(image, shape)


class JPEGXL(FFmpegCodec):
    """JPEG XL through libjxl (knob: Butteraugli distance, lower is better; bare codestream)."""

    name, knob = "jpegxl", "distance"
    encoder, decoder, muxer, demuxer = "libjxl", "libjxl", "image2pipe", "jpegxl_pipe"
    qualities = (8, 4, 2, 1, 0.5)
    quality_range = (0, 15)

    def __init__(self, effort: int = 7, timeout_s: float = 120.0) -> None:
        super().__init__(timeout_s)
        self.effort = effort

    def _encoder_args(self, rgb: bool, quality: float) -> list[str]:
        return ["-c:v", "libjxl", "-distance", str(quality), "-effort", str(self.effort)]

"""The compression metrics (bpp, PSNR, MS-SSIM) and the classic baseline codecs: every codec round-trips grey and
RGB images (odd sizes too) with an honest byte count, its rate and PSNR rise along its sweep, and bad input (corrupt
bytes, RGB into WSQ, a missing FFmpeg encoder or package) gets a clear error. FFmpeg and WSQ tests skip without
their optional packages."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from biobench.data.fingerprints import FingerprintGenerator
from biobench.metrics.compression import (
    Codec,
    available_codecs,
    bits_per_pixel,
    ffmpeg_codecs,
    get_codec,
    image_to_tensor,
    ms_ssim,
    ms_ssim_window,
    psnr,
)

CODECS = ("jpeg", "jpeg2000", "webp", "avif", "hevc", "vvc", "jpegxl", "wsq")
FFMPEG_CODECS = ("hevc", "vvc", "jpegxl")


def make(name: str, **options) -> Codec:
    """The codec, or a skip when its optional package is missing."""
    if name in FFMPEG_CODECS:
        pytest.importorskip("imageio_ffmpeg", reason="the FFmpeg codecs need the optional imageio-ffmpeg package")
    if name == "wsq":
        pytest.importorskip("wsq", reason="WSQ needs the optional wsq package")
    return get_codec(name, **options)


def image_psnr(decoded: np.ndarray, original: np.ndarray) -> float:
    return float(psnr(image_to_tensor(decoded), image_to_tensor(original))[0])


@pytest.fixture(scope="module")
def fingerprint() -> np.ndarray:
    """A synthetic 128 x 128 grey fingerprint (dark ridges on a light background)."""
    return FingerprintGenerator(seed=0, size=128).impression(0, 0).image


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A smooth RGB scene with texture, 72 x 96."""
    y, x = np.mgrid[0:72, 0:96].astype(np.float64)
    texture = 30 * np.sin(x / 3) * np.cos(y / 5)
    scene = np.stack([2 * x + 40, 3 * y + 20, 230 - (x + y)], axis=-1) + texture[..., None]
    return np.clip(scene, 0, 255).astype(np.uint8)


def test_bits_per_pixel_counts_the_unpadded_original() -> None:
    assert bits_per_pixel(1000, 100, 80) == 1.0
    assert bits_per_pixel(0, 1, 1) == 0.0
    for args in [(-1, 8, 8), (10, 0, 8), (10, 8, 2.5), (True, 8, 8)]:
        with pytest.raises(ValueError, match="bits_per_pixel"):
            bits_per_pixel(*args)


def test_psnr_and_ms_ssim_per_image() -> None:
    x = torch.full((2, 1, 8, 8), 0.5)
    y = x.clone()
    y[0] += 0.1  # MSE 0.01 -> 20 dB; the second pair is identical -> inf
    np.testing.assert_allclose(psnr(x, y).numpy(), [20.0, np.inf], rtol=1e-5)
    np.testing.assert_allclose(psnr(x * 255, y * 255, data_range=255.0).numpy(), [20.0, np.inf], rtol=1e-4)
    with pytest.raises(ValueError, match=r"values must lie in \[0, 1.0\]"):
        psnr(x * 255, y * 255)

    clean = torch.rand(1, 1, 161, 161, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    batch = torch.cat([clean, clean, clean])
    noisy = torch.cat([clean, (clean + 0.05 * noise).clamp(0, 1), (clean + 0.2 * noise).clamp(0, 1)])
    scores = ms_ssim(batch, noisy)
    assert scores.shape == (3,) and scores[0] == pytest.approx(1.0, abs=1e-5) and scores[0] > scores[1] > scores[2]
    rgb = clean.expand(1, 3, 161, 161)
    assert float(ms_ssim(rgb, rgb)[0]) == pytest.approx(1.0, abs=1e-5)
    estimate = noisy[1:2].clone().requires_grad_()  # differentiable: MS-SSIM is also a training distortion
    (1 - ms_ssim(estimate, clean)).sum().backward()
    assert estimate.grad is not None and estimate.grad.abs().sum() > 0

    small = clean[..., :128, :128]
    assert ms_ssim_window(128) == 7 and ms_ssim_window(161) == 11
    with pytest.raises(ValueError, match=r"exceed 160 px.*win_size=7"):
        ms_ssim(small, small)
    assert float(ms_ssim(small, small, win_size=7)[0]) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="too small"):
        ms_ssim_window(32)


def test_registry_names_every_baseline() -> None:
    assert available_codecs() == CODECS
    with pytest.raises(KeyError, match="known: jpeg, jpeg2000"):
        get_codec("bpg")
    for name in ("jpeg", "jpeg2000", "webp", "avif"):
        codec = get_codec(name)
        assert list(codec.qualities) and all(codec.quality_range[0] <= q <= codec.quality_range[1]
                                             for q in codec.qualities)  # fmt: skip


@pytest.mark.parametrize("name", CODECS)
def test_codec_round_trips_grey_and_rgb_with_real_byte_counts(name: str, fingerprint, photo) -> None:
    codec = make(name)
    quality = codec.qualities[-1]  # the highest rate of the sweep: a 33 x 47 image at low rates is mostly header
    # WSQ refuses images below 65 px per side (see its module), so its odd-size case is larger
    odd = fingerprint[10:77, 20:101] if name == "wsq" else fingerprint[40:73, 40:87]
    images = [fingerprint, odd] + ([] if codec.gray_only else [photo, photo[:33, :47]])
    for image in images:
        data = codec.encode(image, quality)
        decoded, bpp = codec.roundtrip(image, quality)
        assert decoded.shape == image.shape and decoded.dtype == np.uint8 and decoded.flags.writeable
        assert bpp == 8 * len(data) / (image.shape[0] * image.shape[1])  # the encoders are deterministic
        assert 0.05 < bpp < 8 * (3 if image.ndim == 3 else 1)
        assert image_psnr(decoded, image) > 20.0, (name, image.shape)  # a broken decode scores below 15 dB


@pytest.mark.parametrize("name", [name for name in CODECS if name != "wsq"])
def test_rate_and_psnr_rise_along_the_sweep(name: str, fingerprint) -> None:
    codec = make(name)
    image = fingerprint[24:104, 24:104]
    sweep = codec.qualities[::2]  # lowest, middle and highest rate
    points = [codec.roundtrip(image, q) for q in sweep]
    rates = [bpp for _, bpp in points]
    quality = [image_psnr(decoded, image) for decoded, _ in points]
    assert rates == sorted(rates) and len(set(rates)) == 3, (sweep, rates)
    assert quality == sorted(quality) and quality[-1] - quality[0] > 3.0, (sweep, quality)


@pytest.mark.parametrize("name", CODECS)
def test_corrupt_bytes_raise_a_value_error_naming_the_codec(name: str) -> None:
    codec = make(name)
    with pytest.raises(ValueError, match=rf"^{name}: cannot decode these 300 bytes as {name}"):
        codec.decode(b"\x00\x01garbage-bytes" * 20)
    with pytest.raises(ValueError, match=rf"^{name}: decode needs a non-empty byte string"):
        codec.decode(b"")


def test_inputs_and_quality_settings_are_checked(fingerprint) -> None:
    jpeg = get_codec("jpeg")
    with pytest.raises(ValueError, match="jpeg: needs a non-empty uint8 numpy image, got float64"):
        jpeg.encode(fingerprint / 255.0, 75)
    with pytest.raises(ValueError, match=r"H x W \(grey\) or H x W x 3"):
        jpeg.encode(np.zeros((8, 8, 4), np.uint8), 75)
    with pytest.raises(ValueError, match=r"quality must be a number in \[0, 100\], got 101"):
        jpeg.encode(fingerprint, 101)
    with pytest.raises(ValueError, match=r"quality must be an integer, got 7\.5"):
        jpeg.encode(fingerprint, 7.5)
    with pytest.raises(ValueError, match="expected"):
        jpeg.decode(jpeg.encode(fingerprint, 75), shape=(64, 64))


def test_wsq_is_grey_only_at_its_one_bitrate(fingerprint, photo) -> None:
    wsq = make("wsq")
    assert wsq.qualities == (0.75,)
    with pytest.raises(ValueError, match="wsq codes grey images only"):
        wsq.encode(photo, 0.75)
    with pytest.raises(ValueError, match=r"the only bitrate wsq 0\.9 can code is 0\.75"):
        wsq.encode(fingerprint, 2.25)
    with pytest.raises(ValueError, match="at least 65 px per side"):
        wsq.encode(fingerprint[:48, :48], 0.75)
    assert wsq.encode(fingerprint, 0.75)[:2] == b"\xff\xa0"  # the WSQ start-of-image marker


def test_webp_needs_the_shape_to_return_grey(fingerprint) -> None:
    webp = get_codec("webp")
    data = webp.encode(fingerprint, 75)
    assert webp.decode(data).shape == (128, 128, 3)  # WebP has no grey mode
    grey = webp.decode(data, fingerprint.shape)
    assert grey.shape == (128, 128) and image_psnr(grey, fingerprint) > 30


def test_hevc_bitstream_is_bare_and_pinned(fingerprint, photo) -> None:
    hevc = make("hevc")
    assert 23 in hevc.qualities and hevc.knob == "crf"
    data = hevc.encode(fingerprint, 23)
    assert data.startswith(b"\x00\x00\x00\x01\x40\x01")  # Annex B, a VPS first: no container
    assert b"x265" not in data  # info=0: no SEI with the encoder's version and options
    assert hevc.decode(data).shape == (128, 128)  # a 4:0:0 stream: it decodes to grey without being told
    decoded, _ = hevc.roundtrip(photo, 23)  # RGB through 10-bit 4:4:4 YCbCr, which 8-bit RGB survives exactly
    assert image_psnr(decoded, photo) > 40
    with pytest.raises(ValueError, match="at least 16 px per side, got 8x40"):
        hevc.encode(fingerprint[:8, :40], 23)


def test_vvc_stream_holds_no_log_text_and_crops_its_rgb_padding(photo) -> None:
    vvc = make("vvc")
    odd = photo[:33, :47]
    data = vvc.encode(odd, 32)
    assert b"warning" not in data.lower() and b"vvenc" not in data.lower()  # libvvenc's stdout stays out
    assert vvc.decode(data).shape == (34, 48, 3)  # 4:2:0 cannot carry an odd size: padded by one row and column
    decoded = vvc.decode(data, odd.shape)
    assert decoded.shape == odd.shape and image_psnr(decoded, odd) > 35


def test_truncated_jpegxl_fails_instead_of_hanging(fingerprint) -> None:
    jxl = make("jpegxl", timeout_s=1.0)
    data = jxl.encode(fingerprint, 1)
    assert data[:2] == b"\xff\x0a"  # a bare codestream, no ISOBMFF container
    with pytest.raises(ValueError, match=r"jpegxl: cannot decode.*did not finish within 1 s"):
        jxl.decode(data[: len(data) // 2])


def test_missing_encoder_and_package_are_named(monkeypatch) -> None:
    pytest.importorskip("imageio_ffmpeg")
    with pytest.raises(RuntimeError, match="has no 'libnonexistent265' encoder"):
        ffmpeg_codecs.require_encoder("libnonexistent265")
    with pytest.raises(RuntimeError, match="has no 'nonexistent' decoder"):
        ffmpeg_codecs.require_decoder("nonexistent")
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import imageio_ffmpeg -> ImportError
    for cached in (ffmpeg_codecs.ffmpeg_exe, ffmpeg_codecs.ffmpeg_components):
        cached.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"imageio-ffmpeg package: pip install 'biobench\[codecs\]'"):
            get_codec("hevc")
    finally:
        monkeypatch.undo()
        ffmpeg_codecs.ffmpeg_exe.cache_clear()  # found again on the next use

"""The rate-recognition comparison: parity rates on hand-made curves (monotone, non-monotone, never reached, lower
is better), the ratios to HEVC, BD-rates (a curve against itself, against itself at half the rate, degenerate
curves), baseline points of real JPEG bitstreams scored by a real recognizer, and the script end to end with its
cache."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from biobench.contracts import DataSpec
from biobench.data.fingerprints.readers import read_fingerprint_folder
from biobench.metrics.compression import bits_per_pixel, get_codec
from biobench.metrics.compression.decoded import COMPLETE, to_uint8, write_identity_folder
from biobench.metrics.compression.parity import bd_rate, parity_bpp, rate_front, ratio_to
from biobench.metrics.compression.rate_recognition import (
    cached_baseline,
    classification_scorer,
    evaluate_baseline,
    verification_scorer,
)
from biobench.models.nets.embedding import EMBEDDER_SYSTEM, build_embedding_net
from biobench.models.nets.loading import TRAINING_SPEC_KEY
from biobench.recognizers import FrozenRecognizer
from biobench.utils.io import write_json

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "rate_recognition.py"
TINY_DATA = ["data=fingerprints", "data.task=finger", "data.n_fingers=10", "data.impressions=2", "data.mean=[0]",
             "data.std=[1]", "data.generator.size=128", "data.image_size=64", "data.gen_workers=0"]  # fmt: skip
PERIOD = 4  # px: the stripes of the synthetic "fingers" below


def curve(bpps: list[float], values: list[float], metric: str = "acc") -> list[dict]:
    """Points of a hand-made rate curve (qualities 0, 1, ...)."""
    return [{"quality": i, "bpp": b, metric: v} for i, (b, v) in enumerate(zip(bpps, values, strict=True))]


def test_parity_interpolates_the_crossing_of_a_monotone_curve() -> None:
    points = curve([0.5, 1, 2, 4], [0.80, 0.90, 0.97, 0.99])
    assert parity_bpp(points, "acc", 0.99) == pytest.approx(3.5)  # 0.985 reached 3/4 of the way from 2 to 4 bpp
    assert parity_bpp(points[::-1], "acc", 0.99) == pytest.approx(3.5)  # read in order of bpp
    assert parity_bpp(points, "acc", 0.99, tolerance=0.2) == pytest.approx(0.5)  # within from the lowest rate on
    assert parity_bpp(points, "acc", 0.99, tolerance=0.2) == min(p["bpp"] for p in points)


def test_parity_of_a_non_monotone_curve_counts_from_its_last_dip() -> None:
    points = curve([0.5, 1, 2, 4, 8], [0.99, 0.95, 0.99, 0.97, 0.99])
    assert parity_bpp(points, "acc", 0.99) == pytest.approx(7.0)  # after the dip at 4 bpp: 4 + 0.75 * 4


def test_parity_never_reached_and_lower_is_better() -> None:
    assert parity_bpp(curve([1, 2, 4], [0.5, 0.9, 0.98]), "acc", 0.99) is None  # the best point is still 1 point off
    assert parity_bpp([], "acc", 0.99) is None
    eer = curve([1, 2, 4], [0.2, 0.05, 0.002], metric="eer")
    assert parity_bpp(eer, "eer", 0.0, higher_is_better=False) == pytest.approx(2 + 2 * 0.045 / 0.048)
    assert parity_bpp(eer, "eer", 0.0, tolerance=0.001, higher_is_better=False) is None


def test_ratios_to_hevc_at_crf_23_and_at_its_parity() -> None:
    hevc = [{"codec": "hevc", "quality": q, "bpp": b, "acc": a}
            for q, b, a in ((33, 1.0, 0.90), (28, 2.0, 0.97), (23, 4.0, 0.99))]  # fmt: skip
    points = {"hevc": hevc, "ours": curve([0.5, 1.0], [0.95, 0.99]), "bad": curve([1.0], [0.5])}
    ratios = ratio_to(points, "acc", 0.99)
    assert ratios["hevc"]["parity_bpp"] == pytest.approx(3.5)
    assert ratios["ours"]["parity_bpp"] == pytest.approx(0.5 + 0.5 * 0.035 / 0.04)
    assert ratios["ours"]["to_anchor_quality"] == pytest.approx(ratios["ours"]["parity_bpp"] / 4.0)
    assert ratios["ours"]["to_anchor_parity"] == pytest.approx(ratios["ours"]["parity_bpp"] / 3.5)
    assert ratios["hevc"]["to_anchor_parity"] == pytest.approx(1.0)
    assert ratios["bad"] == {"parity_bpp": None, "to_anchor_parity": None, "to_anchor_quality": None}
    assert ratio_to(points, "acc", 0.99, anchor="vvc")["ours"]["to_anchor_parity"] is None


def test_bd_rate_of_a_curve_against_itself_and_at_half_the_rate() -> None:
    anchor = curve([0.5, 1, 2, 4, 8], [30.0, 33.0, 36.5, 40.0, 44.0], metric="psnr")
    half = [{**p, "bpp": p["bpp"] / 2} for p in anchor]
    assert bd_rate(anchor, anchor, "psnr").percent == pytest.approx(0.0, abs=1e-9)
    assert bd_rate(half, anchor, "psnr").percent == pytest.approx(-50.0, abs=1e-6)
    assert bd_rate(anchor, half, "psnr", method="akima").percent == pytest.approx(100.0, abs=1e-6)
    eer = curve([0.5, 1, 2, 4], [0.3, 0.2, 0.1, 0.05], metric="eer")
    assert bd_rate([{**p, "bpp": p["bpp"] / 2} for p in eer], eer, "eer", higher_is_better=False).percent == (
        pytest.approx(-50.0, abs=1e-6)
    )


def test_bd_rate_needs_four_front_points_and_overlapping_ranges() -> None:
    anchor = curve([0.5, 1, 2, 4], [0.6, 0.8, 0.9, 0.95])
    saturated = curve([0.5, 1, 2, 4, 8], [0.6, 0.9, 1.0, 1.0, 0.99])
    assert len(rate_front(saturated, "acc")[0]) == 3  # the plateau and the dip are off the front
    result = bd_rate(saturated, anchor, "acc")
    assert result.percent is None and "3 of the test curve's points are on its rate front" in result.reason
    apart = curve([0.5, 1, 2, 4], [0.1, 0.2, 0.3, 0.4])
    assert "do not overlap" in bd_rate(apart, anchor, "acc").reason


def grating(theta: float, size: int, phase: float = 0.0) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    return torch.sin(2 * math.pi * (x * math.cos(theta) + y * math.sin(theta)) / PERIOD + phase)


class OrientationEnergy(nn.Module):
    """Energy of the image in fixed gratings of ``orientations`` angles, centred: a deterministic recognizer of
    the stripes' orientation (the "finger"), blind to their phase (the "impression")."""

    def __init__(self, orientations: int = 6) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, orientations, 7, bias=False)
        kernels = [grating(k * math.pi / orientations, 7) for k in range(orientations)]
        self.conv.weight.data.copy_(torch.stack(kernels)[:, None] / 49)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        energy = self.conv(x).square().mean((2, 3))
        return energy - energy.mean(1, keepdim=True)


def striped_fingers(fingers: int = 6, impressions: int = 2, size: int = 48) -> dict[str, torch.Tensor]:
    """Faint stripes of one orientation per finger, a random phase per impression: heavy JPEG removes them."""
    gen = torch.Generator().manual_seed(0)
    images = []
    for f in range(fingers):
        for _ in range(impressions):
            phase = float(torch.rand(1, generator=gen)) * 2 * math.pi
            noise = 0.02 * torch.randn(size, size, generator=gen)
            images.append(0.5 + 0.1 * grating(f * math.pi / fingers, size, phase) + noise)
    return {
        "images": torch.stack(images).clamp(0, 1)[:, None],
        "finger": torch.arange(fingers).repeat_interleave(impressions),
        "impression": torch.arange(impressions).repeat(fingers),
        "index": torch.arange(fingers * impressions),
    }


def stripe_recognizer(size: int = 48) -> FrozenRecognizer:
    return FrozenRecognizer(OrientationEnergy(), DataSpec(1, (size, size), (0.0,), (1.0,)), 1, [0.5], [0.25])


def test_jpeg_points_have_the_real_bpp_and_recognition_improves_with_quality(tmp_path: Path) -> None:
    data, codec, qualities = striped_fingers(), get_codec("jpeg"), (1, 5, 25)
    scorer = verification_scorer(stripe_recognizer(), data["images"], data["finger"], data["impression"],
                                 data["index"])  # fmt: skip
    assert scorer.reference["eer"] == 0.0 and scorer.reference["impostor_pairs"] == 60  # 12 images of 6 fingers
    points = evaluate_baseline(codec, qualities, data["images"], scorer, progress=False)
    for point, quality in zip(points, qualities, strict=True):
        sizes = [len(codec.encode(image, quality)) for image in to_uint8(data["images"])]
        assert point["bpp"] == pytest.approx(sum(bits_per_pixel(n, 48, 48) for n in sizes) / len(sizes))
        assert (point["codec"], point["quality"], point["ms_ssim_window"]) == ("jpeg", quality, 3)
    eer, psnr = [p["eer"] for p in points], [p["psnr"] for p in points]
    assert eer[0] > eer[1] > eer[2] == 0.0 and psnr == sorted(psnr)  # q 1 erases the stripes, q 25 keeps them
    assert points[0]["tar@far=1e-3"] < points[2]["tar@far=1e-3"] == 1.0

    cache = tmp_path / "cache"
    first = cached_baseline(codec, (1, 25), data["images"], scorer, cache, ("recognizer-hash",))
    assert first == [points[0], points[2]] and len(list(cache.glob("*.json"))) == 2
    (next(cache.glob("*.json"))).write_text("{not json")  # an unreadable file is recomputed
    stamps = {p: p.stat().st_mtime_ns for p in cache.glob("*.json")}
    assert cached_baseline(codec, (1, 5, 25), data["images"], scorer, cache, ("recognizer-hash",)) == points
    assert len(list(cache.glob("*.json"))) == 3 and sum(p.stat().st_mtime_ns == t for p, t in stamps.items()) == 1
    cached_baseline(codec, (1,), data["images"], scorer, cache, ("other recognizer",))
    assert len(list(cache.glob("*.json"))) == 4


def test_classification_scorer_scores_the_argmax_of_logits() -> None:
    data = striped_fingers(fingers=3, impressions=2)
    recognizer = FrozenRecognizer(nn.Sequential(OrientationEnergy(3)), DataSpec(1, (48, 48), (0.0,), (1.0,)), 1,
                                  [0.5], [0.25])  # fmt: skip
    scorer = classification_scorer(recognizer, data["images"], data["finger"])
    assert scorer.reference == {"acc": 1.0}  # the strongest grating is the stripes' own
    assert scorer(torch.full_like(data["images"], 0.5))["acc"] < 1.0
    with pytest.raises(ValueError, match="gives 3 outputs but the labels go up to 5"):
        classification_scorer(recognizer, data["images"], data["index"])


def tiny_embedder_checkpoint(path: Path) -> Path:
    """An untrained embedder checkpoint in the layout the embedder Recognizer reads (a training run's, minus the
    training)."""
    net_cfg = {"model_name": "resnet18", "channels": [8, 8, 8, 8], "stem_width": 8, "map_index": 2}
    torch.manual_seed(0)
    net = build_embedding_net(net_cfg, in_chans=1, embedding_dim=16)
    torch.save({"system": EMBEDDER_SYSTEM, "hyper_parameters": {"net": net_cfg, "in_chans": 1, "embedding_dim": 16},
                TRAINING_SPEC_KEY: DataSpec(1, (64, 64), (0.55,), (0.25,)).as_dict(),
                "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, path)  # fmt: skip
    return path


def learned_run(path: Path, bpp: float, tar: float, reference: float) -> Path:
    """A finished IPR-codec run dir as the comparison reads it: status.json and metrics.json."""
    write_json(path / "status.json", {"status": "done"})
    write_json(path / "metrics.json", {"test/bpp": bpp, "test/psnr": 30.0, "test/ms_ssim": 0.9, "test/eer": 0.1,
                                       "test/tar@far=1e-3": tar, "test/ref_tar@far=1e-3": reference})  # fmt: skip
    return path


def test_script_writes_points_headline_and_plot_and_reuses_its_cache(tmp_path: Path, monkeypatch) -> None:
    spec = importlib.util.spec_from_file_location("rate_recognition_script", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.chdir(tmp_path)  # paths.root_dir: data and point caches under tmp_path/outputs/cache
    ckpt = tiny_embedder_checkpoint(tmp_path / "embedder.ckpt")
    args = [*TINY_DATA, "--recognizer", str(ckpt), "--codecs", "jpeg", "webp", "wsq", "--out", str(tmp_path / "a")]
    script.main(args)
    points = (tmp_path / "a" / "points.csv").read_text().splitlines()
    assert points[0].startswith("codec,quality,bpp,psnr,ms_ssim,ms_ssim_window,eer,rank1,tar@far=1e-2")
    assert len(points) == 1 + 5 + 5  # jpeg and webp sweeps; wsq refuses 64-px images
    headline = (tmp_path / "a" / "headline.md").read_text()
    assert "| jpeg | 5 |" in headline and "not run: wsq needs at least 65 px per side" in headline
    assert (tmp_path / "a" / "rate_recognition.png").stat().st_size > 10_000
    cache = tmp_path / "outputs" / "cache" / "rate_recognition"
    stamps = {p: p.stat().st_mtime_ns for p in cache.glob("*.json")}
    assert len(stamps) == 10

    runs = [learned_run(tmp_path / "ipr_beta1", 0.8, 0.5, 0.5), learned_run(tmp_path / "ipr_other", 0.5, 0.1, 0.9)]
    script.main([*args[:-1], str(tmp_path / "b"), "--learned", *map(str, runs)])
    assert {p: p.stat().st_mtime_ns for p in cache.glob("*.json")} == stamps  # the baselines came from the cache
    rows = (tmp_path / "b" / "points.csv").read_text().splitlines()
    assert len(rows) == 1 + 5 + 5 + 2 and rows[-1].startswith("ipr_other,,0.5,30.0,0.9,,0.1,,,0.1,")
    headline = (tmp_path / "b" / "headline.md").read_text()
    assert "| ipr_beta1 | 1 |" in headline and "ipr_other (ipr_other): uncompressed tar@far=1e-3 0.9 there" in headline

    config = ["+recognizer=embedder", f"recognizer.path={ckpt}", "--config-recognizer"]  # the same net, by config
    script.main([*TINY_DATA, *config, "--codecs", "jpeg", "--out", str(tmp_path / "c"), "--save-decoded", "jpeg:10"])
    assert (tmp_path / "c" / "points.csv").read_text().splitlines() == points[:6]
    decoded, original = (read_fingerprint_folder(tmp_path / "c" / "decoded" / n) for n in ("jpeg_10", "original"))
    assert len(decoded) == len(original) > 0 and decoded.finger.tolist() == original.finger.tolist()
    first = [np.asarray(Image.open(r.paths[0]), np.float64) for r in (decoded, original)]
    jpeg_psnr = 10 * np.log10(255**2 / np.mean((first[0] - first[1]) ** 2))
    assert 15 < jpeg_psnr < 40  # JPEG q 10 of the original, not a copy
    script.main([*TINY_DATA, *config, "--codecs", "jpeg", "--qualities", "jpeg=3,6", "--out", str(tmp_path / "e")])
    rows = (tmp_path / "e" / "points.csv").read_text().splitlines()[1:]
    assert [r.split(",")[:2] for r in rows] == [["jpeg", "3.0"], ["jpeg", "6.0"]]  # a lower-rate sweep than JPEG's
    assert script.quality_sweep("hevc=51,45") == ("hevc", (51.0, 45.0, 23.0))  # the anchor joins every HEVC sweep
    with pytest.raises(SystemExit, match="expected CODEC=Q1,Q2"):
        script.quality_sweep("jpeg")
    with pytest.raises(SystemExit, match="expected CODEC:QUALITY"):
        script.main([*TINY_DATA, *config, "--out", str(tmp_path / "d"), "--save-decoded", "jpeg"])


def test_decoded_folders_are_written_new_and_never_over_an_existing_one(tmp_path: Path) -> None:
    images = [np.full((8, 8), v, np.uint8) for v in (0, 100, 200)]
    out = write_identity_folder(tmp_path / "set", images, [0, 0, 4], [0, 1, 0])
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == ["1/1.png", "1/2.png", "5/1.png"]
    assert np.asarray(Image.open(out / "5" / "1.png")).tolist() == images[2].tolist() and (out / COMPLETE).is_file()
    with pytest.raises(FileExistsError, match="written into a new folder only"):
        write_identity_folder(out, images, [1, 1, 1], [0, 1, 2])
    assert np.asarray(Image.open(out / "1" / "1.png")).max() == 0
    with pytest.raises(ValueError, match="pair repeats"):
        write_identity_folder(tmp_path / "twice", images, [0, 0, 1], [0, 0, 0])
    assert not (tmp_path / "twice").exists()

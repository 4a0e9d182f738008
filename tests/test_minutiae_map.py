"""Minutiae maps: channel weights, blob position / shape / truncation, padding, clipping, batching."""

from __future__ import annotations

import math

import pytest
import torch

from biobench.data.fingerprints.minutiae_map import minutiae_maps, orientation_weights

STEP = 2 * math.pi / 6
SIGMA = 1.5


def _one(x: float, y: float, angle: float, image: int = 256, size: int = 128, **kw) -> torch.Tensor:
    return minutiae_maps(torch.tensor([[[x, y, angle, 0.0]]]), torch.tensor([1]), (image, image), size, **kw)[0]


def test_blob_on_a_channel_angle_peaks_at_the_scaled_position() -> None:
    # image 256 -> map 128: (x + 0.5) / 2 - 0.5, so x = 40.5 -> 20, y = 60.5 -> 30
    m = _one(40.5, 60.5, 2 * STEP)
    assert m.shape == (6, 128, 128) and m.dtype == torch.float32
    assert torch.count_nonzero(m[[0, 1, 3, 4, 5]]) == 0
    c = m[2]
    assert c[30, 20] == pytest.approx(1.0)
    assert torch.equal(torch.tensor(divmod(int(c.argmax()), 128)), torch.tensor([30, 20]))
    one_px = math.exp(-1 / (2 * SIGMA**2))
    for dy, dx in [(0, 1), (0, -1), (1, 0), (-1, 0)]:
        assert c[30 + dy, 20 + dx] == pytest.approx(one_px, rel=1e-5)
    assert c[31, 21] == pytest.approx(math.exp(-2 / (2 * SIGMA**2)), rel=1e-5)
    assert c[30, 23] == pytest.approx(math.exp(-2.0), rel=1e-5)  # exactly at the 2-sigma cut-off: kept
    assert c[31, 23] == 0 and c[30, 24] == 0 and c[33, 21] == 0  # beyond 3 px: zero
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    d2 = (xx - 20) ** 2 + (yy - 30) ** 2
    expected = torch.exp(-d2 / (2 * SIGMA**2)) * (d2 <= 9)
    torch.testing.assert_close(c, expected)


def test_sub_pixel_centre() -> None:
    m = _one(20.25, 30.0, 0.0, image=128, size=128)[0]
    assert m[30, 20] == pytest.approx(math.exp(-(0.25**2) / (2 * SIGMA**2)), rel=1e-5)
    assert m[30, 21] == pytest.approx(math.exp(-(0.75**2) / (2 * SIGMA**2)), rel=1e-5)


@pytest.mark.parametrize(
    ("angle", "weights"),
    [
        (1.25 * STEP, {1: 0.75, 2: 0.25}),
        (0.5 * STEP, {0: 0.5, 1: 0.5}),
        (2 * math.pi - 0.25 * STEP, {5: 0.25, 0: 0.75}),  # wraps round the circle
        (-0.25 * STEP, {5: 0.25, 0: 0.75}),  # negative angles are the same directions
        (5 * STEP, {5: 1.0}),
    ],
)
def test_linear_orientation_weights(angle: float, weights: dict[int, float]) -> None:
    expected = torch.zeros(6)
    for k, v in weights.items():
        expected[k] = v
    torch.testing.assert_close(orientation_weights(torch.tensor(angle)), expected, atol=1e-6, rtol=0)
    m = _one(40.5, 60.5, angle)
    torch.testing.assert_close(m[:, 30, 20], expected, atol=1e-6, rtol=0)


def test_softmax_weighting_is_flx_reading() -> None:
    w = orientation_weights(torch.tensor([0.0, 0.4 * STEP]), weighting="softmax")
    assert torch.all(w > 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(2))
    assert w[0].argmax() == 0 and w[0, 1] == pytest.approx(w[0, 5].item())
    assert w[0, 0] == pytest.approx(1 / sum(math.exp(-abs(d) * STEP) for d in (0, 1, 2, 3, 2, 1)), rel=1e-5)
    assert _one(40.5, 60.5, 0.0, weighting="softmax").max() == pytest.approx(w[0, 0].item())  # ~0.50, never 1
    with pytest.raises(ValueError, match="weighting"):
        orientation_weights(torch.tensor(0.0), weighting="cosine")


def test_padded_rows_and_outside_minutiae_add_nothing() -> None:
    rows = torch.tensor(
        [
            [[40.5, 60.5, 0.0, 0.0], [-3.0, 50.0, 0.0, 0.0], [258.0, 50.0, 0.0, 1.0], [100.0, 100.0, 1.0, 1.0]],
            [[100.0, 100.0, 1.0, 1.0], [5.0, 5.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
        ]
    )
    rows[1, 2] = torch.tensor([float("nan"), 3.0, 1.0, 0.0])  # padding content is never read
    maps = minutiae_maps(rows, torch.tensor([3, 0]), (256, 256), 128)
    torch.testing.assert_close(maps[0], _one(40.5, 60.5, 0.0))  # rows 1, 2 outside the image, row 3 padding
    assert torch.count_nonzero(maps[1]) == 0


def test_blob_cut_at_the_map_border() -> None:
    m = _one(0.0, 0.0, 0.0, image=128, size=128)[0]
    assert m[0, 0] == pytest.approx(1.0) and m[0, 3] == pytest.approx(math.exp(-2.0), rel=1e-5)
    assert m[-1, -1] == 0 and m[0, -1] == 0  # nothing wraps round to the other side


def test_overlapping_blobs_sum_and_clip() -> None:
    rows = torch.tensor([[[40.5, 60.5, 0.0, 0.0], [40.5, 60.5, 0.0, 1.0], [42.5, 60.5, 0.0, 1.0]]])
    m = minutiae_maps(rows, torch.tensor([3]), (256, 256), 128)[0, 0]
    assert m.max() == 1.0 and m[30, 20] == 1.0
    single = _one(40.5, 60.5, 0.0)[0]
    assert m[30, 22] == 1.0  # 2 * exp(-2 / 4.5) + 1 > 1: clipped
    assert m[30, 17] == pytest.approx(min(1.0, 2 * single[30, 17].item()), rel=1e-5)


def test_batched_equals_per_sample_and_rectangular_sizes() -> None:
    g = torch.Generator().manual_seed(0)
    rows = torch.rand(3, 20, 4, generator=g) * torch.tensor([200.0, 100.0, 2 * math.pi, 1.0])
    n = torch.tensor([20, 7, 0])
    maps = minutiae_maps(rows, n, (100, 200), (32, 48))
    assert maps.shape == (3, 6, 32, 48)
    for i in range(3):
        torch.testing.assert_close(
            maps[i], minutiae_maps(rows[i : i + 1, : n[i]], n[i : i + 1], (100, 200), (32, 48))[0]
        )
    # anisotropic scale: a 45-degree direction in the image is atan2(sy, sx) in the map
    one = minutiae_maps(torch.tensor([[[99.5, 49.5, math.pi / 4, 0.0]]]), torch.tensor([1]), (100, 200), (32, 48))[0]
    angle = math.atan2(32 / 100, 48 / 200)
    torch.testing.assert_close(one[:, 16, 24], one[:, 15, 23])  # centre at (23.5, 15.5): the 4 pixels around it match
    torch.testing.assert_close(one[:, 15, 23] / one[:, 15, 23].sum(), orientation_weights(torch.tensor(angle)))


def test_empty_inputs() -> None:
    assert minutiae_maps(torch.zeros(2, 0, 4), torch.zeros(2, dtype=torch.long), (64, 64), 16).shape == (2, 6, 16, 16)
    with pytest.raises(ValueError, match=r"\[B, M, 4\]"):
        minutiae_maps(torch.zeros(2, 5, 3), torch.zeros(2), (64, 64))

"""Synthetic fingerprint generator: determinism, Henry classes vs singular points, minutiae, impressions, data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from biobench.data.fingerprints import HENRY_CLASSES, FingerprintGenerator
from biobench.data.fingerprints.impression import (
    CONDITIONS,
    DEVICES,
    ImpressionParams,
    ImpressionWarp,
    render_impression,
)
from biobench.data.fingerprints.master import make_master
from biobench.data.fingerprints.minutiae import BIFURCATION, ENDING, extract_minutiae
from biobench.data.fingerprints.orientation import detect_singular_points, estimate_orientation, henry_class_of

SIZE = 160  # small prints keep the suite fast; the algorithms are size-independent


@pytest.fixture(scope="module")
def generator() -> FingerprintGenerator:
    return FingerprintGenerator(seed=3, size=SIZE)


def test_finger_seed_fixes_master_and_impressions_are_order_independent(generator: FingerprintGenerator) -> None:
    other = FingerprintGenerator(seed=3, size=SIZE)
    late = other.impression(5, 1)  # drawn before impression 0 this time
    np.testing.assert_array_equal(other.master(5).ridges, generator.master(5).ridges)
    np.testing.assert_array_equal(other.impression(5, 0).image, generator.impression(5, 0).image)
    np.testing.assert_array_equal(late.image, generator.impression(5, 1).image)
    assert not np.array_equal(generator.impression(5, 0).image, generator.impression(5, 1).image)
    assert not np.array_equal(FingerprintGenerator(seed=4, size=SIZE).master(5).ridges, generator.master(5).ridges)


@pytest.mark.parametrize("henry", range(len(HENRY_CLASSES)))
def test_henry_class_matches_singular_points_of_the_ridge_pattern(henry: int) -> None:
    """The Poincare index of the orientation *estimated from the rendered ridges* recovers the sampled class."""
    for seed in range(2):
        master = make_master(np.random.default_rng([henry, seed]), size=192, henry=henry)
        theta = estimate_orientation(master.ridges.astype(np.float32), sigma=5)
        found = detect_singular_points(theta, ndimage.binary_erosion(master.mask, iterations=10))
        assert (len(found.cores), len(found.deltas)) == (len(master.singular.cores), len(master.singular.deltas))
        assert henry_class_of(found) == henry, HENRY_CLASSES[henry]


def test_masters_have_a_realistic_number_of_minutiae(generator: FingerprintGenerator) -> None:
    counts = [len(generator.master(f).minutiae) for f in range(4)]
    scale = (SIZE / 320) ** 2  # minutiae scale with the area
    assert all(15 * scale <= c <= 100 * scale for c in counts), counts
    assert {ENDING, BIFURCATION} <= set(np.concatenate([generator.master(f).minutiae.kind for f in range(4)]))


def test_minutiae_extraction_finds_ridge_endings_with_outward_directions() -> None:
    """Horizontal ridges, one of them cut from x=60 to x=100: two endings, pointing into the gap."""
    yy, xx = np.mgrid[0:160, 0:160]
    ridges = np.where(np.abs((yy % 10) - 5) < 2.5, 1.0, -1.0)
    ridges[(yy >= 73) & (yy < 78) & (xx >= 60) & (xx < 100)] = -1.0  # the ridge centred on y=75
    theta = np.zeros((160, 160), dtype=np.float32)
    m = extract_minutiae(ridges, np.ones((160, 160), bool), theta, period=10, border=20)
    assert len(m) == 2 and (m.kind == ENDING).all()
    left, right = np.argsort(m.xy[:, 0])
    np.testing.assert_allclose(m.xy[left], [59, 75], atol=4)  # thinning shortens ends by ~half a ridge width
    np.testing.assert_allclose(m.xy[right], [100, 75], atol=4)
    assert np.cos(m.angle[left]) > 0.99 and np.cos(m.angle[right]) < -0.99  # both point into the gap


def test_minutiae_follow_the_rigid_transform(generator: FingerprintGenerator) -> None:
    master = generator.master(2)
    params = ImpressionParams(dx=6, dy=-4, rotation=12, contact=1.2, distortion=0.0, noise=0.0)
    imp = render_impression(master, params, np.random.default_rng(0), margin=0.0)
    a, c = np.deg2rad(12), (SIZE - 1) / 2
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    expected = (master.minutiae.xy - c) @ rot.T + c + [6, -4]
    # every kept minutia sits where the transform puts its master minutia, turned by the rotation
    dist = np.linalg.norm(imp.minutiae.xy[:, None] - expected[None], axis=-1)
    match = dist.argmin(1)
    assert len(imp.minutiae) >= 0.5 * len(master.minutiae) and dist.min(1).max() < 1e-3
    turned = np.mod(master.minutiae.angle[match] + a - imp.minutiae.angle + np.pi, 2 * np.pi) - np.pi
    np.testing.assert_allclose(turned, 0, atol=1e-3)


def test_distorted_minutiae_map_back_onto_the_master(generator: FingerprintGenerator) -> None:
    """With elastic distortion, the output position of a minutia reads the master exactly at that minutia."""
    master = generator.master(2)
    params = ImpressionParams(dx=3, dy=2, rotation=-8, contact=1.2, distortion=8.0)
    warp = ImpressionWarp(
        master.ridges.shape, params, np.array([master.area.cx, master.area.cy]), np.random.default_rng(1)
    )
    out = warp.to_output(master.minutiae.xy.astype(np.float64))
    back = (out - warp.c - warp.t) @ warp.rot + warp.c + warp.displacement(out)
    np.testing.assert_allclose(back, master.minutiae.xy, atol=0.05)
    assert np.abs(warp.field.numpy()).max() > 1.0  # the distortion is really there


def test_pressure_thickens_ridges(generator: FingerprintGenerator) -> None:
    master = generator.master(1)

    def ridge_share(pressure: float) -> float:
        params = ImpressionParams(pressure=pressure, noise=0.0, blur=0.5, contact=1.2)
        imp = render_impression(master, params, np.random.default_rng(0))
        return float((imp.image[imp.mask] < 128).mean())

    dry, normal, wet = ridge_share(-0.8), ridge_share(0.0), ridge_share(0.8)
    assert dry < normal < wet and wet - dry > 0.2


def test_impression_attributes_are_validated() -> None:
    with pytest.raises(ValueError, match="device"):
        ImpressionParams(device="scanner")
    with pytest.raises(ValueError, match="pressure"):
        ImpressionParams(pressure=2.0)
    with pytest.raises(ValueError, match="Unknown impression parameters"):
        FingerprintGenerator(size=SIZE).impression(0, 0, tilt=3)


def test_synthetic_dataset_batches_images_with_all_labels() -> None:
    from torch.utils.data import DataLoader

    from biobench.data.fingerprints import SyntheticFingerprints

    data = SyntheticFingerprints({"seed": 3, "size": SIZE}, n_fingers=3, impressions=2, first_finger=5)
    batch = next(iter(DataLoader(data, batch_size=6)))
    assert batch["image"].shape == (6, 1, SIZE, SIZE) and batch["image"].dtype == torch.uint8
    assert batch["finger"].tolist() == [5, 5, 6, 6, 7, 7] and batch["impression"].tolist() == [0, 1] * 3
    assert batch["minutiae"].shape == (6, 128, 4) and (batch["n_minutiae"] > 0).all()
    params = [data.generator.impression(f, i).params for f in (5, 6, 7) for i in (0, 1)]
    assert batch["device"].tolist() == [DEVICES.index(p.device) for p in params]
    assert batch["condition"].tolist() == [CONDITIONS.index(p.condition) for p in params]
    np.testing.assert_allclose(batch["rotation"].numpy(), [p.rotation for p in params], rtol=1e-6)
    with pytest.raises(ValueError, match="max_minutiae=2"):
        SyntheticFingerprints({"seed": 3, "size": SIZE}, n_fingers=1, impressions=1, max_minutiae=2)[0]
    np.testing.assert_array_equal(
        batch["image"][1, 0].numpy(), FingerprintGenerator(seed=3, size=SIZE).impression(5, 1).image
    )
    first = data[0]["minutiae"][: data[0]["n_minutiae"]].numpy()
    np.testing.assert_allclose(first, data.generator.impression(5, 0).minutiae.to_array())

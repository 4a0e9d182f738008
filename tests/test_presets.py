"""Impression presets: ``hard`` draws wider ranges than ``default``; the default preset keeps the generator's content
hash (caches and pinned hashes stay valid); a non-default preset changes it; unknown names are refused."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from biobench.data.fingerprints import FingerprintGenerator, ImpressionRanges
from biobench.data.fingerprints.impression import PRESETS
from biobench.utils.hashing import content_hash

DEFAULT_HASH = "d376a2628ee1d8bd"  # content_hash(FingerprintGenerator().describe_content()) before presets existed


def draws(preset: str, n: int = 400) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    params = [PRESETS[preset].sample(rng) for _ in range(n)]
    return {k: np.array([getattr(p, k) for p in params]) for k in ("rotation", "contact", "contact_dx", "dx",
                                                                   "distortion", "noise", "pressure")}  # fmt: skip


def test_hard_preset_draws_wider_ranges_than_default() -> None:
    easy, hard = draws("default"), draws("hard")
    for key in ("rotation", "contact_dx", "dx"):
        assert np.abs(hard[key]).mean() > 1.3 * np.abs(easy[key]).mean(), key
    assert np.abs(easy["pressure"]).max() <= 0.9 < np.abs(hard["pressure"]).max()  # very dry / very wet skin
    assert hard["contact"].mean() < easy["contact"].mean() - 0.2  # partial prints
    assert hard["distortion"].mean() > 1.5 * easy["distortion"].mean()
    assert hard["noise"].mean() > easy["noise"].mean()


def test_hard_impressions_keep_fewer_minutiae() -> None:
    """Partial contact drops the minutiae outside it (one master, the same impression ids)."""
    counts = {}
    for preset in ("default", "hard"):
        gen = FingerprintGenerator(seed=1, size=192, preset=preset)
        counts[preset] = np.mean([len(gen.impression(0, i).minutiae) for i in range(6)])
    assert counts["hard"] < 0.8 * counts["default"]


def test_default_preset_keeps_the_hash_and_hard_changes_it() -> None:
    default = FingerprintGenerator(preset="default")
    assert content_hash(default.describe_content()) == content_hash(FingerprintGenerator().describe_content())
    assert content_hash(default.describe_content()) == DEFAULT_HASH
    assert "preset" not in default.describe_content()
    hard = FingerprintGenerator(preset="hard")
    assert hard.describe_content()["preset"] == "hard"
    assert content_hash(hard.describe_content()) != DEFAULT_HASH


def test_overrides_apply_on_top_of_the_preset() -> None:
    gen = FingerprintGenerator(preset="hard", impression={"rotation": 5.0, "devices": ["optical"]})
    assert gen.ranges == replace(PRESETS["hard"], rotation=5.0, devices=("optical",))
    assert content_hash(gen.describe_content()) != content_hash(FingerprintGenerator(preset="hard").describe_content())


def test_unknown_preset_and_conflicting_ranges_are_refused() -> None:
    with pytest.raises(ValueError, match=r"Unknown generator\.preset 'brutal'; choose one of \['default', 'hard'\]"):
        FingerprintGenerator(preset="brutal")
    with pytest.raises(ValueError, match="replaces the preset"):
        FingerprintGenerator(preset="hard", impression=ImpressionRanges())

"""The synthetic fingerprint generator: a finger id fixes a master; an impression id fixes how it was taken."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from typing import Any

import numpy as np

from biobench.data.fingerprints.impression import Impression, ImpressionRanges, preset_ranges, render_impression
from biobench.data.fingerprints.master import MasterFingerprint, check_master_args, make_master
from biobench.data.fingerprints.orientation import HENRY_PRIORS

# Bumped whenever a change to the generator changes its images, so caches of generated data are not reused.
GENERATOR_VERSION = 2


class FingerprintGenerator:
    """SFinGe-style generator of master fingerprints and their impressions (see ``docs/fingerprints.md``).

    Deterministic: finger ``f`` of generator seed ``s`` always has the same master, drawn from its own random
    stream ``(s, f)``; impression ``i`` of it draws from the independent stream ``(s, f, i)``. Masters are kept
    in an LRU cache of ``cache_size`` entries (about 0.5 MB each at 320 px).

    Impressions are drawn from the ranges of ``preset`` (``default`` or ``hard``, see ``impression.PRESETS``) with
    the ``impression`` overrides on top; an :class:`ImpressionRanges` given as ``impression`` replaces the preset's
    ranges (and then ``preset`` must stay ``default``).
    """

    def __init__(
        self,
        seed: int = 0,
        size: int = 320,
        period_range: Sequence[float] = (9.0, 11.0),
        n_seeds: int = 48,
        henry_priors: Sequence[float] = HENRY_PRIORS,
        impression: dict[str, Any] | ImpressionRanges | None = None,
        cache_size: int = 64,
        preset: str = "default",
    ) -> None:
        if size < 128:
            raise ValueError(f"Fingerprint size must be at least 128 px (a finger at 500 dpi), got {size}.")
        check_master_args(period_range, henry_priors)  # fail at construction, not in a worker process
        self.seed = int(seed)
        self.size = int(size)
        self.period_range = (float(period_range[0]), float(period_range[1]))
        self.n_seeds = int(n_seeds)
        self.henry_priors = tuple(float(p) for p in henry_priors)
        self.preset = str(preset)
        base = preset_ranges(self.preset)
        if isinstance(impression, ImpressionRanges):
            if self.preset != "default":
                raise ValueError(
                    f"FingerprintGenerator got preset='{self.preset}' and an ImpressionRanges, which replaces the "
                    "preset: give either, or the preset with a dict of overrides."
                )
            self.ranges = impression
        else:
            ranges = {k: tuple(v) if isinstance(v, Sequence) and not isinstance(v, str) else v
                      for k, v in (impression or {}).items()}  # fmt: skip
            valid = [f.name for f in fields(ImpressionRanges)]
            unknown = sorted(set(ranges) - set(valid))
            if unknown:
                raise ValueError(f"Unknown generator.impression keys {unknown}; valid keys: {valid}.")
            self.ranges = replace(base, **ranges)
        self.cache_size = cache_size
        self._masters: OrderedDict[int, MasterFingerprint] = OrderedDict()

    def describe_content(self) -> dict[str, Any]:
        """Everything that determines the generated images (keys caches of generated datasets). The preset is named
        only when it is not ``default``, so default sets keep the hash they had before presets existed."""
        content = {
            "version": GENERATOR_VERSION,
            "seed": self.seed,
            "size": self.size,
            "period_range": self.period_range,
            "n_seeds": self.n_seeds,
            "henry_priors": self.henry_priors,
            "impression": asdict(self.ranges),
        }
        if self.preset != "default":
            content["preset"] = self.preset
        return content

    def master(self, finger: int) -> MasterFingerprint:
        """The master of finger ``finger`` (cached)."""
        finger = int(finger)
        if finger < 0:
            raise ValueError(f"Finger ids are non-negative integers, got {finger}.")
        if finger in self._masters:
            self._masters.move_to_end(finger)
            return self._masters[finger]
        rng = np.random.default_rng([self.seed, finger, 77])
        master = make_master(rng, self.size, self.period_range, self.n_seeds, self.henry_priors)
        self._masters[finger] = master
        if len(self._masters) > self.cache_size:
            self._masters.popitem(last=False)
        return master

    def impression(self, finger: int, impression: int, **fixed: Any) -> Impression:
        """Impression ``impression`` of finger ``finger``; ``fixed`` parameters override the sampled ones."""
        rng = np.random.default_rng([self.seed, int(finger), int(impression), 73])
        params = self.ranges.sample(rng, **fixed)
        return render_impression(self.master(finger), params, rng)

"""What each metric name means: its direction (higher or lower is better), unit and display scale.

Used wherever a metric is judged or shown: the ``monitor`` check, sweep summaries (best-over, formatting) and
plots. Metric names are ``stage/name`` (``val/acc``, ``test/tar@far=1e-3``, ``test/bpp``); the rule is found from
the part after the stage. Unknown names raise a ``KeyError`` that lists the known patterns; a new metric is added
with :func:`register_metric`.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """``mode``: ``"max"`` or ``"min"`` (what is better); ``unit``: shown after values; ``scale``: display factor
    (fractions shown in percent have ``scale=100`` and ``unit="%"``)."""

    mode: str
    unit: str = ""
    scale: float = 1.0
    description: str = ""

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a > b if self.mode == "max" else a < b

    def format(self, value: float) -> str:
        """``value`` for tables: percentages with one decimal, other values with four significant digits."""
        return f"{value * self.scale:.1f}" if self.scale != 1.0 else f"{value:.4g}"


_RULES: dict[str, MetricInfo] = {}


def register_metric(pattern: str, info: MetricInfo) -> None:
    """Register (or replace) the rule for metric leaves matching the shell-style ``pattern`` (e.g. ``tar@far=*``)."""
    if info.mode not in ("max", "min"):
        raise ValueError(f"register_metric: mode must be 'max' or 'min', got '{info.mode}'.")
    _RULES[pattern] = info


for _pattern, _info in {
    "acc*": MetricInfo("max", "%", 100.0, "classification accuracy"),
    "tar@far=*": MetricInfo("max", "%", 100.0, "true accept rate at a false accept rate"),
    "rank1": MetricInfo("max", "%", 100.0, "rank-1 identification rate"),
    "eer": MetricInfo("min", "%", 100.0, "equal error rate"),
    "loss*": MetricInfo("min", "", 1.0, "training objective"),
    "*_loss": MetricInfo("min", "", 1.0, "training objective"),
    "bpp": MetricInfo("min", "bpp", 1.0, "bits per pixel of the real bitstream"),
    "psnr": MetricInfo("max", "dB", 1.0, "peak signal-to-noise ratio"),
    "ms_ssim": MetricInfo("max", "", 1.0, "multi-scale structural similarity"),
    "ipr": MetricInfo("min", "", 1.0, "identity distance of a reconstruction: 1 - cosine of its embedding"),
    "mse": MetricInfo("min", "", 1.0, "mean squared error of [0, 1] pixels"),
    "decode_error": MetricInfo("min", "", 1.0, "largest gap between decoded bitstreams and the forward pass"),
    "ref_acc*": MetricInfo("max", "%", 100.0, "accuracy on the uncompressed images (reference)"),
    "ref_tar@far=*": MetricInfo("max", "%", 100.0, "true accept rate on the uncompressed images (reference)"),
    "ref_rank1": MetricInfo("max", "%", 100.0, "rank-1 identification on the uncompressed images (reference)"),
    "ref_eer": MetricInfo("min", "%", 100.0, "equal error rate on the uncompressed images (reference)"),
    "fd": MetricInfo("min", "", 1.0, "Frechet distance"),
    "id_eer": MetricInfo("min", "%", 100.0, "equal error rate of generated same- vs different-identity pairs"),
    "id_tar@far=*": MetricInfo("max", "%", 100.0, "true accept rate of generated same-identity pairs at a FAR"),
    "precision": MetricInfo("max", "%", 100.0, "k-NN precision: share of generated samples on the real manifold"),
    "recall": MetricInfo("max", "%", 100.0, "k-NN recall: share of real samples on the generated manifold"),
    "fid": MetricInfo("min", "", 1.0, "Frechet inception distance"),
    "app_ratio": MetricInfo("min", "", 1.0, "appearance distance of shared-z_app samples over unrelated ones"),
    "l1": MetricInfo("min", "", 1.0, "mean absolute error of a regression (the controller's w)"),
    "control_acc*": MetricInfo("max", "%", 100.0, "share of controlled generations that show the requested value"),
    "chance_acc": MetricInfo("max", "%", 100.0, "control accuracy without a controller (1 / values)"),
    "kept_fraction": MetricInfo("max", "%", 100.0, "share of training samples kept"),
    "*_pairs": MetricInfo("max", "", 1.0, "number of comparison pairs a verification rate was measured on"),
    "*_s": MetricInfo("min", "s", 1.0, "wall-clock time"),
}.items():
    register_metric(_pattern, _info)


def metric_info(name: str) -> MetricInfo:
    """The rule for ``name`` (``stage/leaf`` or a bare leaf); the first registered pattern that matches wins."""
    leaf = name.rsplit("/", 1)[-1]
    for pattern, info in _RULES.items():
        if fnmatch.fnmatchcase(leaf, pattern):
            return info
    raise KeyError(
        f"Unknown metric '{name}': no rule for '{leaf}' (known: {', '.join(_RULES)}). "
        "Register it with biobench.metrics.registry.register_metric."
    )


def metric_mode(name: str, default: str | None = None) -> str:
    """``"max"`` or ``"min"`` for ``name``; ``default`` (if given) for unknown metrics."""
    try:
        return metric_info(name).mode
    except KeyError:
        if default is None:
            raise
        return default

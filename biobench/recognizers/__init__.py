"""Recognizers (DESIGN.md, Recognizer contract): frozen networks with ``embed(images) -> [N, D]``, L2-normalised,
differentiable with respect to the images, each owning its resize and normalisation.

Factories (``conf/recognizer/``; each takes the served :class:`~biobench.contracts.DataSpec` as ``spec``):
:func:`classifier_recognizer` (a biobench classifier checkpoint's penultimate features), :func:`torchscript_recognizer`
(a local TorchScript file), :func:`timm_recognizer` (a timm architecture with local weights). :func:`build_recognizer`
turns a config's result (a Recognizer, or a factory still missing ``spec``) into a Recognizer.
"""

from __future__ import annotations

from collections.abc import Callable

from biobench.contracts import DataSpec, Recognizer
from biobench.recognizers.classifier import PenultimateFeatures, classifier_recognizer
from biobench.recognizers.external import load_timm, load_torchscript, timm_recognizer, torchscript_recognizer
from biobench.recognizers.frozen import FrozenRecognizer, convert_channels


def build_recognizer(recognizer: Recognizer | Callable[..., Recognizer], spec: DataSpec) -> Recognizer:
    """``recognizer`` itself, or ``recognizer(spec=spec)`` for a factory (a ``_partial_: true`` config)."""
    if not isinstance(recognizer, Recognizer):
        if not callable(recognizer):
            raise TypeError(f"Expected a Recognizer or a factory taking spec=, got {type(recognizer).__name__}.")
        recognizer = recognizer(spec=spec)
    if not isinstance(recognizer, Recognizer):
        raise TypeError(f"The recognizer factory returned {type(recognizer).__name__}, which has no embed(images).")
    return recognizer


__all__ = [
    "FrozenRecognizer",
    "PenultimateFeatures",
    "build_recognizer",
    "classifier_recognizer",
    "convert_channels",
    "load_timm",
    "load_torchscript",
    "timm_recognizer",
    "torchscript_recognizer",
]

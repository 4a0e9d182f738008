"""Turn a recognizer config's result into a Recognizer."""

from __future__ import annotations

from collections.abc import Callable

from biobench.contracts import DataSpec, Recognizer


def build_recognizer(recognizer: Recognizer | Callable[..., Recognizer], spec: DataSpec) -> Recognizer:
    """``recognizer`` itself, or ``recognizer(spec=spec)`` for a factory (a ``_partial_: true`` config)."""
    if not isinstance(recognizer, Recognizer):
        if not callable(recognizer):
            raise TypeError(f"Expected a Recognizer or a factory taking spec=, got {type(recognizer).__name__}.")
        recognizer = recognizer(spec=spec)
    if not isinstance(recognizer, Recognizer):
        raise TypeError(f"The recognizer factory returned {type(recognizer).__name__}, which has no embed(images).")
    return recognizer

"""A biobench classifier checkpoint as a Recognizer: its penultimate features (``net.forward_features``).

The network is rebuilt from the spec in the checkpoint (:func:`biobench.models.nets.loading.load_classifier_net`,
weights_only), BatchNorm folded into the convolutions. Input size, mean and std are those of the data it was trained
on: read from the checkpoint's ``data_spec`` entry where it has one; checkpoints without it take them from the
arguments (``recognizer.input_size`` / ``mean`` / ``std``: the ``data.image_size`` / ``data.mean`` / ``data.std``
of the training run). An argument that contradicts the checkpoint is an error, not an override.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from biobench.contracts import DataSpec
from biobench.models.nets.loading import TRAINING_SPEC_KEY, fold_batchnorm, load_classifier_net
from biobench.recognizers.frozen import FrozenRecognizer, size_pair

CLASSIFIER_OUTPUTS = ("penultimate", "logits")


class PenultimateFeatures(nn.Module):
    """``forward(x) = net.forward_features(x)``: a biobench net without its classification head."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x)


def _from_checkpoint(name: str, stored: Any, given: Any, path: str | Path) -> Any:
    """The checkpoint's value where it has one (``given`` must then agree), else ``given``."""
    if stored is None:
        return given
    if given is not None and tuple(given) != tuple(stored):
        raise ValueError(
            f"recognizer.{name}={list(given)} contradicts the {name} {list(stored)} that classifier checkpoint "
            f"'{path}' was trained with: drop the argument (the checkpoint's value is used)."
        )
    return stored


def classifier_recognizer(
    path: str | Path,
    spec: DataSpec,
    input_size: int | Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    fold_bn: bool = True,
    output: str = "penultimate",
) -> FrozenRecognizer:
    """The penultimate features of the classifier checkpoint ``path`` as a Recognizer of images served by ``spec``.

    ``input_size`` ``None`` (and none stored) keeps the served size; ``mean`` / ``std`` must be known (stored or given).
    ``output="logits"`` embeds by the (L2-normalised) class logits instead, whose argmax is the classifier's
    prediction: the evaluator of a codec scored by accuracy.
    """
    if output not in CLASSIFIER_OUTPUTS:
        raise ValueError(f"recognizer.output='{output}' is not one of {CLASSIFIER_OUTPUTS}.")
    net, ckpt = load_classifier_net(path)
    trained = ckpt.get(TRAINING_SPEC_KEY) or {}
    input_size = _from_checkpoint("input_size", trained.get("image_size"), size_pair(input_size), path)
    mean = _from_checkpoint("mean", trained.get("mean"), mean, path)
    std = _from_checkpoint("std", trained.get("std"), std, path)
    if mean is None or std is None:
        raise ValueError(
            f"Classifier checkpoint '{path}' does not record the normalisation of its training data: set "
            "recognizer.mean and recognizer.std (the data.mean / data.std it was trained with) and "
            "recognizer.input_size (its data.image_size)."
        )
    features = PenultimateFeatures(net) if output == "penultimate" else net
    if fold_bn:
        features = fold_batchnorm(features)
    return FrozenRecognizer(features, spec, ckpt["hyper_parameters"]["in_chans"], mean, std, input_size)

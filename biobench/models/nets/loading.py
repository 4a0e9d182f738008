"""Safe loading of trained networks: a biobench classifier rebuilt from its checkpoint, plain state-dict files, and
BatchNorm folding for frozen inference. Shared by the KD teacher and the classifier Recognizer.

Checkpoints are read with ``torch.load(..., weights_only=True)`` (:func:`biobench.utils.checkpoint.read_checkpoint`),
state-dict files with safetensors or ``weights_only=True``; every error names the file and what was expected.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.fx.experimental.optimization import fuse as fuse_conv_bn

from biobench.models.nets.registry import create_net
from biobench.utils.checkpoint import read_checkpoint

# Checkpoint key of the training data's DataSpec (``DataSpec.as_dict()``): what a classifier Recognizer resizes
# and normalises to. Written by the classifier next to ``data_hash``; older checkpoints do not have it.
TRAINING_SPEC_KEY = "data_spec"
_NET_KEYS = ("net", "num_classes", "in_chans")
log = logging.getLogger(__name__)


def load_classifier_net(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a biobench classifier checkpoint's network (from the spec in its ``hyper_parameters``), frozen in
    eval mode; returns ``(net, checkpoint)``."""
    ckpt = read_checkpoint(path)
    hp = ckpt.get("hyper_parameters", {})
    if not all(k in hp for k in _NET_KEYS):
        raise ValueError(
            f"Checkpoint '{path}' does not come from a biobench classifier: its hyper_parameters lack "
            f"{[k for k in _NET_KEYS if k not in hp]} (expected a pruned_classifier / kd_student run's checkpoint)."
        )
    spec = dict(hp["net"])
    net = create_net(spec.pop("name"), num_classes=hp["num_classes"], in_chans=hp["in_chans"], **spec)
    load_net_state(net, ckpt, path)
    net.eval().requires_grad_(False)
    return net, ckpt


def load_net_state(net: nn.Module, ckpt: dict[str, Any], path: str | Path) -> None:
    """Load the ``net.*`` weights of a biobench checkpoint into ``net`` (rebuilt from the checkpoint's own
    ``hyper_parameters["net"]``); a mismatch is an error naming the file and that spec."""
    state = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(
            f"Checkpoint '{path}' does not fit its own network spec {ckpt['hyper_parameters']['net']}: {err}"
        ) from err


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``*.safetensors`` or a ``torch.save`` file (weights_only; a top-level ``state_dict``
    entry, as training scripts write it, is unwrapped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Weights file '{path}' does not exist.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(
            f"Weights file '{path}' cannot be read safely (safetensors, or torch.load with weights_only=True): {err}"
        ) from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"Weights file '{path}' holds no state dict (a mapping of parameter names to tensors).")
    return state


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """The eval-mode ``net`` with every Conv -> BatchNorm pair folded into one convolution (the same outputs up to
    float rounding, a faster forward pass); ``net`` itself if torch.fx cannot trace it (data-dependent control flow)."""
    try:
        return fuse_conv_bn(net)
    except Exception as err:  # torch.fx raises many kinds of errors on untraceable nets
        log.warning("%s runs without BatchNorm folding: it cannot be traced (%s).", type(net).__name__, err)
        return net

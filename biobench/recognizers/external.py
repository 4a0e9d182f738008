"""External networks as Recognizers, from local files only (nothing is downloaded):

- a TorchScript file (``torch.jit.save``) whose ``forward`` (or exported ``embed``) maps normalised images to
  ``[N, D]`` features; its input size and normalisation are not in the file, so they are arguments;
- a timm architecture by name with a local weights file (safetensors or a weights_only ``torch.save`` state dict),
  built with ``num_classes=0`` so ``forward`` returns pooled pre-logit features; the classifier head in the file is
  dropped. Input size, mean and std default to the architecture's ``pretrained_cfg``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import timm
import torch
from torch import nn

from biobench.contracts import DataSpec
from biobench.models.nets.loading import read_state_dict
from biobench.recognizers.frozen import FrozenRecognizer


def load_torchscript(path: str | Path) -> torch.jit.ScriptModule:
    """``torch.jit.load(path, map_location="cpu")`` with errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TorchScript file '{path}' does not exist (recognizer.path).")
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as err:  # torch.jit raises RuntimeError / ValueError variants on foreign files
        raise ValueError(
            f"'{path}' is not a TorchScript file (expected the output of torch.jit.save of a scripted or traced "
            f"module): {err}"
        ) from err


def torchscript_recognizer(
    path: str | Path,
    spec: DataSpec,
    in_chans: int,
    mean: Sequence[float],
    std: Sequence[float],
    input_size: int | Sequence[int] | None = None,
) -> FrozenRecognizer:
    """The TorchScript network in ``path`` as a Recognizer of images served by ``spec``."""
    return FrozenRecognizer(load_torchscript(path), spec, in_chans, mean, std, input_size)


def load_timm(name: str, weights: str | Path, in_chans: int = 3) -> nn.Module:
    """``timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans)`` with the weights in
    ``weights`` (its classifier head, if any, dropped); eval mode."""
    if not timm.is_model(name):
        raise ValueError(f"recognizer.name='{name}' is not a timm model (see timm.list_models()).")
    model = timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans)
    head = model.pretrained_cfg.get("classifier") or "head"
    heads = tuple(f"{h}." for h in ((head,) if isinstance(head, str) else head))
    state = {k: v for k, v in read_state_dict(weights).items() if not k.startswith(heads)}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        missing, unexpected = [str(err).splitlines()[-1].strip()], []
    if missing or unexpected:
        raise ValueError(
            f"Weights file '{weights}' does not fit timm model '{name}' with in_chans={in_chans} (RGB weights need "
            f"in_chans=3; the recognizer converts gray images): missing {list(missing)[:3]}, "
            f"unexpected {list(unexpected)[:3]}."
        )
    return model.eval()


def _default_stats(values: Sequence[float], in_chans: int, key: str, name: str) -> tuple[float, ...]:
    """The architecture's per-channel ``key`` for ``in_chans`` channels (equal values broadcast to any count)."""
    values = tuple(values)
    if len(values) == in_chans:
        return values
    if len(set(values)) == 1:
        return values[:1]
    raise ValueError(
        f"timm model '{name}' defaults to {len(values)}-channel {key} {values}: with in_chans={in_chans} set "
        f"recognizer.{key}."
    )


def timm_recognizer(
    name: str,
    weights: str | Path,
    spec: DataSpec,
    in_chans: int = 3,
    input_size: int | Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> FrozenRecognizer:
    """timm model ``name`` with local ``weights`` as a Recognizer of images served by ``spec``; ``input_size`` /
    ``mean`` / ``std`` left ``None`` come from the architecture's ``pretrained_cfg``."""
    model = load_timm(name, weights, in_chans)
    cfg = model.pretrained_cfg
    return FrozenRecognizer(
        model,
        spec,
        in_chans,
        mean if mean is not None else _default_stats(cfg["mean"], in_chans, "mean", name),
        std if std is not None else _default_stats(cfg["std"], in_chans, "std", name),
        input_size if input_size is not None else tuple(cfg["input_size"][1:]),
    )

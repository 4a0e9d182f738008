"""What the entrypoints do with any system: build it from the data spec, check its selection metrics up front."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from biobench.contracts import DataSpec
from biobench.metrics.registry import metric_mode

# metrics the entrypoints add to every run (besides the system's own and, with pruning, ``pruning/*``)
ENTRYPOINT_METRICS = ("time/fit_s",)


def system_class(model_cfg: DictConfig) -> type:
    """The class named by ``model._target_``; it must declare ``data_args`` (see :mod:`biobench.models.base`)."""
    target = model_cfg.get("_target_") if model_cfg is not None else None
    if not target:
        raise ValueError("The config has no model._target_: choose a model (model=<name>) or an experiment.")
    cls = get_class(target)
    if not isinstance(getattr(cls, "data_args", None), tuple):
        raise TypeError(
            f"model._target_={target} is not a biobench system: it declares no 'data_args' "
            "(derive it from biobench.models.base.System; see docs/architecture.md)."
        )
    return cls


def build_system(model_cfg: DictConfig, spec: DataSpec) -> Any:
    """Instantiate ``model_cfg`` with the data-derived arguments its class declares (``data_args``), from ``spec``."""
    cls = system_class(model_cfg)
    kwargs: dict[str, Any] = {}
    for name in cls.data_args:
        if name == "spec":
            kwargs[name] = spec
            continue
        if name not in DataSpec.field_names():
            raise TypeError(
                f"{cls.__name__}.data_args names '{name}', which is not a DataSpec field "
                f"({', '.join(DataSpec.field_names())}) nor 'spec'."
            )
        value = getattr(spec, name)
        if value is None:
            raise ValueError(
                f"{cls.__name__} needs '{name}' from the data, but the configured datamodule reports none "
                f"(data spec: {spec.as_dict()}). Choose data that has it (e.g. labels for num_classes, "
                "data.task=finger for num_identities)."
            )
        kwargs[name] = value
    # passed to the built partial, not to instantiate (which would turn a DataSpec into a config node)
    return instantiate(model_cfg, _partial_=True)(**kwargs)


def check_monitor(monitor: Mapping[str, Any] | None, cls: type) -> None:
    """``monitor`` (``{metric, mode}`` or null) must name a validation or training metric the system logs, with the
    registry's direction."""
    if not monitor:
        return
    metric, mode = monitor.get("metric"), monitor.get("mode")
    if metric is None:
        return
    known = [m for m in cls.metrics if not m.startswith("test/")]
    if metric not in known:
        raise ValueError(
            f"monitor.metric='{metric}' is not a metric {cls.__name__} logs during training; known: {known}. "
            "Set monitor.metric (or monitor=null to select the last checkpoint)."
        )
    if mode not in ("max", "min"):
        raise ValueError(f"monitor.mode must be 'max' or 'min', got '{mode}'.")
    expected = metric_mode(metric, default=mode)
    if mode != expected:
        raise ValueError(
            f"monitor.mode={mode} but {metric} is better when it is {'higher' if expected == 'max' else 'lower'}: "
            f"set monitor.mode={expected}."
        )


def check_optimized_metric(name: str | None, cls: type, pruning: bool, train: bool = True, test: bool = True) -> None:
    """``optimized_metric`` (what a sweeper optimises) must be a metric the run will produce: checked before
    training, so a wrong name does not fail every job after it has trained."""
    if not name:
        return
    stages = {"train/": train, "val/": train, "test/": test, "time/": train}
    known = [m for m in [*cls.metrics, *ENTRYPOINT_METRICS] if stages.get(m.split("/", 1)[0] + "/", True)]
    if name in known or (pruning and name.startswith("pruning/")):
        return
    raise ValueError(
        f"optimized_metric='{name}' is not produced by this {cls.__name__} run (train={train}, test={test}); "
        f"known: {known}{' and pruning/*' if pruning else ''}. Set optimized_metric to one of them (or null)."
    )

"""``System``: the base of biobench's LightningModules (DESIGN.md, System contract).

A system declares, as class attributes, what the entrypoints need to build, select, resume and evaluate it:

- ``data_args``: the :class:`~biobench.contracts.DataSpec` fields its constructor takes (``"spec"`` = the whole
  spec); the entrypoints pass exactly these, so no entrypoint knows any system.
- ``metrics``: the metric names it logs (``train/loss``, ``val/acc``, ...); ``monitor`` and ``optimized_metric``
  are checked against them (and against :mod:`biobench.metrics.registry` for their direction) before training.
- ``checked_hparams``: hyperparameters a checkpoint must share with the configured model (architecture, classes).
- ``checkpoint_excluded_prefixes``: state not saved with the system (a KD student's teacher).
- ``shape_flexible_prefixes``: buffers whose shape may legitimately differ from a fresh model's (CompressAI's
  CDF tables after ``update()``); such a system loads them in its own ``load_state_dict``.
- ``requires_checkpoint``: whether evaluation needs ``ckpt_path`` (a wrapper around a frozen recognizer does not).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytorch_lightning as pl

from biobench.models.nets.loading import TRAINING_SPEC_KEY


def trainer_data_hash(trainer: pl.Trainer) -> str | None:
    """The content hash of the trainer's datamodule, if it has one."""
    datamodule = getattr(trainer, "datamodule", None)
    return datamodule.data_hash() if datamodule is not None and hasattr(datamodule, "data_hash") else None


def record_training_data(checkpoint: dict[str, Any], trainer: pl.Trainer) -> None:
    """Record in ``checkpoint`` which data the weights were trained on (``data_hash``: a KD student checks its
    teacher against it) and the spec of the images they saw (``data_spec``: Recognizers resize and normalise to it)."""
    data_hash = trainer_data_hash(trainer)
    if data_hash:
        checkpoint["data_hash"] = data_hash
        checkpoint[TRAINING_SPEC_KEY] = trainer.datamodule.spec.as_dict()


def _drop_excluded_state(module: System, state: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    """state_dict post-hook: the system's state without its ``checkpoint_excluded_prefixes``."""
    excluded = tuple(prefix + p for p in module.checkpoint_excluded_prefixes)
    for key in [k for k in state if k.startswith(excluded)]:
        del state[key]


def _keep_excluded_state(module: System, state: dict[str, Any], prefix: str, *args: Any) -> None:
    """load_state_dict pre-hook: excluded submodules keep the weights they were built with (any such weights in
    the incoming state, e.g. of checkpoints written before the part was excluded, are ignored)."""
    _drop_excluded_state(module, state, prefix, None)
    for part in module.checkpoint_excluded_prefixes:
        try:
            sub = module.get_submodule(part.rstrip("."))
        except AttributeError:  # a part this system was built without (None)
            continue
        state.update({f"{prefix}{part}{k}": v for k, v in sub.state_dict().items()})


class System(pl.LightningModule):
    """LightningModule with the declarations above and checkpoint checks that name the file and what differs."""

    data_args: ClassVar[tuple[str, ...]] = ()
    metrics: ClassVar[tuple[str, ...]] = ()
    checked_hparams: ClassVar[tuple[str, ...]] = ()
    checkpoint_excluded_prefixes: ClassVar[tuple[str, ...]] = ()
    shape_flexible_prefixes: ClassVar[tuple[str, ...]] = ()
    requires_checkpoint: ClassVar[bool] = True

    def exclude_frozen_parts(self) -> None:
        """Keep the submodules named by ``checkpoint_excluded_prefixes`` (frozen parts rebuilt from their own files:
        a teacher, a recognizer) out of this system's checkpoints, and keep their weights when one is loaded. Call
        once those submodules exist."""
        self.register_state_dict_post_hook(_drop_excluded_state)
        self.register_load_state_dict_pre_hook(_keep_excluded_state)

    def _own_state(self, state: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in state.items() if not k.startswith(self.checkpoint_excluded_prefixes)}

    def check_checkpoint(self, checkpoint: dict[str, Any], path: str) -> None:
        """Raise a ``ValueError`` if ``checkpoint`` was saved by another model than this one.

        Compared: ``checked_hparams``, state keys (excluded prefixes ignored, so checkpoints written before a part
        was excluded still fit) and tensor shapes (``shape_flexible_prefixes`` ignored)."""
        saved = checkpoint.get("hyper_parameters", {})
        mine = dict(self.hparams)
        differ = {
            k: (saved.get(k), mine.get(k))
            for k in self.checked_hparams
            if k in saved and k in mine and saved[k] != mine[k]
        }
        state = self._own_state(checkpoint["state_dict"])
        own = self._own_state(self.state_dict())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        shapes = sorted(
            k
            for k in set(own) & set(state)
            if not k.startswith(self.shape_flexible_prefixes) and tuple(own[k].shape) != tuple(state[k].shape)
        )
        if differ or missing or unexpected or shapes:
            detail = "; ".join(f"{k}: checkpoint {a!r} vs config {b!r}" for k, (a, b) in differ.items())
            raise ValueError(
                f"Checkpoint '{path}' was saved by a different model than the one configured ({type(self).__name__}). "
                f"{detail + '. ' if detail else ''}Missing keys: {missing[:3]}, unexpected: {unexpected[:3]}, "
                f"shape mismatches: {shapes[:3]}. Use the experiment/model config the checkpoint was trained with."
            )

    def load_weights(self, checkpoint: dict[str, Any]) -> None:
        """Load a checked checkpoint's weights (a system with excluded prefixes keeps that state through its own
        ``load_state_dict`` pre-hook, as the KD student does for its teacher)."""
        self.load_state_dict(checkpoint["state_dict"])

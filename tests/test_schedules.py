"""Per-step LR schedules: sized from the trainer's step count, stepped per optimiser step, exact on resume."""

from __future__ import annotations

import itertools
from functools import partial

import pytest
import pytorch_lightning as pl
import torch

from biobench.models.pruned_classifier import PrunedClassifier
from biobench.models.schedules import is_step_schedule, lightning_scheduler, one_cycle, warmup_cosine


def _sgd() -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9, nesterov=True)


def _lrs(scheduler: torch.optim.lr_scheduler.LRScheduler, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        out.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return out


def test_one_cycle_peaks_at_the_optimiser_lr_and_ends_near_zero() -> None:
    lrs = _lrs(one_cycle(_sgd(), total_steps=100), 100)
    assert max(lrs) == pytest.approx(0.1)
    assert lrs.index(max(lrs)) == pytest.approx(30, abs=1)  # pct_start 0.3
    assert lrs[0] == pytest.approx(0.1 / 25) and lrs[-1] < 1e-4


@pytest.mark.parametrize(("total", "pct"), [(2, 0.3), (3, 0.3), (10, 0.1), (4, 0.1), (7, 0.9)])
def test_one_cycle_survives_very_short_runs(total: int, pct: float) -> None:
    """A 10 % subset may train for a handful of steps; OneCycleLR divides by zero at some warm-up lengths."""
    lrs = _lrs(one_cycle(_sgd(), total_steps=total, pct_start=pct), total)
    assert all(0 < lr <= 0.1 + 1e-12 for lr in lrs) and lrs[-1] < max(lrs)


def test_warmup_cosine_warms_up_then_decays_to_the_final_fraction() -> None:
    lrs = _lrs(warmup_cosine(_sgd(), total_steps=100, warmup_fraction=0.1, final_fraction=0.0), 101)
    assert lrs[0] < lrs[5] < lrs[10] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:])) and lrs[100] == pytest.approx(0.0)


def test_step_schedules_are_told_apart_from_epoch_schedulers() -> None:
    assert is_step_schedule(partial(one_cycle, pct_start=0.2))
    assert is_step_schedule(partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1))
    cosine = partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=5)
    assert not is_step_schedule(cosine)
    assert lightning_scheduler(cosine, _sgd(), 50)["interval"] == "epoch"
    entry = lightning_scheduler(one_cycle, _sgd(), 50)
    assert entry["interval"] == "step" and entry["scheduler"].total_steps == 50
    with pytest.raises(ValueError, match="finite number of training steps"):
        lightning_scheduler(one_cycle, _sgd(), float("inf"))


class _LRTrace(pl.Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.parametrize("limit", [{"max_epochs": 3}, {"max_steps": 7, "max_epochs": -1}])
def test_classifier_schedule_spans_the_steps_the_trainer_runs(limit: dict[str, int]) -> None:
    """Sized from ``estimated_stepping_batches``: a ``max_steps`` budget gets a whole cycle too."""
    data = torch.utils.data.TensorDataset(torch.randn(20, 1, 8, 8), torch.randint(0, 3, (20,)))

    def collate(b: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return {
            "image": torch.stack([x for x, _ in b]),
            "label": torch.stack([y for _, y in b]),
            "index": torch.arange(len(b)),
        }

    loader = torch.utils.data.DataLoader(data, batch_size=5, collate_fn=collate)
    model = PrunedClassifier({"name": "small_cnn", "width": 4}, 3, 1, partial(torch.optim.SGD, lr=0.1), one_cycle)
    trace = _LRTrace()
    trainer = pl.Trainer(**limit, accelerator="cpu", logger=False, enable_checkpointing=False, callbacks=[trace],
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, train_dataloaders=loader)
    steps = limit.get("max_steps", 3 * 4)
    assert len(trace.lrs) == steps and trainer.lr_scheduler_configs[0].scheduler.total_steps == steps
    assert max(trace.lrs) == pytest.approx(0.1, rel=0.05) and trace.lrs[-1] < 0.1 / 25

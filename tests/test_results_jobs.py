"""Run status and job accounting of biobench.results: failed, unfinished and missing jobs are counted and reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf
from test_summarize import make_run

from biobench.results import cli
from biobench.results.callback import SummarizeSweep
from biobench.results.jobs import expected_jobs, job_report
from biobench.results.runs import collect_runs

BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
DONE = {"status": "done", "error": None, "started": "2025-01-01T10:00:00", "ended": "2025-01-01T10:01:00"}


def write_multirun(sweep_dir: Path, task: list[str], sweeper: dict | None = None) -> Path:
    """``multirun.yaml`` as Hydra writes it into a sweep dir (the parts the job count reads)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    hydra = {"sweeper": sweeper or {"_target_": BASIC, "max_batch_size": None, "params": None}}
    hydra |= {"overrides": {"hydra": [f"hydra.sweep.dir={sweep_dir}"], "task": task}, "sweep": {"dir": str(sweep_dir)}}
    cfg = {"task_name": "prune_digits", "hydra": hydra}
    OmegaConf.save(OmegaConf.create(cfg), sweep_dir / "multirun.yaml")
    return sweep_dir


def job(sweep: Path, num: int, keep: float, status: dict | None = DONE, acc: float | None = 0.9) -> Path:
    config = {"task_name": "prune_digits", "seed": 0, "pruning": {"keep_ratio": keep}}
    choices = {"pruning/score": "random", "pruning/sampler": "topk"}
    return make_run(sweep / str(num), None if acc is None else {"test/acc": acc}, config, choices, status)


@pytest.mark.parametrize(
    ("task", "params", "expected"),
    [
        (["experiment=prune_digits", "pruning.keep_ratio=0.1,0.3,0.5", "seed=0,1"], None, 6),
        (["seed=range(4)", "method=random,aum_ccs", "trainer.max_epochs=2"], None, 8),
        (["model.lr=choice(0.1,0.01)", "+extra=a,b", "data.hflip=true"], None, 4),
        (["experiment=prune_digits"], None, 1),
        (["seed=0,1"], {"seed": "0,1,2", "pruning.keep_ratio": "0.1,0.2"}, 4),  # the command line wins over params
        (["pruning/score=glob(*)"], None, None),  # needs the config repository
    ],
)
def test_expected_jobs_from_multirun_yaml(tmp_path: Path, task: list[str], params: dict | None, expected: int | None):
    sweeper = {"_target_": BASIC, "max_batch_size": None, "params": params}
    assert expected_jobs(write_multirun(tmp_path, task, sweeper) / "multirun.yaml") == expected


def test_other_sweepers_have_unknown_size(tmp_path: Path) -> None:
    optuna = {"_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper", "n_trials": 20}
    assert expected_jobs(write_multirun(tmp_path, ["seed=0,1"], optuna) / "multirun.yaml") is None


@pytest.fixture
def broken_sweep(tmp_path: Path) -> Path:
    """6 jobs expected (3 keep ratios x 2 seeds): 3 done (one an older run without status.json), 1 failed,
    1 still 'running' without end, 1 never started (job 5: no dir)."""
    sweep = write_multirun(
        tmp_path / "sweep", ["experiment=prune_digits", "pruning.keep_ratio=0.1,0.5,0.9", "seed=0,1"]
    )
    job(sweep, 0, 0.1, acc=0.80)
    job(sweep, 1, 0.1, status=None, acc=0.84)
    job(sweep, 2, 0.5, acc=0.90)
    error = "FloatingPointError: non-finite loss (nan) at epoch 3, step 41.\nTry a lower learning rate."
    job(sweep, 3, 0.5, {**DONE, "status": "failed", "error": error}, acc=0.1)  # chance accuracy: must not count
    job(sweep, 4, 0.9, {**DONE, "status": "running", "ended": None}, acc=None)
    return sweep


def test_status_is_read_and_only_done_runs_count(broken_sweep: Path) -> None:
    runs = {r.dir.name: r for r in collect_runs([broken_sweep])}
    assert {name: r.status for name, r in runs.items()} == {
        "0": "done",
        "1": "done",
        "2": "done",
        "3": "failed",
        "4": "running",
    }
    assert runs["3"].error.startswith("FloatingPointError") and runs["0"].started == DONE["started"]


def test_job_report_counts_failed_unfinished_and_missing(broken_sweep: Path) -> None:
    report = job_report([broken_sweep], collect_runs([broken_sweep]))
    assert report.expected == 6 and report.missing == 1 and not report.complete
    assert report.headline() == "6 jobs expected: 3 done, 1 failed, 1 unfinished, 1 missing"
    details = report.details()
    assert details[0] == f"failed: {broken_sweep / '3'}: FloatingPointError: non-finite loss (nan) at epoch 3, step 41."
    assert details[1].startswith(f"unfinished: {broken_sweep / '4'} (status 'running' since {DONE['started']}")
    assert details[2] == f"missing: 1 of 6 jobs of {broken_sweep.resolve()} (job 5)"


def test_summary_reports_the_counts_and_averages_done_runs_only(
    broken_sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([str(broken_sweep)]) == 0  # the table is written all the same
    out = capsys.readouterr().out
    assert out.startswith("6 jobs expected: 3 done, 1 failed, 1 unfinished, 1 missing\n")
    md = (broken_sweep / "summary.md").read_text()
    assert md.startswith("**6 jobs expected: 3 done, 1 failed, 1 unfinished, 1 missing**\n")
    assert "- failed: " in md and "- missing: 1 of 6 jobs" in md
    # keep 0.5: the failed job's chance accuracy is left out
    assert "| random+topk | 82.00 ± 2.83 (2) | 90.00 ± 0.00 (1) |" in md
    assert cli.main([str(broken_sweep), "--strict"]) == cli.INCOMPLETE_EXIT
    assert "--strict: 6 jobs expected" in capsys.readouterr().err


def test_strict_passes_a_complete_sweep(tmp_path: Path) -> None:
    sweep = write_multirun(tmp_path / "sweep", ["pruning.keep_ratio=0.1,0.5"])
    job(sweep, 0, 0.1)
    job(sweep, 1, 0.5)
    assert cli.main([str(sweep), "--strict"]) == 0
    assert (sweep / "summary.md").read_text().startswith("**2 jobs expected: 2 done, 0 failed, 0 missing**")


def test_nothing_finished_is_an_error_with_the_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = write_multirun(tmp_path / "sweep", ["seed=0,1"])
    job(sweep, 0, 0.1, {**DONE, "status": "failed", "error": "RuntimeError: boom"}, acc=None)
    assert cli.main([str(sweep)]) == 1
    captured = capsys.readouterr()
    assert f"failed: {sweep / '0'}: RuntimeError: boom" in captured.out
    assert "no finished run to summarise (2 jobs expected: 0 done, 1 failed, 1 missing" in captured.err


def test_bad_status_file_counts_as_failed_naming_it(tmp_path: Path) -> None:
    run = job(tmp_path, 0, 0.1)
    (run / "status.json").write_text('{"status": "finished"}')
    (found,) = collect_runs([tmp_path])
    assert found.status == "failed"
    assert str(run / "status.json") in found.error and "'running', 'done', 'failed'" in found.error


def test_done_without_metrics_is_failed(tmp_path: Path) -> None:
    job(tmp_path, 0, 0.1, acc=None)
    (found,) = collect_runs([tmp_path])
    assert (found.status, found.error) == ("failed", "status is done but metrics.json is missing")


def test_callback_writes_the_summary_into_the_sweep_dir(broken_sweep: Path) -> None:
    config = OmegaConf.load(broken_sweep / "multirun.yaml")
    SummarizeSweep().on_multirun_end(config)
    assert (broken_sweep / "summary.md").read_text().startswith("**6 jobs expected")
    assert (broken_sweep / "test_acc_vs_keep_ratio.png").is_file()


def test_callback_never_fails_the_sweep(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sweep = write_multirun(tmp_path / "sweep", ["seed=0,1"])
    job(sweep, 0, 0.1)
    SummarizeSweep(metric="test/eer").on_multirun_end(OmegaConf.load(sweep / "multirun.yaml"))
    assert "No sweep summary written" in caplog.text and "test/eer" in caplog.text
    assert not (sweep / "summary.md").exists()

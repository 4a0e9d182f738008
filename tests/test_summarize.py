"""scripts/summarize.py on fake run dirs (no training): grouping, statistics, written files, errors."""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from omegaconf import OmegaConf
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "summarize.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("biobench_scripts_summarize", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


sm = _load_script()

# test/acc per (score, keep_ratio), one value per seed 0, 1, 2
ACCS = {
    ("random", 0.3): [0.80, 0.82, 0.84],  # mean 0.82, std 0.02
    ("random", 0.7): [0.90, 0.91, 0.95],  # mean 0.92, std sqrt(0.0014 / 2)
    ("el2n", 0.3): [0.70, 0.75, 0.80],  # mean 0.75, std 0.05
    ("el2n", 0.7): [0.96, 0.96, 0.96],  # mean 0.96, std 0
}
EXPECTED = {
    ("el2n+topk", 0.3): (0.75, 0.05, 3),
    ("el2n+topk", 0.7): (0.96, 0.0, 3),
    ("random+topk", 0.3): (0.82, 0.02, 3),
    ("random+topk", 0.7): (0.92, math.sqrt(0.0014 / 2), 3),
}
LABEL = ["pruning/score", "pruning/sampler"]


def make_run(
    run_dir: Path, metrics: dict[str, Any], config: dict[str, Any], choices: dict[str, Any] | None = None
) -> Path:
    """A run folder as biobench-train writes it: metrics.json, config.yaml, .hydra/{hydra,overrides}.yaml."""
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    OmegaConf.save(OmegaConf.create(config), run_dir / "config.yaml")
    hydra = {"hydra": {"run": {"dir": "${paths.log_dir}"}, "runtime": {"choices": choices or {}}}}
    OmegaConf.save(OmegaConf.create(hydra), run_dir / ".hydra" / "hydra.yaml")
    OmegaConf.save(OmegaConf.create([f"seed={config.get('seed')}"]), run_dir / ".hydra" / "overrides.yaml")
    return run_dir


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Two methods x two keep ratios x three seeds, numbered like a Hydra multirun (0..11)."""
    root = tmp_path / "multirun"
    job = 0
    for (score, keep), accs in ACCS.items():
        for seed, acc in enumerate(accs):
            config = {
                "seed": seed,
                "task_name": "prune",
                "pruning": {"keep_ratio": keep, "seed": seed},
                "kd": {"alpha": 0.5 if score == "el2n" else 0.0},
            }
            choices = {"pruning/score": score, "pruning/sampler": "topk", "model/net": "small_cnn"}
            metrics = {"test/acc": acc, "test/loss": 1.0 - acc, "pruning/kept_fraction": keep}
            make_run(root / str(job), metrics, config, choices)
            job += 1
    return root


def by_key(rows: list[Any]) -> dict[tuple[str, Any], tuple[float, float, int]]:
    return {(r.label, r.x): (r.mean, r.std, r.n) for r in rows}


def assert_stats(rows: list[Any], expected: dict[tuple[str, Any], tuple[float, float, int]]) -> None:
    got = by_key(rows)
    assert set(got) == set(expected)
    for key, (mean, std, n) in expected.items():
        assert got[key][0] == pytest.approx(mean, abs=1e-12), key
        assert got[key][1] == pytest.approx(std, abs=1e-12), key
        assert got[key][2] == n, key


def test_collect_runs_reads_metrics_config_and_choices(sweep: Path) -> None:
    runs = sm.collect_runs([sweep])
    assert len(runs) == 12
    first = next(r for r in runs if r["dir"] == sweep / "0")
    assert first["metrics"]["test/acc"] == 0.80
    assert first["config"]["pruning"]["keep_ratio"] == 0.3
    assert first["choices"]["pruning/score"] == "random"
    assert first["overrides"] == ["seed=0"]
    # overlapping dirs: each run is read once
    assert len(sm.collect_runs([sweep, sweep / "3"])) == 12


def test_summarize_groups_by_label_and_x(sweep: Path) -> None:
    rows = sm.summarize(sm.collect_runs([sweep]), "test/acc", "pruning.keep_ratio", LABEL)
    assert_stats(rows, EXPECTED)
    assert [(r.label, r.x) for r in rows] == sorted(EXPECTED)  # sorted by label, then x


def test_label_falls_back_to_dotted_config_key(sweep: Path) -> None:
    runs = sm.collect_runs([sweep])
    rows = sm.summarize(runs, "test/acc", "pruning.keep_ratio", ["pruning/score", "kd.alpha"])
    assert {r.label for r in rows} == {"el2n+0.5", "random+0"}


def test_single_run_has_zero_std(tmp_path: Path) -> None:
    make_run(tmp_path / "run", {"test/acc": 0.5}, {"pruning": {"keep_ratio": 1.0}}, {"pruning/score": "random"})
    rows = sm.summarize(sm.collect_runs([tmp_path]), "test/acc", "pruning.keep_ratio", ["pruning/score"])
    assert_stats(rows, {("random", 1.0): (0.5, 0.0, 1)})


def test_run_missing_metric_is_skipped_with_warning(sweep: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = make_run(
        sweep / "12",
        {"test/loss": 0.1},
        {"pruning": {"keep_ratio": 0.3}},
        {"pruning/score": "random", "pruning/sampler": "topk"},
    )
    nan = make_run(
        sweep / "13",
        {"test/acc": None},
        {"pruning": {"keep_ratio": 0.3}},
        {"pruning/score": "random", "pruning/sampler": "topk"},
    )
    with caplog.at_level(logging.WARNING):
        rows = sm.summarize(sm.collect_runs([sweep]), "test/acc", "pruning.keep_ratio", LABEL)
    assert_stats(rows, EXPECTED)  # unchanged: both extra runs were skipped
    assert str(bad) in caplog.text and "test/acc" in caplog.text
    assert str(nan) in caplog.text


def test_no_usable_run_is_an_error(sweep: Path) -> None:
    with pytest.raises(ValueError, match=r"test/ac'.*Metrics present.*test/acc"):
        sm.summarize(sm.collect_runs([sweep]), "test/ac", "pruning.keep_ratio", LABEL)


def test_write_summary_files(sweep: Path, tmp_path: Path) -> None:
    rows = sm.summarize(sm.collect_runs([sweep]), "test/acc", "pruning.keep_ratio", LABEL)
    out = tmp_path / "out"
    paths = sm.write_summary(rows, out, "test/acc", "pruning.keep_ratio", "+".join(LABEL))
    assert paths == {"md": out / "summary.md", "csv": out / "summary.csv", "png": out / "test_acc_vs_keep_ratio.png"}

    with paths["csv"].open() as f:
        records = list(csv.DictReader(f))
    assert list(records[0]) == ["label", "x", "mean", "std", "n"]
    got = {(r["label"], float(r["x"])): (float(r["mean"]), float(r["std"]), int(r["n"])) for r in records}
    assert [(r["label"], float(r["x"])) for r in records] == sorted(EXPECTED)
    assert set(got) == set(EXPECTED)
    for key, (mean, std, n) in EXPECTED.items():
        assert got[key] == (pytest.approx(mean, abs=1e-12), pytest.approx(std, abs=1e-12), n)

    md = paths["md"].read_text()
    assert "| pruning/score+pruning/sampler | keep_ratio=0.3 | keep_ratio=0.7 |" in md
    assert "| el2n+topk | 75.00 ± 5.00 (3) | 96.00 ± 0.00 (3) |" in md
    assert "| random+topk | 82.00 ± 2.00 (3) | 92.00 ± 2.65 (3) |" in md

    with Image.open(paths["png"]) as img:
        assert img.format == "PNG"
        assert img.size[0] > 300 and img.size[1] > 200
        img.verify()
    assert not list(out.glob("*.tmp"))  # atomic writes left no temp files


def test_non_accuracy_metric_is_raw_with_four_decimals(sweep: Path) -> None:
    rows = sm.summarize(sm.collect_runs([sweep]), "test/loss", "pruning.keep_ratio", LABEL)
    md = sm.markdown_table(rows, "test/loss", "pruning.keep_ratio")
    assert "| el2n+topk | 0.2500 ± 0.0500 (3) | 0.0400 ± 0.0000 (3) |" in md
    assert sm.plot_name("test/loss", "pruning.keep_ratio") == "test_loss_vs_keep_ratio.png"


def test_missing_cell_is_a_dash(tmp_path: Path) -> None:
    make_run(tmp_path / "a", {"test/acc": 0.5}, {"pruning": {"keep_ratio": 0.1}}, {"pruning/score": "a"})
    make_run(tmp_path / "b", {"test/acc": 0.6}, {"pruning": {"keep_ratio": 1}}, {"pruning/score": "b"})
    rows = sm.summarize(sm.collect_runs([tmp_path]), "test/acc", "pruning.keep_ratio", ["pruning/score"])
    md = sm.markdown_table(rows, "test/acc", "pruning.keep_ratio")
    assert "| a | 50.00 ± 0.00 (1) | – |" in md
    assert "| b | – | 60.00 ± 0.00 (1) |" in md


def test_main_writes_into_first_dir_and_prints_table(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sm.main([str(sweep)]) == 0
    printed = capsys.readouterr().out
    assert "| random+topk | 82.00 ± 2.00 (3) | 92.00 ± 2.65 (3) |" in printed
    for name in ("summary.md", "summary.csv", "test_acc_vs_keep_ratio.png"):
        assert (sweep / name).is_file()
        assert str(sweep / name) in printed


def test_main_options(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    argv = [str(sweep), "--metric", "test/loss", "--x", "pruning.seed", "--label", "model/net", "--out", str(out)]
    assert sm.main(argv) == 0
    records = list(csv.DictReader((out / "summary.csv").read_text().splitlines()))
    assert [(r["label"], r["x"], r["n"]) for r in records] == [("small_cnn", str(s), "4") for s in range(3)]
    assert (out / "test_loss_vs_seed.png").is_file()


def test_empty_dir_is_an_error_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty_sweep"
    (empty / "0" / ".hydra").mkdir(parents=True)  # a folder tree, but no metrics.json anywhere
    with pytest.raises(sm.NoRunsError, match="empty_sweep"):
        sm.collect_runs([empty])
    assert sm.main([str(empty)]) != 0
    assert str(empty) in capsys.readouterr().err
    assert not (empty / "summary.md").exists()


def test_missing_dir_is_an_error_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sm.main([str(tmp_path / "nope")]) != 0
    assert str(tmp_path / "nope") in capsys.readouterr().err


def test_best_over_a_key_picks_the_winner_per_x(sweep: Path, tmp_path: Path) -> None:
    runs = sm.collect_runs([sweep])
    best = sm.best_over(runs, "test/acc", "pruning.keep_ratio", ["pruning/sampler"], "pruning/score")
    got = {(row.label, row.x): (value, row.mean) for row, value in best}
    assert got[("topk", 0.3)][0] == "random" and got[("topk", 0.3)][1] == pytest.approx(0.82)
    assert got[("topk", 0.7)][0] == "el2n" and got[("topk", 0.7)][1] == pytest.approx(0.96)
    assert sm.main([str(sweep), "--out", str(tmp_path), "--best-over", "pruning/score"]) == 0
    table = (tmp_path / "best_score.md").read_text()
    assert "82.00 ± 2.00 (3), score=random" in table and "96.00 ± 0.00 (3), score=el2n" in table


def test_best_over_can_select_on_another_metric(sweep: Path) -> None:
    """Selecting on test/loss (lower acc wins there, as loss = 1 - acc and we take the max) reports the other score."""
    runs = sm.collect_runs([sweep])
    best = sm.best_over(runs, "test/acc", "pruning.keep_ratio", ["pruning/sampler"], "pruning/score", "test/loss")
    got = {row.x: (value, row.mean) for row, value in best}
    assert got[0.3] == ("el2n", pytest.approx(0.75)) and got[0.7] == ("random", pytest.approx(0.92))
    assert sm.main([str(sweep), "--best-over", "no.such.key"]) == 1


def test_path_labels_are_named_by_the_components_that_differ() -> None:
    paths = [f"/runs/kd/teachers/{name}/checkpoints/best.ckpt" for name in ("wide", "deep")]
    assert sm.short_paths([*paths, paths[0]]) == {paths[0]: "wide", paths[1]: "deep"}
    assert sm.short_paths(["a/x.ckpt", "a/b/x.ckpt"]) == {"a/x.ckpt": "x.ckpt", "a/b/x.ckpt": "b/x.ckpt"}
    assert sm.short_paths(["topk", "sims"]) == {"topk": "topk", "sims": "sims"}  # not paths: unchanged
    assert sm.short_paths(["/only/one.ckpt"]) == {"/only/one.ckpt": "/only/one.ckpt"}
    assert sm.short_paths(["none", *paths]) == {"none": "none", paths[0]: "wide", paths[1]: "deep"}  # mixed


def test_dict_labels_and_best_over_path_labels(tmp_path: Path) -> None:
    for i, (teacher, alpha, acc, val) in enumerate(
        [("a/x", 0.5, 0.6, 0.7), ("a/x", 0.9, 0.7, 0.6), ("b/x", 0.5, 0.5, 0.5), ("b/y", 0.9, 0.4, None)]
    ):
        metrics = {"test/acc": acc} | ({"val/acc": val} if val is not None else {})
        config = {"pruning": {"keep_ratio": 0.3}, "kd": {"alpha": alpha, "teacher": f"/r/{teacher}/best.ckpt"}}
        config["model"] = {"net": {"name": "cnn", "width": 8}}
        make_run(tmp_path / str(i), metrics, config, {})
    runs = sm.collect_runs([tmp_path])
    rows = sm.summarize(runs, "test/acc", "pruning.keep_ratio", ["model.net"])
    assert [r.label for r in rows] == ["{'name': 'cnn', 'width': 8}"]  # dict values are labels too
    best = sm.best_over(runs, "test/acc", "pruning.keep_ratio", ["kd.teacher"], "kd.alpha", "val/acc")
    assert [(r.label, r.mean, alpha) for r, alpha in best] == [("a/x", 0.6, "0.5"), ("b/x", 0.5, "0.5")]


def test_default_labels_runs_that_lack_a_key(sweep: Path, tmp_path: Path) -> None:
    make_run(tmp_path / "plain", {"test/acc": 0.5}, {"pruning": {"keep_ratio": 0.3}}, {"pruning/score": "random"})
    runs = sm.collect_runs([sweep, tmp_path / "plain"])
    without = by_key(sm.summarize(runs, "test/acc", "pruning.keep_ratio", ["pruning/score", "kd.alpha"]))
    assert without[("random+0", 0.3)][2] == 3  # the plain run lacks kd.alpha: skipped
    rows = sm.summarize(runs, "test/acc", "pruning.keep_ratio", ["pruning/score", "kd.alpha"], {"kd.alpha": 0.0})
    # 0.8, 0.82, 0.84 and the plain run 0.5
    assert by_key(rows)[("random+0", 0.3)] == (pytest.approx(0.74), pytest.approx(0.1608, abs=1e-4), 4)
    assert sm.parse_defaults(["kd.alpha=0", "model/net=cnn"]) == {"kd.alpha": 0.0, "model/net": "cnn"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        sm.parse_defaults(["kd.alpha"])

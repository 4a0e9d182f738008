"""biobench.results on fake run dirs (no training): grouping, statistics, registry directions, files, errors."""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf
from PIL import Image

from biobench.results import cli, report
from biobench.results import summary as sm
from biobench.results.runs import NoRunsError, collect_runs

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
    run_dir: Path,
    metrics: dict[str, Any] | None,
    config: dict[str, Any],
    choices: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
) -> Path:
    """A run folder as biobench-train writes it: metrics.json (unless None), status.json (if given), config.yaml,
    .hydra/{hydra,overrides}.yaml."""
    (run_dir / ".hydra").mkdir(parents=True)
    if metrics is not None:
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
    if status is not None:
        (run_dir / "status.json").write_text(json.dumps(status))
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
    runs = collect_runs([sweep])
    assert len(runs) == 12
    first = next(r for r in runs if r.dir == sweep / "0")
    assert first.status == "done"  # no status.json: an older run, done as it has metrics.json
    assert first.metrics["test/acc"] == 0.80
    assert first.config["pruning"]["keep_ratio"] == 0.3
    assert first.choices["pruning/score"] == "random"
    assert first.overrides == ["seed=0"]
    # overlapping dirs: each run is read once
    assert len(collect_runs([sweep, sweep / "3"])) == 12


def test_summarize_groups_by_label_and_x(sweep: Path) -> None:
    rows = sm.summarize(collect_runs([sweep]), "test/acc", "pruning.keep_ratio", LABEL)
    assert_stats(rows, EXPECTED)
    assert [(r.label, r.x) for r in rows] == sorted(EXPECTED)  # sorted by label, then x


def test_label_falls_back_to_dotted_config_key(sweep: Path) -> None:
    runs = collect_runs([sweep])
    rows = sm.summarize(runs, "test/acc", "pruning.keep_ratio", ["pruning/score", "kd.alpha"])
    assert {r.label for r in rows} == {"el2n+0.5", "random+0"}


def test_single_run_has_zero_std(tmp_path: Path) -> None:
    make_run(tmp_path / "run", {"test/acc": 0.5}, {"pruning": {"keep_ratio": 1.0}}, {"pruning/score": "random"})
    rows = sm.summarize(collect_runs([tmp_path]), "test/acc", "pruning.keep_ratio", ["pruning/score"])
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
        rows = sm.summarize(collect_runs([sweep]), "test/acc", "pruning.keep_ratio", LABEL)
    assert_stats(rows, EXPECTED)  # unchanged: both extra runs were skipped
    assert str(bad) in caplog.text and "test/acc" in caplog.text
    assert str(nan) in caplog.text


def test_no_usable_run_is_an_error(sweep: Path) -> None:
    with pytest.raises(ValueError, match=r"'test/ac'.*Metrics present.*test/acc"):
        sm.summarize(collect_runs([sweep]), "test/ac", "pruning.keep_ratio", LABEL)


def test_write_summary_files(sweep: Path, tmp_path: Path) -> None:
    rows = sm.summarize(collect_runs([sweep]), "test/acc", "pruning.keep_ratio", LABEL)
    out = tmp_path / "out"
    table = report.markdown_table(rows, "test/acc", "pruning.keep_ratio", "+".join(LABEL))
    paths = report.write_summary(rows, out, table, "test/acc", "pruning.keep_ratio", "+".join(LABEL))
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
    rows = sm.summarize(collect_runs([sweep]), "test/loss", "pruning.keep_ratio", LABEL)
    md = report.markdown_table(rows, "test/loss", "pruning.keep_ratio")
    assert "| el2n+topk | 0.2500 ± 0.0500 (3) | 0.0400 ± 0.0000 (3) |" in md
    assert report.plot_name("test/loss", "pruning.keep_ratio") == "test_loss_vs_keep_ratio.png"


def test_missing_cell_is_a_dash(tmp_path: Path) -> None:
    make_run(tmp_path / "a", {"test/acc": 0.5}, {"pruning": {"keep_ratio": 0.1}}, {"pruning/score": "a"})
    make_run(tmp_path / "b", {"test/acc": 0.6}, {"pruning": {"keep_ratio": 1}}, {"pruning/score": "b"})
    rows = sm.summarize(collect_runs([tmp_path]), "test/acc", "pruning.keep_ratio", ["pruning/score"])
    md = report.markdown_table(rows, "test/acc", "pruning.keep_ratio")
    assert "| a | 50.00 ± 0.00 (1) | – |" in md
    assert "| b | – | 60.00 ± 0.00 (1) |" in md


def test_main_writes_into_first_dir_and_prints_table(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([str(sweep)]) == 0
    printed = capsys.readouterr().out
    assert "| random+topk | 82.00 ± 2.00 (3) | 92.00 ± 2.65 (3) |" in printed
    for name in ("summary.md", "summary.csv", "test_acc_vs_keep_ratio.png"):
        assert (sweep / name).is_file()
        assert str(sweep / name) in printed


def test_main_options(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    argv = [str(sweep), "--metric", "test/loss", "--x", "pruning.seed", "--label", "model/net", "--out", str(out)]
    assert cli.main(argv) == 0
    records = list(csv.DictReader((out / "summary.csv").read_text().splitlines()))
    assert [(r["label"], r["x"], r["n"]) for r in records] == [("small_cnn", str(s), "4") for s in range(3)]
    assert (out / "test_loss_vs_seed.png").is_file()


def test_empty_dir_is_an_error_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty_sweep"
    (empty / "0" / ".hydra").mkdir(parents=True)  # a folder tree, but no metrics.json anywhere
    with pytest.raises(NoRunsError, match="empty_sweep"):
        collect_runs([empty])
    assert cli.main([str(empty)]) != 0
    assert str(empty) in capsys.readouterr().err
    assert not (empty / "summary.md").exists()


def test_missing_dir_is_an_error_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([str(tmp_path / "nope")]) != 0
    assert str(tmp_path / "nope") in capsys.readouterr().err


def test_best_over_a_key_picks_the_winner_per_x(sweep: Path, tmp_path: Path) -> None:
    runs = collect_runs([sweep])
    best = sm.best_over(runs, "test/acc", "pruning.keep_ratio", ["pruning/sampler"], "pruning/score")
    got = {(row.label, row.x): (value, row.mean) for row, value in best}
    assert got[("topk", 0.3)][0] == "random" and got[("topk", 0.3)][1] == pytest.approx(0.82)
    assert got[("topk", 0.7)][0] == "el2n" and got[("topk", 0.7)][1] == pytest.approx(0.96)
    assert cli.main([str(sweep), "--out", str(tmp_path), "--best-over", "pruning/score"]) == 0
    table = (tmp_path / "best_score.md").read_text()
    assert "82.00 ± 2.00 (3), score=random" in table and "96.00 ± 0.00 (3), score=el2n" in table


def test_best_over_can_select_on_another_metric(sweep: Path) -> None:
    """test/loss (= 1 - acc here) is a lower-is-better metric in the registry: the lowest loss wins."""
    runs = collect_runs([sweep])
    best = sm.best_over(runs, "test/acc", "pruning.keep_ratio", ["pruning/sampler"], "pruning/score", "test/loss")
    got = {row.x: (value, row.mean) for row, value in best}
    assert got[0.3] == ("random", pytest.approx(0.82)) and got[0.7] == ("el2n", pytest.approx(0.96))
    assert cli.main([str(sweep), "--best-over", "no.such.key"]) == 1


def test_best_over_a_min_metric_picks_the_lowest(tmp_path: Path) -> None:
    for i, (lr, eer) in enumerate([(0.1, 0.08), (0.1, 0.10), (0.01, 0.03), (0.01, 0.05), (0.001, 0.20)]):
        make_run(tmp_path / str(i), {"test/eer": eer}, {"data": {"image_size": 64}, "optim": {"lr": lr}})
    argv = [str(tmp_path), "--metric", "test/eer", "--x", "data.image_size", "--label", "optim.lr"]
    assert cli.main([*argv, "--best-over", "optim.lr"]) == 0
    best = (tmp_path / "best_lr.md").read_text()
    assert "lr chosen by the lowest mean test/eer" in best
    assert "| all | 4.00 ± 1.41 (2), lr=0.01 |" in best  # EER is shown in percent (registry scale 100)


def test_registry_units_in_tables(tmp_path: Path) -> None:
    make_run(tmp_path / "a", {"test/bpp": 0.41234, "test/eer": 0.0312}, {"model": {"lmbda": 0.01}}, {"model": "c"})
    rows = sm.summarize(collect_runs([tmp_path]), "test/bpp", "model.lmbda", ["model"])
    assert "## test/bpp (bpp) vs model.lmbda" in report.markdown_table(rows, "test/bpp", "model.lmbda")
    assert "| c | 0.4123 ± 0.0000 (1) |" in report.markdown_table(rows, "test/bpp", "model.lmbda")
    rows = sm.summarize(collect_runs([tmp_path]), "test/eer", "model.lmbda", ["model"])
    assert "| c | 3.12 ± 0.00 (1) |" in report.markdown_table(rows, "test/eer", "model.lmbda")


def test_default_label_is_the_method_preset(tmp_path: Path) -> None:
    for i, (method, acc) in enumerate([("aum_ccs", 0.6), ("aum_ccs", 0.8), ("random", 0.5)]):
        choices = {"method": method, "pruning/score": "aum", "pruning/sampler": "ccs"}
        make_run(tmp_path / str(i), {"test/acc": acc}, {"pruning": {"keep_ratio": 0.3}}, choices)
    assert cli.main([str(tmp_path)]) == 0
    md = (tmp_path / "summary.md").read_text()
    assert "| method | keep_ratio=0.3 |" in md and "| aum_ccs | 70.00 ± 14.14 (2) |" in md
    # one run without a preset (method: null, as Hydra records it): every run is labelled by score + sampler
    make_run(tmp_path / "3", {"test/acc": 0.4}, {"pruning": {"keep_ratio": 0.3}}, {"method": None})
    assert sm.default_label(collect_runs([tmp_path])) == ["pruning/score", "pruning/sampler"]


def test_where_keeps_runs_with_the_given_values(sweep: Path, tmp_path: Path) -> None:
    assert cli.main([str(sweep), "--out", str(tmp_path), "--where", "pruning/score=el2n,nope"]) == 0
    records = list(csv.DictReader((tmp_path / "summary.csv").read_text().splitlines()))
    assert {r["label"] for r in records} == {"el2n+topk"}
    assert cli.main([str(sweep), "--out", str(tmp_path), "--where", "pruning/score=nope"]) == 1


def _rate_sweep(root: Path) -> Path:
    """A codec-like sweep: two lambdas x two seeds per model, bpp and psnr per run."""
    points = {("hyper", 0.01): [(0.20, 30.0), (0.22, 30.4)], ("hyper", 0.1): [(0.60, 35.0), (0.64, 35.2)]}
    points |= {("factor", 0.01): [(0.25, 29.0), (0.25, 29.0)]}
    i = 0
    for (model, lmbda), values in points.items():
        for seed, (bpp, psnr) in enumerate(values):
            config = {"seed": seed, "model": {"lmbda": lmbda}}
            make_run(root / str(i), {"test/bpp": bpp, "test/psnr": psnr}, config, {"model": model})
            i += 1
    return root


def test_x_may_be_a_metric_rate_points(tmp_path: Path) -> None:
    runs = collect_runs([_rate_sweep(tmp_path / "rate")])
    assert sm.x_is_metric(runs, "test/bpp") and not sm.x_is_metric(runs, "model.lmbda")
    rows = sm.rate_points(runs, "test/psnr", "test/bpp", ["model"], group_by="model.lmbda")
    got = {(r.label, r.group): (r.x, r.x_std, r.mean, r.std, r.n) for r in rows}
    assert got[("hyper", 0.01)] == pytest.approx((0.21, math.sqrt(0.0002), 30.2, math.sqrt(0.08), 2))
    assert got[("hyper", 0.1)] == pytest.approx((0.62, math.sqrt(0.0008), 35.1, math.sqrt(0.02), 2))
    assert got[("factor", 0.01)] == pytest.approx((0.25, 0.0, 29.0, 0.0, 2))
    per_run = sm.rate_points(runs, "test/psnr", "test/bpp", ["model"])  # no group-by: one point per run
    assert [(r.label, r.x, r.n, r.group) for r in per_run][:3] == [
        ("factor", 0.25, 1, str(tmp_path / "rate" / "4")),
        ("factor", 0.25, 1, str(tmp_path / "rate" / "5")),
        ("hyper", 0.20, 1, str(tmp_path / "rate" / "0")),
    ]


def test_cli_rate_curve_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = _rate_sweep(tmp_path / "rate")
    argv = [str(sweep), "--metric", "test/psnr", "--x", "test/bpp", "--label", "model", "--group-by", "model.lmbda"]
    assert cli.main(argv) == 0
    md = (sweep / "summary.md").read_text()
    assert "## test/psnr (dB) vs test/bpp (bpp)" in md
    assert "| model | model.lmbda | test/bpp (bpp) | test/psnr (dB) | n |" in md
    assert "| hyper | 0.1 | 0.6200 ± 0.0283 | 35.1000 ± 0.1414 | 2 |" in md
    records = list(csv.DictReader((sweep / "summary.csv").read_text().splitlines()))
    assert list(records[0]) == ["label", "x", "mean", "std", "n", "x_std", "group"]
    assert float(records[0]["x"]) == pytest.approx(0.25) and records[0]["group"] == "0.01"
    with Image.open(sweep / "test_psnr_vs_bpp.png") as img:
        assert img.format == "PNG" and img.size[0] > 300
    assert cli.main([*argv, "--best-over", "seed"]) == 1
    assert "needs a config key as x" in capsys.readouterr().err


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
    runs = collect_runs([tmp_path])
    rows = sm.summarize(runs, "test/acc", "pruning.keep_ratio", ["model.net"])
    assert [r.label for r in rows] == ["{'name': 'cnn', 'width': 8}"]  # dict values are labels too
    best = sm.best_over(runs, "test/acc", "pruning.keep_ratio", ["kd.teacher"], "kd.alpha", "val/acc")
    assert [(r.label, r.mean, alpha) for r, alpha in best] == [("a/x", 0.6, "0.5"), ("b/x", 0.5, "0.5")]


def test_default_labels_runs_that_lack_a_key(sweep: Path, tmp_path: Path) -> None:
    make_run(tmp_path / "plain", {"test/acc": 0.5}, {"pruning": {"keep_ratio": 0.3}}, {"pruning/score": "random"})
    runs = collect_runs([sweep, tmp_path / "plain"])
    without = by_key(sm.summarize(runs, "test/acc", "pruning.keep_ratio", ["pruning/score", "kd.alpha"]))
    assert without[("random+0", 0.3)][2] == 3  # the plain run lacks kd.alpha: skipped
    rows = sm.summarize(runs, "test/acc", "pruning.keep_ratio", ["pruning/score", "kd.alpha"], {"kd.alpha": 0.0})
    # 0.8, 0.82, 0.84 and the plain run 0.5
    assert by_key(rows)[("random+0", 0.3)] == (pytest.approx(0.74), pytest.approx(0.1608, abs=1e-4), 4)
    assert cli.parse_defaults(["kd.alpha=0", "model/net=cnn"]) == {"kd.alpha": 0.0, "model/net": "cnn"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        cli.parse_defaults(["kd.alpha"])

"""A plain (non-editable) install carries the config tree: it composes and runs an experiment away from the
checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_non_editable_install_runs_an_experiment(tmp_path: Path) -> None:
    site = tmp_path / "site"
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--target",
        str(site),
    ]
    build = subprocess.run([*pip, str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    assert (site / "biobench" / "conf" / "train.yaml").is_file()

    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONWARNINGS": "ignore"}
    where = subprocess.run(
        [sys.executable, "-c", "import biobench; print(biobench.__file__, biobench.CONFIG_DIR)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    module, config_dir = where.stdout.split()
    assert Path(module).is_relative_to(site) and Path(config_dir) == site / "biobench" / "conf"

    run = subprocess.run(
        [sys.executable, "-m", "biobench.train", "experiment=prune_digits", "debug=fdr", "hydra.run.dir=run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "status.json").read_text())["status"] == "done"
    assert "test/acc" in json.loads((tmp_path / "run" / "metrics.json").read_text())

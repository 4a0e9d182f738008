"""A plain (non-editable) install carries the config tree: built from an sdist, as an index would serve it, it
composes and runs an experiment away from the checkout."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_python

ROOT = Path(__file__).resolve().parents[1]


def test_install_from_sdist_runs_an_experiment(tmp_path: Path) -> None:
    sdist = run_python("setup.py", "-q", "sdist", "--dist-dir", str(tmp_path / "dist"), cwd=ROOT)
    assert sdist.returncode == 0, sdist.stderr[-3000:]
    (tarball,) = (tmp_path / "dist").glob("biobench-*.tar.gz")
    site = tmp_path / "site"
    pip = ["-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(site)]
    build = run_python(*pip, str(tarball), cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-3000:]
    assert (site / "biobench" / "conf" / "train.yaml").is_file()

    env = {"PYTHONPATH": str(site)}
    where = run_python("-c", "import biobench; print(biobench.__file__, biobench.CONFIG_DIR)", cwd=tmp_path, env=env)
    module, config_dir = where.stdout.split()
    assert Path(module).is_relative_to(site) and Path(config_dir) == site / "biobench" / "conf"

    run = run_python(
        "-m", "biobench.train", "experiment=prune_digits", "debug=fdr", "hydra.run.dir=run", cwd=tmp_path, env=env
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "status.json").read_text())["status"] == "done"
    assert "test/acc" in json.loads((tmp_path / "run" / "metrics.json").read_text())

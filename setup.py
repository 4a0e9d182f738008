"""Ships the repository's Hydra config tree (conf/) inside the built package as biobench/conf (metadata lives in
pyproject.toml). Editable installs read conf/ in place, so there is one copy to edit."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithConfigs(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "biobench" / "conf"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(Path(__file__).parent / "conf", target, ignore=shutil.ignore_patterns("__pycache__"))


setup(cmdclass={"build_py": BuildPyWithConfigs})

"""biobench: config-driven experiments for biometric and image-recognition research."""

__version__ = "0.1.0"

from pathlib import Path

# The Hydra config tree (conf/ beside the package: biobench is installed editable from its checkout).
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")

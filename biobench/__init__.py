"""biobench: config-driven experiments for biometric and image-recognition research."""

__version__ = "0.1.0"

from pathlib import Path

# The Hydra config tree: conf/ at the repository root (an editable install, the layout users know), or the copy
# that ships inside the package (a plain `pip install .`, see setup.py). Own config dirs join through Hydra's search
# path: `hydra.searchpath=[file:///my/conf]` on the command line or in a config.
_PACKAGED_CONF = Path(__file__).resolve().parent / "conf"
CONFIG_DIR = str(_PACKAGED_CONF if _PACKAGED_CONF.is_dir() else Path(__file__).resolve().parent.parent / "conf")

"""Readers for fingerprint folders: which file is which finger and impression.

Layouts (``layout=`` argument, or ``auto``):

- ``fvc``: FVC naming, all images in one folder as ``<finger>_<impression>.<ext>`` (``101_2.tif``). The export of
  ``scripts/make_fingerprints.py`` uses it too; its ``metadata.csv`` then also supplies Henry classes.
- ``nested``: one folder per finger, ``<finger>/<impression>.<ext>``.
- ``sd302``: NIST SD302-style names anywhere below the root, ``<subject>_<device>_[<ppi>_]<capture>_<frgp>.<ext>``
  (``00002302_A_500_roll_01.png``): finger = subject and finger position (frgp), impression = device, ppi and
  capture. This is our reading of the SD302 naming; other schemes go through ``pattern=`` (a regular expression
  with named groups ``finger`` and ``impression``, matched against the path relative to the root).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biobench.data.fingerprints.orientation import HENRY_CLASSES
from biobench.data.sources import IMAGE_EXTENSIONS

_EXT = "|".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
PATTERNS = {
    "fvc": rf"^(?P<finger>[^/_]+)_(?P<impression>[^/_.]+)\.(?:{_EXT})$",
    "nested": rf"^(?P<finger>[^/]+)/(?P<impression>[^/]+)\.(?:{_EXT})$",
    "sd302": rf"^(?:.*/)?(?P<subject>\d+)_(?P<device>[A-Za-z0-9]+)_(?:(?P<ppi>\d+)_)?(?P<capture>[A-Za-z]+)_"
    rf"(?P<frgp>\d+)\.(?:{_EXT})$",
}


@dataclass(frozen=True)
class FingerprintRecords:
    """Image files with dense finger ids ``0..F-1`` (``finger_names`` holds the original names), the impression
    name of each file, and Henry classes where the folder's ``metadata.csv`` gives them (else ``None``)."""

    paths: list[Path]
    finger: np.ndarray
    finger_names: list[str]
    impression: list[str]
    henry: np.ndarray | None

    def __len__(self) -> int:
        return len(self.paths)


def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def _identify(rel: str, layout: str, regex: re.Pattern) -> tuple[str, str] | None:
    m = regex.match(rel)
    if m is None:
        return None
    if layout == "sd302":
        g = m.groupdict()
        return f"{g['subject']}_{g['frgp']}", "_".join(p for p in (g["device"], g["ppi"], g["capture"]) if p)
    return m.group("finger"), m.group("impression")


def _detect_layout(files: list[str]) -> str:
    for layout in ("fvc", "sd302", "nested"):  # most specific first
        regex = re.compile(PATTERNS[layout], re.IGNORECASE)
        if all(_identify(f, layout, regex) for f in files):
            return layout
    raise ValueError(
        f"Cannot tell the fingerprint layout of files such as {files[:3]}: expected FVC names "
        "'<finger>_<impression>.png', '<finger>/<impression>.png' folders or SD302-style names; "
        "set layout= or pattern= explicitly."
    )


def read_fingerprint_folder(root: str | Path, layout: str = "auto", pattern: str | None = None) -> FingerprintRecords:
    """List the fingerprint images below ``root`` and identify each one's finger and impression."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Fingerprint folder '{root}' does not exist or is not a folder.")
    files = sorted(
        (p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS),
        key=_natural_key,
    )
    if not files:
        raise ValueError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found below '{root}'.")
    if pattern is not None:
        layout = "custom"
        regex = re.compile(pattern)
        if not {"finger", "impression"} <= set(regex.groupindex):
            raise ValueError(f"Fingerprint pattern '{pattern}' needs named groups 'finger' and 'impression'.")
    else:
        layout = _detect_layout(files) if layout == "auto" else layout
        if layout not in PATTERNS:
            raise ValueError(f"Unknown fingerprint layout '{layout}'; choose auto, {', '.join(PATTERNS)}.")
        regex = re.compile(PATTERNS[layout], re.IGNORECASE)
    ids = [_identify(f, layout, regex) for f in files]
    bad = [f for f, i in zip(files, ids, strict=True) if i is None]
    if bad:
        raise ValueError(f"{len(bad)} files below '{root}' do not follow the '{layout}' layout, e.g. {bad[:3]}.")
    names = sorted({f for f, _ in ids}, key=_natural_key)
    dense = {name: k for k, name in enumerate(names)}
    return FingerprintRecords(
        paths=[root / f for f in files],
        finger=np.array([dense[f] for f, _ in ids], dtype=np.int64),
        finger_names=names,
        impression=[i for _, i in ids],
        henry=_henry_labels(root, files),
    )


def _henry_labels(root: Path, files: list[str]) -> np.ndarray | None:
    """Henry classes from ``<root>/metadata.csv`` (columns ``file``, ``henry``) when it covers every file."""
    path = root / "metadata.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        rows = {r["file"]: r.get("henry") for r in csv.DictReader(f)}
    if not all(rows.get(name) not in (None, "") for name in files):
        return None
    try:
        labels = np.array([int(rows[name]) for name in files], dtype=np.int64)
    except ValueError as err:
        raise ValueError(
            f"{path}: the 'henry' column must hold class indices 0-{len(HENRY_CLASSES) - 1} ({err})."
        ) from err
    if labels.min() < 0 or labels.max() >= len(HENRY_CLASSES):
        raise ValueError(f"{path}: henry labels must lie in [0, {len(HENRY_CLASSES)}).")
    return labels

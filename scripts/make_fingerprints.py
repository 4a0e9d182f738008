"""Export a synthetic fingerprint set: N fingers x M impressions in FVC naming, with metadata and minutiae.

Writes ``<out>/<finger>_<impression>.png`` (1-based), ``<finger>_<impression>.minutiae.csv`` and ``metadata.csv``
(finger, impression, Henry class, ridge period, minutiae count, every appearance attribute). The folder reads
back with ``data=fingerprints data.data_dir=<out>`` (Henry labels included).

    python scripts/make_fingerprints.py outputs/fingerprints/set1 --fingers 100 --impressions 8 --workers 2
"""

from __future__ import annotations

import argparse
import json

from biobench.data.fingerprints.export import export_fingerprints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="output folder (must not hold an exported set unless --overwrite)")
    parser.add_argument("--fingers", type=int, default=100)
    parser.add_argument("--impressions", type=int, default=8)
    parser.add_argument("--first-finger", type=int, default=0, help="generator finger id of the first finger")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (fixes every master)")
    parser.add_argument("--size", type=int, default=320, help="image size in pixels (500 dpi)")
    parser.add_argument("--impression-ranges", default="{}", help='JSON overrides, e.g. \'{"devices": ["optical"]}\'')
    parser.add_argument("--workers", type=int, default=2, help="processes (0 = this process)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    generator = {"seed": args.seed, "size": args.size, "impression": json.loads(args.impression_ranges)}
    metadata = export_fingerprints(
        args.out, generator, args.fingers, args.impressions, args.first_finger, args.workers, args.overwrite
    )
    print(f"wrote {args.fingers * args.impressions} impressions; labels in {metadata}")


if __name__ == "__main__":
    main()

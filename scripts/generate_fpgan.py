"""Export a synthetic training set from a trained FPGAN-Control checkpoint: N identities x M impressions.

Writes ``<out>/<identity>_<impression>.png`` (1-based, FVC naming), ``metadata.csv``, ``export.json`` and
``grid.svg`` (biobench/models/fpgan_export.py). The folder reads back as real prints do:
``data=fingerprints data.data_dir=<out>``, e.g. to train an embedder on generated data only (docs/fpgan.md).

    python scripts/generate_fpgan.py <fpgan run>/checkpoints/best.ckpt outputs/fpgan_sets/set1 \\
        --identities 1000 --impressions 8 --seed 0 [--psi-id 0.7] [--shared-appearance]

With a controller (experiment=fpgan_controller, fitted for this generator), each ``--appearance`` request is one
impression column, the same appearance for every identity:

    python scripts/generate_fpgan.py <GAN ckpt> <out> --identities 100 \\
        --controller <controller run>/checkpoints/best.ckpt \\
        --appearance condition=wet,device=capacitive condition=dry,device=optical
"""

from __future__ import annotations

import argparse

import torch

from biobench.models.fpgan_controller import load_controller, parse_request
from biobench.models.fpgan_export import ExportSettings, RequestedAppearance, export_generated, load_generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="an FPGAN-Control run's checkpoint (its EMA generator is used)")
    parser.add_argument("out", help="output folder (must not hold an exported set unless --overwrite)")
    parser.add_argument("--identities", type=int, default=100)
    parser.add_argument("--impressions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="fixes every latent and noise map")
    parser.add_argument("--psi-id", type=float, default=1.0, help="truncation of the identity part of w (1 = none)")
    parser.add_argument("--psi-app", type=float, default=1.0, help="truncation of the appearance part of w")
    parser.add_argument("--shared-appearance", action="store_true",
                        help="impression j of every identity gets the same appearance latent")  # fmt: skip
    parser.add_argument("--controller", help="an FPGAN-Control controller checkpoint fitted for this generator")
    parser.add_argument("--appearance", nargs="+", default=[], metavar="ATTR=VALUE,...",
                        help="with --controller: a request per impression column (replaces --impressions)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    if bool(args.controller) != bool(args.appearance):
        parser.error("--controller and --appearance go together")
    g = load_generator(args.checkpoint).to(args.device)
    requested, impressions = None, args.impressions
    if args.controller:
        controller = load_controller(args.controller, gan=args.checkpoint)
        with torch.no_grad():
            w_app = controller(controller.indices([parse_request(a) for a in args.appearance]))
        requested, impressions = RequestedAppearance(w_app, tuple(args.appearance)), len(args.appearance)
    settings = ExportSettings(args.seed, args.psi_id, args.psi_app, args.shared_appearance)
    metadata = export_generated(g, args.out, args.identities, impressions, settings, args.batch_size,
                                source=args.checkpoint, overwrite=args.overwrite, requested=requested)  # fmt: skip
    print(f"wrote {args.identities * impressions} prints; labels in {metadata}")


if __name__ == "__main__":
    main()

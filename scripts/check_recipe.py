"""Hold the project's classifier recipe against the plain-PyTorch yardstick (``ref_cifar.py``), side by side.

For every (keep ratio, epochs) pair, trains ``experiment=prune_folder`` (random pruning, in-process through
``biobench.train``) and runs the yardstick as a subprocess on the same ImageFolder data, seed, net width and epochs,
then prints both test accuracies and their difference. Exits 1 when any difference (yardstick - ours) exceeds
``--tolerance`` points, 0 otherwise (also when the yardstick script is absent: it says so and skips).

The project carves a validation part (``data.val_fraction``, 10 %) from the training images and the yardstick does
not, so at the same keep ratio ours trains on 10 % fewer images; in these short runs that alone costs the yardstick
about 5 points at keep 0.3 (docs/pruning.md, Training recipe). ``--match images`` (the default) therefore runs the
yardstick at ``keep * (1 - val_fraction)`` of its images, the number ours trains on; ``--match keep`` runs it at the
nominal keep ratio. ``--net resnet9`` (the default) is the yardstick's own architecture; ``--net resnet8`` compares
the project's smaller net.

  python scripts/check_recipe.py --data /tmp/c10/cifar10-mini                      # keep 0.3, 1.0 x 10, 15 epochs
  python scripts/check_recipe.py --data DIR --keep 0.3 --epochs 10 --net resnet8 -- data.val_fraction=0.05
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "ref_cifar.py"
REF_LINE = re.compile(r"test_acc=([0-9.]+)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="ImageFolder dataset (<data>/train/<class>/..., <data>/test/...)")
    parser.add_argument("--keep", type=float, nargs="+", default=[0.3, 1.0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[10, 15])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--net", default="resnet9", help="model/net config of ours (resnet9: the yardstick's shape)")
    parser.add_argument("--tolerance", type=float, default=1.5, help="largest allowed yardstick - ours, in points")
    parser.add_argument(
        "--match",
        choices=("images", "keep"),
        default="images",
        help="yardstick keep ratio: the number of images ours trains on, or the nominal keep",
    )
    parser.add_argument("--val-fraction", type=float, default=0.1, help="data.val_fraction of ours")
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="path of ref_cifar.py")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the yardstick")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for ours (after --)")
    return parser.parse_args(argv)


def run_ours(args: argparse.Namespace, keep: float, epochs: int, out: Path) -> float:
    """Test accuracy of ``experiment=prune_folder`` with random pruning at ``keep`` for ``epochs``."""
    from biobench.train import train
    from biobench.utils.compose import compose_run_config

    overrides = [
        "experiment=prune_folder",
        f"data.data_dir={args.data}",
        f"data.val_fraction={args.val_fraction}",
        f"model/net={args.net}",
        f"model.net.width={args.width}",
        f"trainer.max_epochs={epochs}",
        f"pruning.keep_ratio={keep}",
        f"seed={args.seed}",
        "logger=csv",
        "callbacks.progress_bar.refresh_rate=0",
        *args.overrides,
    ]
    cfg = compose_run_config("train", overrides, out)
    return float(train(cfg)["test/acc"])


def run_reference(args: argparse.Namespace, keep: float, epochs: int) -> float:
    """Test accuracy printed by the yardstick."""
    cmd = [args.python, str(args.reference), str(args.data), "--keep", f"{keep:.6g}", "--epochs", str(epochs),
           "--width", str(args.width), "--seed", str(args.seed)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    match = REF_LINE.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return float(match.group(1))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.reference.is_file():
        print(f"check_recipe: yardstick {args.reference} not found; skipped (give its path with --reference).")
        return 0
    if not (Path(args.data) / "train").is_dir():
        print(f"check_recipe: {args.data} has no train/ folder (an ImageFolder dataset is needed).", file=sys.stderr)
        return 2
    rows, worst = [], float("-inf")
    with tempfile.TemporaryDirectory(prefix="check_recipe_") as tmp:
        for epochs in args.epochs:
            for keep in args.keep:
                ref_keep = keep * (1 - args.val_fraction) if args.match == "images" else keep
                ours = run_ours(args, keep, epochs, Path(tmp) / f"k{keep}_e{epochs}") * 100
                ref = run_reference(args, ref_keep, epochs) * 100
                rows.append((keep, ref_keep, epochs, ours, ref, ref - ours))
                worst = max(worst, ref - ours)
                print(f"check_recipe: keep {keep} epochs {epochs}: ours {ours:.2f} %, yardstick {ref:.2f} %")
    extra = " ".join(args.overrides)
    print(
        f"\nours: experiment=prune_folder model/net={args.net} (width {args.width}, data.val_fraction "
        f"{args.val_fraction}) {extra}; yardstick: {args.reference.name}; seed {args.seed}\n"
    )
    print("| keep | yardstick keep | epochs | ours test acc % | yardstick test acc % | yardstick - ours |")
    print("|---|---|---|---|---|---|")
    for keep, ref_keep, epochs, ours, ref, diff in rows:
        print(f"| {keep} | {ref_keep:.3g} | {epochs} | {ours:.2f} | {ref:.2f} | {diff:+.2f} |")
    ok = worst <= args.tolerance
    print(f"\n{'OK' if ok else 'FAIL'}: largest gap {worst:+.2f} points (tolerance {args.tolerance}).")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

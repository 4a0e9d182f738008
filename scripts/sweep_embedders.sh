#!/usr/bin/env bash
# The embedder table of docs/embedder.md: ViT, ViT + minutiae, CNN, CNN + minutiae (seed by seed, on the default
# and the hard impression preset), then score-level fusion of each seed's ViT and CNN, and Bozorth3 on each preset.
#   bash scripts/sweep_embedders.sh [out dir] [seeds] [presets]      (defaults: outputs/results/embedder, "0", "default hard")
#   ONLY="fp_vit fp_cnn" bash scripts/sweep_embedders.sh ...          (a subset of the four trainings)
#   EVALS=0 ...                                                        (no fusion / Bozorth3 evaluation)
# Every run goes to <out>/<preset>/seed<k>/<experiment>; skip_done=true re-uses a finished run of the same config,
# so a killed sweep resumes at the first unfinished run. One training is 15-40 min on 2 cores (docs/embedder.md).
set -euo pipefail
OUT=${1:-outputs/results/embedder}
SEEDS=${2:-"0"}
PRESETS=${3:-"default hard"}
BIN=${BIN:-.venv/bin}
ONLY=${ONLY:-"fp_vit fp_vit_minutiae fp_cnn fp_cnn_minutiae"}
EVALS=${EVALS:-1}
QUIET="callbacks.progress_bar.refresh_rate=0"
for preset in $PRESETS; do
  for seed in $SEEDS; do
    dir="$OUT/$preset/seed$seed"
    for exp in $ONLY; do
      "$BIN/biobench-train" experiment="$exp" seed="$seed" data.generator.preset="$preset" skip_done=true $QUIET \
        hydra.run.dir="$dir/$exp"
    done
    if [ "$EVALS" = 1 ] && [ -f "$dir/fp_vit/checkpoints/best.ckpt" ] && [ -f "$dir/fp_cnn/checkpoints/best.ckpt" ]; then
      "$BIN/biobench-eval" experiment=fp_fusion seed="$seed" data.generator.preset="$preset" $QUIET \
        recognizer.first.path="$dir/fp_vit/checkpoints/best.ckpt" \
        recognizer.second.path="$dir/fp_cnn/checkpoints/best.ckpt" hydra.run.dir="$dir/fp_fusion"
    fi
  done
  [ "$EVALS" = 1 ] || continue
  "$BIN/biobench-eval" experiment=verify_bozorth3 data.generator.preset="$preset" data.n_fingers=400 data.impressions=8 \
    $QUIET hydra.run.dir="$OUT/$preset/bozorth3"
done

#!/usr/bin/env bash
# Pruning results on scikit-learn's digits: the study methods (conf/method/) x keep ratios x 3 seeds as one
# multirun, then a summary. Usage: bash scripts/sweep_pruning_digits.sh [out dir]   (about 20-30 min on 2 CPU cores)
set -euo pipefail
OUT=${1:-outputs/results/pruning_digits}
BIN=${BIN:-.venv/bin}
source "$(dirname "$0")/pruning_methods.sh"
$BIN/biobench-train -m experiment=prune_digits method="$PRUNING_METHODS" pruning.keep_ratio=0.1,0.3,0.5,0.7 seed=0,1,2 \
  callbacks.progress_bar.refresh_rate=0 hydra.sweep.dir="$OUT"
$BIN/biobench-summarize "$OUT" --out "$OUT"

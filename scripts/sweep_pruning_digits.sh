#!/usr/bin/env bash
# Pruning results on scikit-learn's digits: scores x samplers x keep ratios x 3 seeds, then a summary.
# Usage: bash scripts/sweep_pruning_digits.sh [out dir]   (about 20-30 min on 2 CPU cores)
set -euo pipefail
OUT=${1:-outputs/results/pruning_digits}
COMMON=(experiment=prune_digits pruning.keep_ratio=0.1,0.3,0.5,0.7 seed=0,1,2 callbacks.progress_bar.refresh_rate=0)
BIN=${BIN:-.venv/bin}
$BIN/biobench-train -m "${COMMON[@]}" pruning/score=random pruning/sampler=topk hydra.sweep.dir="$OUT/random"
$BIN/biobench-train -m "${COMMON[@]}" pruning/score=el2n,forgetting,aum,sim pruning/sampler=topk,sims \
  hydra.sweep.dir="$OUT/scores"
$BIN/biobench-train -m "${COMMON[@]}" pruning/score=aum pruning/sampler=ccs pruning.sampler.beta=0.1 \
  hydra.sweep.dir="$OUT/ccs"
$BIN/python scripts/summarize.py "$OUT" --out "$OUT"

#!/usr/bin/env bash
# The learned-codec curves of docs/ipr.md: one IPR-codec experiment trained and tested at several rates (lmbda),
# with and without the IPR term (beta), each run into <out>/beta<b>/lmbda<l>, so that
#   python scripts/rate_recognition.py ... --learned <out>/beta0 <out>/beta<b>
# draws one curve per beta next to the baselines.
#   bash scripts/sweep_ipr.sh <experiment> <out dir> "<lmbdas>" "<betas>" [overrides ...]
#   bash scripts/sweep_ipr.sh ipr_cifar outputs/results/ipr/cifar "0.0018 0.0067 0.025" "0 10" \
#       data.data_dir=outputs/data/cifar10-mini recognizer.path=<teacher run>/checkpoints/best.ckpt
# skip_done=true re-uses a finished run of the same config, so a killed sweep resumes at the first unfinished run.
set -euo pipefail
EXP=$1
OUT=$2
LMBDAS=$3
BETAS=$4
shift 4
BIN=${BIN:-.venv/bin}
for beta in $BETAS; do
  for lmbda in $LMBDAS; do
    "$BIN/biobench-train" experiment="$EXP" model.loss.lmbda="$lmbda" model.ipr.weight="$beta" skip_done=true \
      callbacks.progress_bar.refresh_rate=0 "$@" hydra.run.dir="$OUT/beta$beta/lmbda$lmbda"
  done
done

#!/usr/bin/env bash
# Tables and plots of docs/kd.md from the runs of sweep_kd_cifar_subset.sh (and, for the methods without KD, of
# sweep_pruning_cifar_subset.sh when its runs exist). Usage:
#   bash scripts/summarize_kd_cifar_subset.sh [kd out dir] [pruning out dir]
set -euo pipefail
shopt -s nullglob  # a study not run (yet) is left out
OUT=${1:-outputs/results/kd_cifar10_mini}
PRUNING=${2:-outputs/results/pruning_cifar10_mini}
PY=${BIN:-.venv/bin}/python
SUMMARIZE=(env PYTHONPATH="$(dirname "$0")/.." "$PY" "$(dirname "$0")/summarize.py")
# teachers' own accuracy on the full data
"${SUMMARIZE[@]}" "$OUT/teachers" --label model/net,model.net.width --out "$OUT/summary_teachers"
# alpha study: random + KD per keep ratio, and the alpha that wins on validation accuracy
"${SUMMARIZE[@]}" "$OUT"/seed*/alpha --label model.alpha --best-over model.alpha --select-metric val/acc \
  --out "$OUT/summary_alpha"
# random + KD vs the best pruning score (AUM + CCS) with and without KD
"${SUMMARIZE[@]}" "$OUT"/seed*/alpha "$OUT"/seed*/ccs "$PRUNING"/seed*/ccs --label pruning/score,pruning/sampler,model.alpha \
  --default model.alpha=0 --out "$OUT/summary_methods"
# teacher-size study at keep 0.3 (alpha 0.9); the student-sized teacher comes from the alpha study
"${SUMMARIZE[@]}" "$OUT"/seed*/teacher_size "$OUT"/seed*/alpha --label model.teacher_ckpt,model.alpha \
  --out "$OUT/summary_teacher_size"

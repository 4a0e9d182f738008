#!/usr/bin/env bash
# Tables and plots of docs/kd.md from the runs of sweep_kd_cifar_subset.sh (and, for the methods without KD, of
# sweep_pruning_cifar_subset.sh when its runs exist). Usage:
#   bash scripts/summarize_kd_cifar_subset.sh [kd out dir] [pruning out dir]
set -euo pipefail
shopt -s nullglob
OUT=${1:-outputs/results/kd_cifar10_mini}
PRUNING=${2:-outputs/results/pruning_cifar10_mini}
SUMMARIZE=${BIN:-.venv/bin}/biobench-summarize
# summary NAME [run dirs ...] -- [biobench-summarize options]: writes $OUT/summary_NAME; skipped when no run dir exists
summary() {
  local name=$1 dirs=()
  shift
  while [ "$1" != "--" ]; do [ -d "$1" ] && dirs+=("$1"); shift; done
  shift
  if [ ${#dirs[@]} -eq 0 ]; then echo "summary_$name: no runs yet, skipped"; return; fi
  "$SUMMARIZE" "${dirs[@]}" "$@" --out "$OUT/summary_$name"
}
# teachers' own accuracy on the full data
summary teachers "$OUT/teachers" -- --label model/net,model.net.width
# alpha study: random + KD per keep ratio (alpha 0 = the pruning study's random runs), and the alpha that wins on
# validation accuracy
summary alpha "$OUT"/seed*/alpha "$PRUNING"/seed*/epochs -- --label model.alpha --default model.alpha=0 \
  --where method=random --best-over model.alpha --select-metric val/acc
# random + KD vs the best pruning method (aum_ccs) with and without KD (the pruning study's runs, epoch budget)
summary methods "$OUT"/seed*/alpha "$OUT"/seed*/ccs "$PRUNING"/seed*/epochs -- \
  --label method,model.alpha --default model.alpha=0 --where method=random,aum_ccs
# teacher-size study at keep 0.3 (alpha 0.9); the student-sized teacher comes from the alpha study
summary teacher_size "$OUT"/seed*/teacher_size "$OUT"/seed*/alpha -- --label model.teacher_ckpt,model.alpha \
  --where pruning.keep_ratio=0.3

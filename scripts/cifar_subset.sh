# Shared set-up of the CIFAR-10-subset sweeps (sourced): arguments [out dir] [seeds] [epochs] -> OUT, SEEDS,
# EPOCHS (default 10), BIN, PRUNING_METHODS (the conf/method/ presets of the pruning study), DATA (the subset
# extracted from ../shared/data/cifar10-mini.tar once) and run_chunk (a resumable multirun).
set -euo pipefail
OUT=${1:-$DEFAULT_OUT}
SEEDS=${2:-"0 1 2"}
EPOCHS=${3:-10}
BIN=${BIN:-.venv/bin}
source "$(dirname "${BASH_SOURCE[0]}")/pruning_methods.sh"
DATA=outputs/data/cifar10-mini
if [ ! -d "$DATA" ]; then mkdir -p outputs/data && tar -xf ../shared/data/cifar10-mini.tar -C outputs/data; fi
# run_chunk DIR OVERRIDES...: one multirun into DIR, skipped when an earlier call completed it (DIR/.complete) or
# another live call of a sweep script is running it (DIR/.running holds its PID): a killed sweep resumes where it
# stopped, and a second call of the same script (e.g. with OMP_NUM_THREADS=1 on each of two cores) takes the chunks
# the first has not started. Inside a chunk, skip_done=true skips the jobs a killed call finished.
run_chunk() {
  local dir=$1
  shift
  if [ -f "$dir/.complete" ]; then echo "$dir: complete, skipped"; return; fi
  mkdir -p "$dir"
  if [ -f "$dir/.running" ] && kill -0 "$(cat "$dir/.running")" 2>/dev/null; then
    echo "$dir: running in process $(cat "$dir/.running"), skipped"
    return
  fi
  echo $$ > "$dir/.running"
  "$BIN/biobench-train" -m "$@" skip_done=true hydra.sweep.dir="$dir"
  touch "$dir/.complete"
  rm -f "$dir/.running"
}

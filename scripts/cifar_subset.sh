# Shared set-up of the CIFAR-10-subset sweeps (sourced): arguments [out dir] [seeds] [epochs] -> OUT, SEEDS,
# EPOCHS (default 10), BIN, PRUNING_METHODS (the conf/method/ presets of the pruning study) and DATA (the subset
# extracted from ../shared/data/cifar10-mini.tar once).
set -euo pipefail
OUT=${1:-$DEFAULT_OUT}
SEEDS=${2:-"0 1 2"}
EPOCHS=${3:-10}
BIN=${BIN:-.venv/bin}
source "$(dirname "${BASH_SOURCE[0]}")/pruning_methods.sh"
DATA=outputs/data/cifar10-mini
if [ ! -d "$DATA" ]; then mkdir -p outputs/data && tar -xf ../shared/data/cifar10-mini.tar -C outputs/data; fi

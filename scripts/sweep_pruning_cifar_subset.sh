#!/usr/bin/env bash
# Pruning results on the real CIFAR-10 subset (../shared/data/cifar10-mini.tar, 9,000 train / 1,000 val / 2,000
# test images) with a ResNet-9 (docs/pruning.md, Training recipe): the study methods (conf/method/) x keep ratios
# 0.1-0.7 under the epoch budget for every seed first, then keep 0.1 / 0.3 under the step budget
# (pruning.budget=steps) for the methods in STEP_METHODS (default: random, the best classic method, SIMS with AUM
# and with SIM; every step-budget run costs a full-data run); one resumable multirun (run_chunk, cifar_subset.sh)
# per seed, budget and keep ratio; then a summary. Usage:
#   bash scripts/sweep_pruning_cifar_subset.sh [out dir] [seeds] [epochs]     (defaults: outputs/results/..., "0 1 2", 10)
DEFAULT_OUT=outputs/results/pruning_cifar10_mini
source "$(dirname "$0")/cifar_subset.sh"
STEP_METHODS=${STEP_METHODS:-random,aum_ccs,aum_sims,sim_sims}
COMMON=(experiment=prune_folder "data.data_dir=$PWD/$DATA" "trainer.max_epochs=$EPOCHS"
        callbacks.progress_bar.refresh_rate=0)
for BUDGET in epochs steps; do
  if [ "$BUDGET" = epochs ]; then KEEPS="0.1 0.3 0.5 0.7" METHODS=$PRUNING_METHODS
  else KEEPS="0.1 0.3" METHODS=$STEP_METHODS; fi
  for SEED in $SEEDS; do
    for KEEP in $KEEPS; do
      run_chunk "$OUT/seed$SEED/$BUDGET/keep$KEEP" "${COMMON[@]}" method="$METHODS" seed="$SEED" \
        pruning.keep_ratio="$KEEP" pruning.budget="$BUDGET"
    done
  done
done
$BIN/biobench-summarize "$OUT" --label method,pruning.budget --out "$OUT"

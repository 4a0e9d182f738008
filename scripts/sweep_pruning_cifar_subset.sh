#!/usr/bin/env bash
# Pruning results on the real CIFAR-10 subset (../shared/data/cifar10-mini.tar, 9,000 train / 1,000 val / 2,000
# test images) with a ResNet-9 (docs/pruning.md, Training recipe): the study methods (conf/method/) x keep ratios
# 0.1-0.7 under the epoch budget, and at keep 0.1 / 0.3 under the step budget (pruning.budget=steps); one multirun
# per seed and budget (so every finished seed covers every method), then a summary. Usage:
#   bash scripts/sweep_pruning_cifar_subset.sh [out dir] [seeds] [epochs]     (defaults: outputs/results/..., "0 1 2", 10)
DEFAULT_OUT=outputs/results/pruning_cifar10_mini
source "$(dirname "$0")/cifar_subset.sh"
for SEED in $SEEDS; do
  $BIN/biobench-train -m experiment=prune_folder method="$PRUNING_METHODS" "data.data_dir=$PWD/$DATA" \
    "trainer.max_epochs=$EPOCHS" seed="$SEED" pruning.keep_ratio=0.1,0.3,0.5,0.7 \
    callbacks.progress_bar.refresh_rate=0 hydra.sweep.dir="$OUT/seed$SEED/epochs"
  $BIN/biobench-train -m experiment=prune_folder method="$PRUNING_METHODS" "data.data_dir=$PWD/$DATA" \
    "trainer.max_epochs=$EPOCHS" seed="$SEED" pruning.keep_ratio=0.1,0.3 pruning.budget=steps \
    callbacks.progress_bar.refresh_rate=0 hydra.sweep.dir="$OUT/seed$SEED/steps"
  $BIN/biobench-summarize "$OUT" --label method,pruning.budget --out "$OUT"
done

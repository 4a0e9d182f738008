#!/usr/bin/env bash
# Pruning results on the real CIFAR-10 subset (../shared/data/cifar10-mini.tar, 9,000 train / 1,000 val / 2,000
# test images) with a ResNet-8: the methods of docs/pruning.md x keep ratios 0.1-0.7, one seed at a time (so
# every finished seed covers every method), then a summary. Usage:
#   bash scripts/sweep_pruning_cifar_subset.sh [out dir] [seeds] [epochs]     (defaults: outputs/results/..., "0 1 2", 10)
DEFAULT_OUT=outputs/results/pruning_cifar10_mini
source "$(dirname "$0")/cifar_subset.sh"
for SEED in $SEEDS; do
  COMMON=(experiment=prune_folder "data.data_dir=$PWD/$DATA" model/net=resnet8 "trainer.max_epochs=$EPOCHS"
          seed="$SEED" pruning.keep_ratio=0.1,0.3,0.5,0.7 callbacks.progress_bar.refresh_rate=0)
  $BIN/biobench-train -m "${COMMON[@]}" pruning/score=random pruning/sampler=topk hydra.sweep.dir="$OUT/seed$SEED/random"
  $BIN/biobench-train -m "${COMMON[@]}" pruning/score=el2n,forgetting,aum,sim pruning/sampler=topk,sims \
    hydra.sweep.dir="$OUT/seed$SEED/scores"
  $BIN/biobench-train -m "${COMMON[@]}" pruning/score=aum pruning/sampler=ccs pruning.sampler.beta=0.1 \
    hydra.sweep.dir="$OUT/seed$SEED/ccs"
  $BIN/python scripts/summarize.py "$OUT" --out "$OUT"
done

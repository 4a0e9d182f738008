#!/usr/bin/env bash
# KD results on the real CIFAR-10 subset (../shared/data/cifar10-mini.tar) with a ResNet-9 student (docs/kd.md):
# teachers of four sizes on the full data, then per seed: random + KD (alpha study) at keep 0.1-0.7, the best
# classic method of docs/pruning.md (aum_ccs) with KD, and the teacher-size study at keep 0.3; then a summary. Usage:
#   bash scripts/sweep_kd_cifar_subset.sh [out dir] [seeds] [epochs]     (defaults: outputs/results/..., "0 1 2", 10)
DEFAULT_OUT=outputs/results/kd_cifar10_mini
source "$(dirname "$0")/cifar_subset.sh"
TEACHERS_DIR=$(realpath -m "$OUT/teachers")
COMMON=("data.data_dir=$PWD/$DATA" "trainer.max_epochs=$EPOCHS" callbacks.progress_bar.refresh_rate=0)
declare -A TEACHERS=([narrow]="model.net.width=8" [same]="model.net.width=16" [wide]="model.net.width=32"
                     [deep]="model/net=resnet20")
for NAME in "${!TEACHERS[@]}"; do
  if [ ! -f "$TEACHERS_DIR/$NAME/checkpoints/best.ckpt" ]; then
    $BIN/biobench-train experiment=teacher_folder "${COMMON[@]}" ${TEACHERS[$NAME]} seed=0 \
      hydra.run.dir="$TEACHERS_DIR/$NAME"
  fi
done
for SEED in $SEEDS; do
  RUN=("${COMMON[@]}" seed="$SEED" method=random)
  $BIN/biobench-train -m experiment=kd_folder "${RUN[@]}" "model.teacher_ckpt=$TEACHERS_DIR/same/checkpoints/best.ckpt" \
    pruning.keep_ratio=0.1,0.3,0.5,0.7 model.alpha=0.0,0.5,0.9 hydra.sweep.dir="$OUT/seed$SEED/alpha"
  $BIN/biobench-train -m experiment=kd_folder "${COMMON[@]}" seed="$SEED" method=aum_ccs \
    "model.teacher_ckpt=$TEACHERS_DIR/same/checkpoints/best.ckpt" \
    pruning.keep_ratio=0.1,0.3,0.5,0.7 model.alpha=0.9 hydra.sweep.dir="$OUT/seed$SEED/ccs"
  $BIN/biobench-train -m experiment=kd_folder "${RUN[@]}" pruning.keep_ratio=0.3 model.alpha=0.9 \
    "model.teacher_ckpt=$(printf "%s/checkpoints/best.ckpt," "$TEACHERS_DIR"/{narrow,wide,deep} | sed 's/,$//')" \
    hydra.sweep.dir="$OUT/seed$SEED/teacher_size"
done
bash "$(dirname "$0")/summarize_kd_cifar_subset.sh" "$OUT"

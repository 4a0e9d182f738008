#!/usr/bin/env bash
# KD results on the real CIFAR-10 subset (../shared/data/cifar10-mini.tar) with a ResNet-9 student (docs/kd.md):
# teachers of four sizes on the full data, then per seed: random + KD (alpha study, alpha 0.5 / 0.9; alpha 0 is the
# pruning study's random run) at keep 0.1-0.7, the best classic method of docs/pruning.md (aum_ccs) with KD, and the
# teacher-size study at keep 0.3; each a resumable multirun (run_chunk, cifar_subset.sh); then a summary. Usage:
#   bash scripts/sweep_kd_cifar_subset.sh [out dir] [seeds] [epochs]     (defaults: outputs/results/..., "0 1 2", 10)
DEFAULT_OUT=outputs/results/kd_cifar10_mini
source "$(dirname "$0")/cifar_subset.sh"
TEACHERS_DIR=$(realpath -m "$OUT/teachers")
COMMON=("data.data_dir=$PWD/$DATA" "trainer.max_epochs=$EPOCHS" callbacks.progress_bar.refresh_rate=0)
declare -A TEACHERS=([narrow]="model.net.width=8" [same]="model.net.width=16" [wide]="model.net.width=32"
                     [deep]="model/net=resnet20")
for NAME in same narrow wide deep; do
  if [ ! -f "$TEACHERS_DIR/$NAME/checkpoints/best.ckpt" ]; then
    $BIN/biobench-train experiment=teacher_folder "${COMMON[@]}" ${TEACHERS[$NAME]} seed=0 \
      hydra.run.dir="$TEACHERS_DIR/$NAME"
  fi
done
SAME=model.teacher_ckpt=$TEACHERS_DIR/same/checkpoints/best.ckpt
OTHERS=model.teacher_ckpt=$(printf "%s/checkpoints/best.ckpt," "$TEACHERS_DIR"/{narrow,wide,deep} | sed 's/,$//')
for SEED in $SEEDS; do
  RUN=(experiment=kd_folder "${COMMON[@]}" seed="$SEED")
  run_chunk "$OUT/seed$SEED/alpha" "${RUN[@]}" method=random "$SAME" pruning.keep_ratio=0.1,0.3,0.5,0.7 \
    model.alpha=0.5,0.9
  run_chunk "$OUT/seed$SEED/ccs" "${RUN[@]}" method=aum_ccs "$SAME" pruning.keep_ratio=0.1,0.3,0.5,0.7 model.alpha=0.9
  run_chunk "$OUT/seed$SEED/teacher_size" "${RUN[@]}" method=random "$OTHERS" pruning.keep_ratio=0.3 model.alpha=0.9
done
bash "$(dirname "$0")/summarize_kd_cifar_subset.sh" "$OUT"

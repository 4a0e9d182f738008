#!/usr/bin/env bash
# FPGAN-Control's central test (docs/fpgan.md): an embedder trained on generated prints only against one trained on
# the GAN's training prints, both verified on the same held-out fingers (the test split of the GAN's data).
#   bash scripts/synthetic_to_real.sh <GAN ckpt> <fpgan_recognizer run> [out dir] [identities] [impressions]
# 1. exports <identities> x <impressions> prints of the GAN (scripts/generate_fpgan.py; a finished export is kept);
# 2. trains experiment=fpgan_recognizer's embedder on that folder (its own small test split is unused);
# 3. verifies it on the GAN data's test fingers (experiment=verify_fingerprints at the GAN's size), next to the
#    fpgan_recognizer run's own test metrics on the same fingers (the embedder trained on real training prints).
# TRAIN="..." adds Hydra overrides to the synthetic embedder's training (e.g. TRAIN="trainer.max_epochs=10");
# DATA="..." replaces the GAN data's settings, for both the training and the verification, where the GAN was not
# trained at the CPU default (e.g. DATA="data.generator.size=128 data.image_size=64" for the reduced scale).
set -euo pipefail
GAN=$1
REAL_RUN=$2
OUT=${3:-outputs/results/fpgan/synthetic_to_real}
IDENTITIES=${4:-1000}
IMPRESSIONS=${5:-8}
BIN=${BIN:-.venv/bin}
TRAIN=${TRAIN:-}
DATA=${DATA:-data.generator.size=256 data.image_size=128}
QUIET="callbacks.progress_bar.refresh_rate=0"
mkdir -p "$OUT"
if [ ! -f "$OUT/set/metadata.csv" ]; then
  "$BIN/python" scripts/generate_fpgan.py "$GAN" "$OUT/set" --identities "$IDENTITIES" --impressions "$IMPRESSIONS"
fi
"$BIN/biobench-train" experiment=fpgan_recognizer data.data_dir="$OUT/set" data.test_fraction=0.05 skip_done=true \
  $DATA $TRAIN $QUIET hydra.run.dir="$OUT/embedder_synthetic"
"$BIN/biobench-eval" experiment=verify_fingerprints $DATA data.n_fingers=400 data.impressions=8 \
  recognizer=embedder recognizer.path="$OUT/embedder_synthetic/checkpoints/best.ckpt" \
  model.impostors=all $QUIET hydra.run.dir="$OUT/verify_synthetic"
echo "trained on generated prints: $OUT/verify_synthetic/metrics.json"
echo "trained on real training prints: $REAL_RUN/metrics.json (test/*: the same test fingers)"

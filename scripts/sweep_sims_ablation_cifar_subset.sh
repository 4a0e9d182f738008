#!/usr/bin/env bash
# What was tried to make SIM + SIMS beat random pruning on the real CIFAR-10 subset (docs/pruning.md): SIM with one
# term switched off or its terms summed instead of multiplied, and SIMS with a flatter / more peaked Beta, easier /
# harder modes, and class budgets by class size only / by class hardness only; each variant at keep 0.1 / 0.3
# (where SIMS should matter most) under the epoch budget, the recipe of sweep_pruning_cifar_subset.sh. One resumable
# multirun (run_chunk, cifar_subset.sh) per seed and variant; the runs carry `variant=<name>`; the summary adds the
# unablated SIM + SIMS and random runs of the pruning study when they exist. Usage:
#   bash scripts/sweep_sims_ablation_cifar_subset.sh [out dir] [seeds] [epochs]   (defaults: outputs/results/..., "0", 10)
#   ONLY=sims_easier,sims_peaked bash scripts/sweep_sims_ablation_cifar_subset.sh ... (some variants only)
DEFAULT_OUT=outputs/results/sims_ablation_cifar10_mini
source "$(dirname "$0")/cifar_subset.sh" "${1:-$DEFAULT_OUT}" "${2:-0}" "${3:-10}"
PRUNING=${PRUNING:-outputs/results/pruning_cifar10_mini}
declare -A VARIANTS=(
  [sim_no_separability]="pruning.score.separability=false"
  [sim_no_integrity]="pruning.score.integrity=false"
  [sim_no_uncertainty]="pruning.score.uncertainty=false"
  [sim_sum]="pruning.score.combine=sum"
  [sims_flat]="pruning.sampler.concentration=2.0"
  [sims_peaked]="pruning.sampler.concentration=12.0"
  [sims_easier]="pruning.sampler.mode_low=0.1 pruning.sampler.mode_high=0.5"
  [sims_harder]="pruning.sampler.mode_low=0.5 pruning.sampler.mode_high=0.9"
  [sims_size_budgets]="pruning.sampler.class_mix=1.0"
  [sims_hardness_budgets]="pruning.sampler.class_mix=0.0"
)
COMMON=(experiment=prune_folder "data.data_dir=$PWD/$DATA" "trainer.max_epochs=$EPOCHS"
        callbacks.progress_bar.refresh_rate=0 method=sim_sims pruning.keep_ratio=0.1,0.3 pruning.budget=epochs)
for SEED in $SEEDS; do
  for NAME in $(printf "%s\n" "${!VARIANTS[@]}" | sort); do
    if [ -n "${ONLY:-}" ] && [[ ",$ONLY," != *",$NAME,"* ]]; then continue; fi
    # shellcheck disable=SC2086  # the variant's overrides are separate words
    run_chunk "$OUT/seed$SEED/$NAME" "${COMMON[@]}" seed="$SEED" +variant="$NAME" ${VARIANTS[$NAME]}
  done
done
shopt -s nullglob
$BIN/biobench-summarize "$OUT" "$PRUNING"/seed*/epochs --label variant,method --default variant=none \
  --where method=random,sim_sims --where pruning.keep_ratio=0.1,0.3 --where seed="${SEEDS// /,}" --out "$OUT"

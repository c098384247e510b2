#!/usr/bin/env bash
# The MAML family on Omniglot 5-way 1-shot, the same wall-clock budget for each algorithm.
#
#   bash benchmarks/omniglot_family.sh [MINUTES] [RUNS_DIR] [DATA_DIR]
#
# Each algorithm meta-trains from the omniglot_5w1s preset (Conv4-64 strided, transductive
# BatchNorm, meta-batch 32, 1 query image per class, Adam 1e-3) for MINUTES of wall time
# (train.max_minutes, default 4), with the settings below where its paper differs; then
# `benchmarks/algorithms.py --evaluate` scores every run on the preset's 600 test tasks
# (mean ± 95% CI) and prints one table. DATA_DIR holds the two Omniglot zips
# (default: runs/data/omniglot). One run at a time, torch's default threads.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-4}
RUNS=${2:-runs/omniglot_family}
DATA=${3:-runs/data/omniglot}
MAMLKIT=${MAMLKIT:-mamlkit}
PYTHON=${PYTHON:-python}
COMMON="task.root=$DATA train.max_minutes=$MINUTES train.progress=false train.log_every=10 \
train.val_every=100000 train.checkpoint_every=100000"

declare -A SETTINGS=(
  [maml]=""
  [fomaml]="algorithm.name=fomaml"
  [meta_sgd]="algorithm.name=meta_sgd"
  [anil]="algorithm.name=anil"
  [maml_pp]="algorithm.name=maml_pp algorithm.inner_steps=5 algorithm.inner_lr=0.1 eval.steps=5
    algorithm.maml_pp.msl=true algorithm.maml_pp.msl_iterations=150 algorithm.maml_pp.da=true
    algorithm.maml_pp.da_iterations=150 algorithm.maml_pp.lslr=true algorithm.maml_pp.bnwb=true
    algorithm.maml_pp.ca=true"
  [reptile]="algorithm.name=reptile algorithm.inner_steps=5 algorithm.inner_lr=0.001
    algorithm.reptile.inner_optimizer=adam train.meta_lr=1.0 eval.steps=10"
  [imaml]="algorithm.name=imaml algorithm.inner_steps=10 algorithm.inner_lr=0.1 algorithm.imaml.lam=2.0
    algorithm.imaml.cg_steps=5 eval.steps=10"
)
ORDER=(maml fomaml meta_sgd anil maml_pp reptile imaml)

for name in "${ORDER[@]}"; do
  # shellcheck disable=SC2086 - the settings are word lists
  "$MAMLKIT" train omniglot_5w1s name="$name" $COMMON ${SETTINGS[$name]} --runs-dir "$RUNS" --overwrite
done
"$PYTHON" benchmarks/algorithms.py --evaluate "${ORDER[@]/#/$RUNS/}" --out "$RUNS/table.md"

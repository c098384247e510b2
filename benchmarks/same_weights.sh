#!/usr/bin/env bash
# Refactoring check: meta-train each preset briefly at an older commit and at the working tree (same seed, one
# thread, the same short schedule) and print whether the final weights are bit-identical, or how far apart.
#
#   bash benchmarks/same_weights.sh OLD_COMMIT [OMNIGLOT_ROOT]
#
# OMNIGLOT_ROOT (default data/omniglot) holds the Omniglot zips; the Omniglot cases are skipped without it.
# Runs go to a temporary folder; the old commit is checked out there as a git worktree.
set -euo pipefail
OLD=${1:?usage: same_weights.sh OLD_COMMIT [OMNIGLOT_ROOT]}
ROOT=$(cd "${2:-data/omniglot}" 2>/dev/null && pwd || true)
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$HERE/.venv/bin/python}
WORK=$(mktemp -d)
trap 'git -C "$HERE" worktree remove --force "$WORK/old" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
git -C "$HERE" worktree add --detach --quiet "$WORK/old" "$OLD"
COMMON=(train.progress=false train.threads=1 train.val_every=10 train.checkpoint_every=10 train.val_tasks=20)
CASES=(
  "maml sinusoid train.iterations=40"
  "fomaml sinusoid_fomaml train.iterations=40"
  "meta_sgd sinusoid_meta_sgd train.iterations=40"
  "anil sinusoid_anil train.iterations=40"
  "maml_pp sinusoid_maml_pp train.iterations=40 algorithm.maml_pp.msl_iterations=10 algorithm.maml_pp.da_iterations=20"
  "reptile sinusoid_reptile train.iterations=40"
  "imaml sinusoid_imaml train.iterations=20"
  "cavia sinusoid_cavia train.iterations=40"
  "navigation rl_navigation train.iterations=3"
)
if [ -n "$ROOT" ] && [ -f "$ROOT/images_background.zip" ]; then
  CASES+=("omniglot omniglot_5w1s train.iterations=20 task.root=$ROOT"
          "omniglot_maml_pp omniglot_5w1s train.iterations=10 task.root=$ROOT algorithm.name=maml_pp algorithm.inner_steps=2 algorithm.maml_pp.bnwb=true algorithm.maml_pp.lslr=true algorithm.maml_pp.msl=true")
fi
for case in "${CASES[@]}"; do
  read -r name preset overrides <<< "$case"
  for tree in old new; do
    src=$([ $tree = old ] && echo "$WORK/old/src" || echo "$HERE/src")
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 PYTHONPATH=$src "$PY" -m mamlkit train "$preset" name="$name" "${COMMON[@]}" $overrides \
      --runs-dir "$WORK/$tree" > "$WORK/$tree-$name.log" 2>&1 || { echo "$name: $tree run failed (log: $WORK/$tree-$name.log)"; tail -3 "$WORK/$tree-$name.log"; }
  done
  "$PY" - "$WORK" "$name" <<'PY'
import sys, torch
work, name = sys.argv[1:]
old, new = (torch.load(f"{work}/{tree}/{name}/checkpoints/last.pt", weights_only=False) for tree in ("old", "new"))
key = "model" if "model" in old else "policy"
a, b = old[key], new[key]
same = sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)
gap = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
print(f"{name}: iterations {old['iteration']} / {new['iteration']}; bit-identical: {same}; largest difference {gap:.3g}")
PY
done

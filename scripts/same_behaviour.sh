#!/usr/bin/env bash
# Does a change keep behaviour? Runs `loop-svdd quickstart` (seed 0) and the one-vs-rest benchmark on
# musicradar-bass-392 (seeds 0-4) for two revisions, with this checkout's .venv, and diffs what they print.
# Usage: bash scripts/same_behaviour.sh BEFORE_REV [AFTER_REV|WORKTREE_DIR]   (default after: this working tree)
# Needs ../shared/data/musicradar-bass-392 beside the checkout (EMBEDDINGS=... overrides). ~8 min on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
BEFORE=${1:?usage: same_behaviour.sh BEFORE_REV [AFTER_REV|DIR]}
AFTER=${2:-$REPO}
EMBEDDINGS=${EMBEDDINGS:-$REPO/../shared/data/musicradar-bass-392}
WORK=${WORK:-$(mktemp -d /tmp/same-behaviour.XXXX)}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
PY=$REPO/.venv/bin/python

tree_of() {  # a directory as is, or a revision checked out as a detached worktree
  if [ -d "$1" ]; then echo "$1"; else git worktree add -q --detach "$WORK/tree-$2" "$1" && echo "$WORK/tree-$2"; fi
}

run_side() {  # tree, name
  local tree=$1 out=$WORK/$2
  mkdir -p "$out"
  (cd "$out" && PYTHONPATH=$tree $PY -m loop_svdd.cli quickstart --output-dir "$out/qs" --no-progress > qs.out 2> qs.err)
  echo "[$2] quickstart exit $?"
  local args=(--embeddings "$EMBEDDINGS" --seeds 0 1 2 3 4 --json "$out/ovr.json" --markdown "$out/ovr.md" --no-progress)
  (cd "$out" && { PYTHONPATH=$tree $PY -m loop_svdd.cli benchmark one-vs-rest "${args[@]}" > ovr.out 2> ovr.err ||
     PYTHONPATH=$tree $PY -m loop_svdd.cli benchmark "${args[@]}" > ovr.out 2> ovr.err; })
  echo "[$2] one-vs-rest exit $?"
}

normalise() {  # strip the output folder, wall times and the timing column
  sed -E "s#$1#OUT#g; s/Done in [0-9]+ s/Done in N s/; s/done in [0-9.]+ s/done in N s/; s/\| [0-9.]+ \|$/| T |/" "$2"
}

run_side "$(tree_of "$BEFORE" before)" before
run_side "$(tree_of "$AFTER" after)" after
status=0
same() {  # label, file A, file B
  if diff <(normalise "$WORK/before" "$2") <(normalise "$WORK/after" "$3") > "$WORK/$1.diff"; then echo "$1: identical"
  else echo "$1: DIFFERENT (see $WORK/$1.diff)"; status=1; fi
}
same quickstart-stdout "$WORK/before/qs.out" "$WORK/after/qs.out"
same curated-ranking "$WORK/before/qs/curated/ranking.csv" "$WORK/after/qs/curated/ranking.csv"
same evaluation "$WORK/before/qs/model/evaluation.json" "$WORK/after/qs/model/evaluation.json"
same one-vs-rest-table "$WORK/before/ovr.md" "$WORK/after/ovr.md"
echo "outputs in $WORK"
exit $status

#!/usr/bin/env bash
# The shipped default encoder's pretraining, as one command: build the distillation audio set, then distil
# musicnn (MTT) into the small HTS-AT. Usage: bash scripts/pretrain_default_encoder.sh [WORK_DIR]
# Writes WORK_DIR/distill-set (the clips) and WORK_DIR/encoder (a LoopSVDD folder: use it with --encoder, or
# copy it to loop_svdd/assets/default_encoder). Resumes where it stopped (teacher cache, checkpoints).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-pretrain-default-encoder}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
start=$(date +%s)
if [ ! -f "$work/distill-set/metadata.csv" ]; then
  .venv/bin/loop-svdd corpus build-distillation "$work/distill-set" --seed 0 --no-progress
fi
.venv/bin/loop-svdd pretrain-encoder "$work/distill-set" --output-dir "$work/encoder" --teacher musicnn-mtt \
  --steps 3500 --batch-size 16 --seed 0 --no-progress
echo "pretrain_default_encoder: $(( $(date +%s) - start )) s in all"

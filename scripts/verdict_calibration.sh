#!/usr/bin/env bash
# The stray rule calibrated on the default encoder's own scores, on sources the quickstart pack and the library
# check never use: 600 loops rendered from three soundfonts (OPL-3 FM, csound's sf_GMbank, MuseScore General;
# apt: opl3-soundfont csound-soundfont musescore-general-soundfont) and embedded by the default encoder; a
# pack is one instrument of one soundfont (12 folders of about 50 loops), its strays are drawn from the other 11
# (the same instrument from another soundfont among them). Contamination 0, 2, 5 and 10%; rules chosen on seeds
# 5-7, reported on seeds 0-2 and folder-held-out (`loop-svdd benchmark verdict-calibration`).
# Usage: bash scripts/verdict_calibration.sh WORK_DIR [LIMIT]   (LIMIT: most false calls per 100 clean loops, 3)
set -euo pipefail
work=$1 limit=${2:-3}
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
ls=.venv/bin/loop-svdd
fonts=/usr/share/sounds/sf2/OPL-3_FM_128M.sf2,/usr/share/sounds/sf2/sf_GMbank.sf2,/usr/share/sounds/sf3/MuseScore_General_Full.sf3
mkdir -p "$work"
[ -f "$work/corpus/metadata.csv" ] || $ls corpus build "$work/corpus" --loops 600 --seed 11 --sources soundfont \
    --soundfonts "$fonts" --no-progress
[ -f "$work/embeddings/nff.npy" ] || $ls embed "$work/corpus" --output-dir "$work/embeddings" \
    --label-column instrument+source --no-progress
$ls benchmark verdict-calibration --embeddings "$work/embeddings" --detectors curate --fractions 0 0.02 0.05 0.1 \
    --tune-seeds 5 6 7 --report-seeds 0 1 2 --cache "$work/cache" --most-false-per-100 "$limit" \
    --compare mixture=2 mixture=3 --json "$work/calibration-$limit.json" --markdown "$work/calibration-$limit.md"

#!/usr/bin/env bash
# The test command (README and CI): set up if needed, then run the whole suite offline.
# `bash scripts/test.sh --fast [pytest args]`: only the tests not marked slow (a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
.venv/bin/ruff check loop_svdd tests hub demo
fast=()
if [ "${1:-}" = "--fast" ]; then
  shift
  fast=(-m "not slow")
fi
.venv/bin/python -m pytest -q ${fast[@]+"${fast[@]}"} "$@"

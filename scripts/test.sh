#!/usr/bin/env bash
# The test command (README and CI): set up if needed, then run the whole suite offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
.venv/bin/ruff check loop_svdd tests hub demo
.venv/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# The main job on the embedded default: set up if needed, then `loop-svdd quickstart` (arguments pass through).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
exec .venv/bin/loop-svdd quickstart "$@"

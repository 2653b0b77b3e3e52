#!/usr/bin/env bash
# One-time setup on a fresh Debian/Ubuntu machine: system packages (FFmpeg for audio decoding, FluidSynth and
# soundfonts for the corpus, Chromium for the browser test) and a virtual environment in .venv. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=$(grep -hv '^\s*#' .ci/apt-packages.txt | tr '\n' ' ')
missing=$(for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[setup] installing system packages: $missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.loop-svdd-setup
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ "$0" -nt "$stamp" ]; then
  echo "[setup] installing Python packages (first time: a few minutes)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[demo,test]"
  # Test-only reference implementation of LAION's HTS-AT (its own pins are numpy<2 and online-only imports).
  .venv/bin/pip install -q --no-deps laion-clap==1.1.7 torchvision==0.29.1
  touch "$stamp"
fi

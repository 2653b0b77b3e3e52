#!/usr/bin/env bash
# One-time setup on a fresh Debian/Ubuntu machine: system packages (FFmpeg for audio decoding, FluidSynth and
# soundfonts for the corpus, Chromium for the browser test) and a virtual environment in .venv. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_LOCK_WAIT_S=${APT_LOCK_WAIT_S:-300}  # how long to wait for another apt/dpkg process (fresh VMs run one at boot)

# Wait (bounded) until no other process holds the dpkg/apt locks; say who holds them while waiting.
wait_for_apt_lock() {
  local locks=${APT_LOCKS:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock}
  local waited=0 holder
  while :; do
    holder=""
    for lock in $locks; do
      [ -e "$lock" ] || continue
      if command -v fuser >/dev/null 2>&1; then
        $SUDO fuser "$lock" >/dev/null 2>&1 && holder="$lock" && break
      elif ! $SUDO flock -n "$lock" true 2>/dev/null; then
        holder="$lock" && break
      fi
    done
    [ -z "$holder" ] && return 0
    if [ "$waited" -ge "$APT_LOCK_WAIT_S" ]; then
      echo "[setup] error: $holder is still held after ${APT_LOCK_WAIT_S} s by another apt/dpkg process" \
        "($(pgrep -af 'apt-get|apt |dpkg|unattended-upgr' 2>/dev/null | head -3 | tr '\n' ';' || true)); wait for it or stop it, then rerun" >&2
      exit 1
    fi
    [ $((waited % 30)) -eq 0 ] && echo "[setup] waiting for another apt/dpkg process to release $holder" \
      "(${waited}/${APT_LOCK_WAIT_S} s; e.g. unattended-upgrades at boot)"
    sleep 5
    waited=$((waited + 5))
  done
}

packages=$(grep -hv '^\s*#' .ci/apt-packages.txt | tr '\n' ' ')
missing=$(for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[setup] system packages to install:" $missing
  wait_for_apt_lock
  echo "[setup] apt-get update"
  $SUDO apt-get update -qq
  wait_for_apt_lock
  echo "[setup] apt-get install (FFmpeg, FluidSynth, soundfonts, Chromium, python3-venv; about a minute)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout="$APT_LOCK_WAIT_S" \
    --no-install-recommends $missing >/dev/null
else
  echo "[setup] system packages already installed"
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating the virtual environment .venv"
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
else
  echo "[setup] Python packages up to date (.venv)"
fi
echo "[setup] done: source .venv/bin/activate, then loop-svdd --help"

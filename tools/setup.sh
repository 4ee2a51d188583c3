#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs emgpilot with the test tools and the Bebop extra.
# Safe to run again: it only installs what is missing. torch is pinned to the CPU build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch==2.13.0 is the CPU build; an unpinned torch would pull a multi-GB CUDA build.
# Olympe (the Bebop extra) ships only for Linux x86_64; elsewhere the simulator still works.
extras="test"
if [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ]; then extras="test,bebop"; fi
# Where pip's index would give the CUDA build for this pin (plain PyPI on Linux), point
# TORCH_INDEX_URL at PyTorch's CPU index: https://download.pytorch.org/whl/cpu
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  .venv/bin/python -m pip install -q "torch==2.13.0" --index-url "$TORCH_INDEX_URL"
fi
.venv/bin/python -m pip install -q "torch==2.13.0" -e ".[$extras]"
# pyomyo is only a test peer for the fake Myo dongle; its metadata drags in heavy packages.
.venv/bin/python -m pip install -q --no-deps "pyomyo==0.0.5"
# Qt needs a few system libraries even offscreen; install them only if they are missing.
if ! QT_QPA_PLATFORM=offscreen .venv/bin/python -c "from PyQt6 import QtGui" 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 >/dev/null
  else
    echo "PyQt6 cannot load: install libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3" >&2
  fi
fi

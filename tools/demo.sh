#!/usr/bin/env bash
# Sets everything up and starts emgpilot on its built-in defaults: no hardware needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec .venv/bin/emgpilot "$@"

#!/usr/bin/env bash
# Run the emulator's test suite (creates/reuses chaos/emulator/.venv). Extra arguments
# go to pytest. Exit status is pytest's.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/_venv.sh"
ensure_venv
cd "$EMULATOR_DIR"
export PYTHONPATH="$EMULATOR_DIR${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
exec "$VENV/bin/python" -m pytest "$@"

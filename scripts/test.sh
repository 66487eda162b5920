#!/usr/bin/env bash
# Set up (once), check ruff and mypy, test the installed wheel from outside the repository (scripts/test_wheel.sh;
# HF_MARGIN_SKIP_WHEEL=1 skips it while iterating), then run the test suite. Extra arguments go to pytest
# (e.g. -m "not heavy").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy"
[ -n "${HF_MARGIN_SKIP_WHEEL:-}" ] || bash "$ROOT/scripts/test_wheel.sh"
exec "$VENV/bin/python" -m pytest "$@"

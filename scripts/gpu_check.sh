#!/usr/bin/env bash
# The checks that need a GPU, in one go, with one summary table at the end:
#   1. the device-parametrised tests on CUDA (HF_MARGIN_TEST_DEVICE=cuda);
#   2. the benchmarks on CUDA, with absolute times (benchmarks/run.py, written to $OUT/benchmarks_cuda.md);
#   3. with 2+ GPUs: the launched runs of tests/distributed (the five set-ups) with NCCL through accelerate's
#      multi_gpu (DDP) and fsdp (FSDP2 plugin) configs, and the DeepSpeed ZeRO-2/3 configs when deepspeed is
#      installed; each must exit 0 and leave the same weights on both ranks.
# On a machine without a CUDA GPU every check is reported as skipped and the script exits 0.
#
#   scripts/gpu_check.sh            # from the repository root; OUT=/path to keep the outputs (default: a temp dir)
set -uo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python
ACCELERATE="$(dirname "$PYTHON")/accelerate"
[ -x "$ACCELERATE" ] || ACCELERATE=accelerate
OUT=${OUT:-$(mktemp -d)}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
declare -a ROWS=()
FAILED=0

row() { ROWS+=("$(printf '| %-44s | %-7s | %7s | %s |' "$1" "$2" "$3" "$4")"); [ "$2" = FAIL ] && FAILED=1; }

run_check() { # name, log file, command...
    local name=$1 log=$2 start status
    shift 2
    start=$(date +%s)
    "$@" >"$log" 2>&1
    status=$?
    if [ $status -eq 0 ]; then row "$name" PASS "$(($(date +%s) - start))s" "$log"; else row "$name" FAIL "$(($(date +%s) - start))s" "$log"; fi
}

GPUS=$("$PYTHON" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)" 2>/dev/null || echo 0)

if [ "$GPUS" -eq 0 ]; then
    row "device-parametrised tests on CUDA" SKIP - "no CUDA GPU visible to torch"
    row "benchmarks on CUDA (absolute times)" SKIP - "no CUDA GPU visible to torch"
    row "DDP / FSDP2 / DeepSpeed launches (NCCL)" SKIP - "needs 2+ GPUs, found 0"
else
    run_check "device-parametrised tests on CUDA" "$OUT/device_tests.log" \
        env HF_MARGIN_TEST_DEVICE=cuda "$PYTHON" -m pytest -q -p no:cacheprovider \
        tests/test_device.py tests/metrics/test_verification.py tests/metrics/test_array_inputs.py
    run_check "benchmarks on CUDA (absolute times)" "$OUT/benchmarks.log" \
        "$PYTHON" -m benchmarks.run --device cuda --quick --out "$OUT/benchmarks_cuda.md"
    if [ "$GPUS" -lt 2 ]; then
        row "DDP / FSDP2 / DeepSpeed launches (NCCL)" SKIP - "needs 2+ GPUs, found $GPUS"
    else
        CASES=(ddp:madpo ddp:petal ddp:margin_mse ddp:embedding ddp:transicd)
        CONFIGS=(multi_gpu fsdp)
        if "$PYTHON" -c "import deepspeed" 2>/dev/null; then
            CONFIGS+=(deepspeed_zero2 deepspeed_zero3)
        else
            row "DeepSpeed ZeRO-2/3 launches" SKIP - "deepspeed is not installed"
        fi
        for config in "${CONFIGS[@]}"; do
            run_check "launch: $config, 5 set-ups, 2 GPUs" "$OUT/launch_$config.log" bash -c "
                HF_MARGIN_TEST_DEVICE=cuda '$ACCELERATE' launch --config_file recipes/accelerate/$config.yaml \
                    --num_processes 2 tests/distributed/worker.py '$OUT/$config' ${CASES[*]} &&
                '$PYTHON' -c '
import sys; from pathlib import Path; import torch
from tests.distributed.launch import rank_weights
for folder in sorted(Path(sys.argv[1]).glob(\"ddp/*\")):
    first, second = rank_weights(folder)
    assert all(torch.isfinite(t).all() for t in first.values()), folder
    assert all(torch.equal(first[k], second[k]) for k in first), f\"ranks differ in {folder}\"
    print(folder.name, \"ranks agree\")
' '$OUT/$config'"
        done
    fi
fi

echo
echo "GPU check ($GPUS CUDA device(s)); outputs in $OUT"
printf '| %-44s | %-7s | %7s | %s |\n' check result time "log / reason"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "---------" "---------" "------"
printf '%s\n' "${ROWS[@]}"
exit $FAILED

#!/usr/bin/env bash
# The one-shot hardware check, on the GPU machine (built by tools/gpu-check/build.sh into
# gpu-bundle/; needs no Rust there):
#
#   bash gpu-bundle/run.sh LOG_DIR [COPY_DIR]
#
# Runs each step under `timeout`, carries on after failures, logs each step to LOG_DIR/NAME.log,
# and prints one summary table last (also LOG_DIR/summary.md). The whole run stops starting
# steps after GPU_CHECK_BUDGET_S seconds (default 420) so that it ends under 8 minutes. With
# COPY_DIR (e.g. the device tool's $OUT), summary.md and logs.tar.gz are copied there (two
# files: the tool brings back at most 8).
#
# Exit status: 0 every step passed; 1 a step failed or timed out; 77 nothing failed but the GPU
# steps were skipped (no usable GPU here).
set -u
here=$(cd "$(dirname "$0")" && pwd)
log=${1:?usage: run.sh LOG_DIR [COPY_DIR]}
copy=${2:-}
mkdir -p "$log" || exit 1
log=$(cd "$log" && pwd)
budget=${GPU_CHECK_BUDGET_S:-420}
work=$(mktemp -d "${TMPDIR:-/tmp}/circot-gpu-check.XXXXXX")
started=$SECONDS
rows=()
failed=0
skipped=0
gpu=unknown # yes / no / noload
gpu_why=""
export PYTHONUNBUFFERED=1

# A tool by name: on PATH, else in the usual CUDA and Nsight folders.
find_tool() {
    local name=$1 p
    p=$(command -v "$name" 2>/dev/null) && { echo "$p"; return 0; }
    for p in /usr/local/cuda/bin/"$name" /usr/local/cuda/compute-sanitizer/"$name" \
        /usr/local/cuda-*/bin/"$name" /opt/nvidia/nsight-compute/*/"$name"; do
        [[ -x "$p" ]] && { echo "$p"; return 0; }
    done
    return 1
}
sanitizer=$(find_tool compute-sanitizer || true)
ncu=$(find_tool ncu || true)
python=${GPU_CHECK_PYTHON:-$(command -v python3 || true)}
export SANITIZER="$sanitizer" NCU="$ncu" PY="$python" BUNDLE="$here" WORK="$work"

row() { # name status seconds note
    rows+=("| $1 | $2 | $3 | ${4//|//} |")
    case $2 in
    PASS) ;;
    SKIPPED*) skipped=1 ;;
    *) failed=1 ;;
    esac
}

# step NAME TIMEOUT_S TAIL_LINES COMMAND: runs COMMAND (a bash string) under timeout, logs it,
# prints the log's last TAIL_LINES lines, and adds a row: PASS (0), SKIPPED (77), TIMEOUT
# (124/137), FAIL (else), with the log's last `summary:` line (or last line) as the note.
step() {
    local name=$1 limit=$2 tail_lines=$3 command=$4
    local left=$((budget - (SECONDS - started)))
    if ((left < 10)); then
        row "$name" "SKIPPED" 0 "out of the run's ${budget} s budget"
        return 0
    fi
    ((limit > left)) && limit=$left
    echo "== $name (timeout ${limit} s)"
    local t0=$SECONDS rc
    timeout -k 5 "$limit" bash -c "$command" >"$log/$name.log" 2>&1 </dev/null
    rc=$?
    local dt=$((SECONDS - t0))
    tail -n "$tail_lines" "$log/$name.log"
    local note
    note=$(grep -a '^summary:' "$log/$name.log" | tail -n 1 | sed 's/^summary: *//')
    [[ -z "$note" ]] && note=$(grep -av '^\s*$' "$log/$name.log" | tail -n 1)
    note=${note:0:110}
    case $rc in
    0) row "$name" PASS "$dt" "$note" ;;
    77) row "$name" "SKIPPED" "$dt" "$note" ;;
    124 | 137) row "$name" TIMEOUT "$dt" "stopped after ${limit} s; $note" ;;
    *) row "$name" "FAIL (rc $rc)" "$dt" "$note" ;;
    esac
    return $rc
}

gpu_step() { # like step, but skipped without a GPU whose kernels load
    if [[ $gpu != yes ]]; then
        row "$1" "SKIPPED" 0 "$gpu_why"
        return 0
    fi
    step "$@"
}

sanitize() { # name tool harness-args
    if [[ -z "$sanitizer" ]]; then
        row "$1" "SKIPPED" 0 "compute-sanitizer not found"
        return 0
    fi
    gpu_step "$1" 90 12 "\"\$SANITIZER\" --tool $2 --error-exitcode 9 --print-limit 20 \"\$BUNDLE/bin/gpu_check\" $3"
}

echo "circot one-shot hardware check: bundle $here, logs $log, budget ${budget} s"
[[ -f "$here/MANIFEST.txt" ]] && head -n 2 "$here/MANIFEST.txt"

# 1. Versions (informational; SKIPPED without nvidia-smi).
step versions 60 40 '
    set +e
    echo "host: $(uname -srm)"; grep -m1 PRETTY_NAME /etc/os-release 2>/dev/null
    if ! command -v nvidia-smi >/dev/null; then echo "nvidia-smi: not found"; ns=77
    else nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,compute_cap --format=csv; ns=$?; fi
    nv=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null); [[ -n $nv ]] && "$nv" --version | tail -n 2 || echo "nvcc: not found"
    [[ -n $SANITIZER ]] && "$SANITIZER" --version | tail -n 2 || echo "compute-sanitizer: not found"
    [[ -n $NCU ]] && "$NCU" --version | tail -n 1 || echo "ncu: not found"
    if [[ -n $PY ]]; then "$PY" --version
        "$PY" -c "import torch; print(\"torch\", torch.__version__, \"CUDA\", torch.version.cuda, \"available:\", torch.cuda.is_available())" 2>&1 | tail -n 1
    else echo "python3: not found"; fi
    echo "summary: $( [[ $ns == 0 ]] && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1 || echo "no nvidia-smi" )"
    exit $ns'

# 2. Probe: device, driver, and one launch of each kernel. Decides whether the GPU steps run.
step probe 60 16 '"$BUNDLE/bin/gpu_check" probe'
case $? in
0) gpu=yes ;;
3)
    gpu=noload gpu_why="the embedded kernels did not load (see probe, fallback-build)"
    step fallback-build 180 20 '"$BUNDLE/kernels/fallback-build.sh" "$WORK/fallback"'
    ;;
*)
    gpu=no
    gpu_why="no usable GPU (see probe)"
    ;;
esac

# 3. Every kernel against the f64 reference, outputs NaN-poisoned.
gpu_step check 150 12 '"$BUNDLE/bin/gpu_check" check'
# 4. Labels >= K (its own process: a fault there may kill the context).
gpu_step labels-out-of-range 45 6 '"$BUNDLE/bin/gpu_check" labels-out-of-range'
# 5. Timing of enqueue with CUDA events beside the cost model.
gpu_step time 120 40 '"$BUNDLE/bin/gpu_check" time'
# 6. The model, from the CLI (no GPU needed), and the CLI on the GPU.
step model 30 8 '"$BUNDLE/bin/circot" bench --model && echo "summary: the cost model (circot bench --model); the time step divides by it"'
gpu_step cli-cuda 60 4 '"$BUNDLE/bin/circot" bench --backend cuda --batch 65536 && "$BUNDLE/bin/circot" bench --backend cuda --batch 65536 --tol 1e-6 --iters 5000'

# 7. Python: install the wheel (no network, no deps: numpy and torch are there), then the CUDA
#    tensor tests and the torch.compile / CUDA graph script.
step python-install 60 6 '
    set -e; [[ -n $PY ]] || { echo "summary: no python3"; exit 1; }
    whl=$(ls "$BUNDLE"/wheel/circot-*.whl | head -n 1)
    if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$WORK/site" "$whl"; then
        echo "pip failed; unpacking the wheel instead"
        "$PY" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$whl" "$WORK/site"
    fi
    cd "$WORK" && PYTHONPATH="$WORK/site" "$PY" -c "import circot, circot._native as n; print(\"summary: circot\", circot.__file__, \"cuda_status:\", n.cuda_status())"'
if [[ -d $work/site ]]; then
    export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
    gpu_step pytest-cuda 150 8 'cd "$BUNDLE/python/tests" && "$PY" -m pytest -q -rs -p no:cacheprovider test_torch_cuda.py'
    gpu_step torch-check 180 30 'cd "$WORK" && "$PY" "$BUNDLE/python/torch_check.py"'
else
    row pytest-cuda "SKIPPED" 0 "the wheel was not installed"
    row torch-check "SKIPPED" 0 "the wheel was not installed"
fi

# 8. compute-sanitizer on small batches.
sanitize memcheck memcheck "check --quick"
sanitize memcheck-labels memcheck "labels-out-of-range"
sanitize racecheck racecheck "check --quick"
sanitize synccheck synccheck "check --quick"
sanitize initcheck initcheck "check --quick --uninit"

# 9. One kernel under Nsight Compute (occupancy, throughput), if time is left.
if [[ -n $ncu ]]; then
    gpu_step ncu 90 40 '"$NCU" --clock-control none --launch-skip 4 --launch-count 1 -k regex:circot_sinkhorn_f32_k8 --section SpeedOfLight --section Occupancy --section LaunchStats "$BUNDLE/bin/gpu_check" time --quick'
else
    row ncu "SKIPPED" 0 "ncu not found"
fi

elapsed=$((SECONDS - started))
{
    echo "## circot hardware check: summary ($(date -u +%FT%TZ), ${elapsed} s)"
    echo
    [[ -f "$here/MANIFEST.txt" ]] && sed -n 1,2p "$here/MANIFEST.txt" | sed 's/^/    /' && echo
    echo "| step | status | s | note |"
    echo "|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
} >"$log/summary.md"
tar -czf "$work/logs.tar.gz" -C "$log" . 2>/dev/null && mv "$work/logs.tar.gz" "$log/logs.tar.gz"
if [[ -n $copy ]]; then
    mkdir -p "$copy" && cp "$log/summary.md" "$log/logs.tar.gz" "$copy/" 2>/dev/null
fi
rm -rf "$work"
echo
cat "$log/summary.md"
if ((failed)); then
    exit 1
elif ((skipped)); then
    echo "SKIPPED steps: nothing was checked on a GPU ($gpu_why)" >&2
    exit 77
fi
exit 0

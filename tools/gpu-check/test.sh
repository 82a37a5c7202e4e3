#!/usr/bin/env bash
# The CPU parts of the one-shot hardware check, on a machine without a GPU (CI): the harness's
# comparisons run on the emulated kernels (`check --emulated`), its exit codes (usage 2; no driver, and a fake driver with no device, 77 with the reason, no panic)
# and run.sh on a small bundle of debug builds, which must finish quickly with a summary table of
# SKIPPED/FAILED rows and exit 77 (nothing failed, nothing checked). Builds only the debug
# example and CLI (cargo test builds them already), not the release bundle.
#
#   bash tools/gpu-check/test.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
fail() {
    echo "gpu-check test: FAIL: $*" >&2
    exit 1
}

cargo build --quiet --example gpu_check --bin circot
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
harness=$target/debug/examples/gpu_check
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if "$harness" probe >"$tmp/probe.out" 2>&1; then
    echo "gpu-check test: a usable GPU is present; the no-GPU checks do not apply here (SKIPPED)"
    exit 0
fi

echo "== harness exit codes"
rc=0
"$harness" probe >"$tmp/out" 2>&1 || rc=$?
[[ $rc == 77 ]] || fail "probe without a GPU exited $rc, not 77: $(cat "$tmp/out")"
grep -q 'SKIPPED: no usable GPU here' "$tmp/out" || fail "probe gave no reason: $(cat "$tmp/out")"
grep -qi panick "$tmp/out" && fail "probe panicked: $(cat "$tmp/out")"
for command in check "check --quick --uninit" labels-out-of-range time; do
    rc=0
    # shellcheck disable=SC2086 # the command's words
    timeout 30 "$harness" $command >"$tmp/out" 2>&1 || rc=$?
    [[ $rc == 77 ]] || fail "gpu_check $command exited $rc, not 77: $(cat "$tmp/out")"
done
for bad in "" bogus "check --fast"; do
    rc=0
    # shellcheck disable=SC2086
    "$harness" $bad >"$tmp/out" 2>&1 || rc=$?
    [[ $rc == 2 ]] || fail "gpu_check '$bad' exited $rc, not 2 (usage)"
done

echo "== the harness's checks on the emulated kernels (its comparisons and bounds, without a GPU)"
timeout 300 "$harness" check --emulated --quick >"$tmp/out" 2>&1 || fail "gpu_check check --emulated --quick: $(tail -n 20 "$tmp/out")"
tail -n 2 "$tmp/out"

# A driver library whose cuInit says CUDA_ERROR_NO_DEVICE: still 77 with the reason.
if command -v cc >/dev/null; then
    mkdir -p "$tmp/driver"
    echo 'int cuInit(unsigned int flags) { (void)flags; return 100; }' >"$tmp/driver/fake.c"
    cc -shared -fPIC -o "$tmp/driver/libcuda.so.1" "$tmp/driver/fake.c"
    ln -s libcuda.so.1 "$tmp/driver/libcuda.so"
    rc=0
    LD_LIBRARY_PATH="$tmp/driver" "$harness" probe >"$tmp/out" 2>&1 || rc=$?
    [[ $rc == 77 ]] || fail "probe with a fake driver exited $rc, not 77: $(cat "$tmp/out")"
    grep -q 'CUDA_ERROR_NO_DEVICE' "$tmp/out" || fail "probe with a fake driver: $(cat "$tmp/out")"
    echo "fake driver: $(cat "$tmp/out")"
fi

echo "== run.sh on a bundle of debug builds, without a GPU"
bundle=$tmp/bundle
mkdir -p "$bundle"/{bin,wheel,fatbin,kernels,python/tests}
cp "$harness" "$target/debug/circot" "$bundle/bin/"
cp tools/gpu-check/run.sh "$bundle/run.sh"
cp tools/gpu-check/fallback-build.sh "$bundle/kernels/"
cp tools/gpu-check/torch_check.py "$bundle/python/"
cp python/tests/test_torch_cuda.py python/tests/conftest.py "$bundle/python/tests/"
# The wheel tools/python-tests.sh built, if there is one (CI runs that first).
wheel=$(ls "$target"/wheels/circot-*.whl 2>/dev/null | head -n 1 || true)
[[ -n $wheel ]] && cp "$wheel" "$bundle/wheel/"
# A python with NumPy (the wheel's one need) installs and imports it; without one (or without a
# wheel) the python-install row must be the one FAIL.
python=""
for candidate in "$root/.venv/bin/python" "$(command -v python3 || true)"; do
    if [[ -x $candidate ]] && "$candidate" -c 'import numpy' 2>/dev/null; then
        python=$candidate
        break
    fi
done
expected=77
[[ -n $python && -n $wheel ]] || expected=1
# No nvidia-smi, compute-sanitizer, ncu or nvcc on this PATH: only the basics.
mkdir -p "$tmp/path"
for tool in bash sh timeout tar gzip grep sed cut tail head cat mkdir mktemp rm cp mv date uname ls dirname tr sort find xargs sha256sum; do
    p=$(command -v "$tool") && ln -s "$p" "$tmp/path/$tool"
done
t0=$SECONDS
rc=0
PATH=$tmp/path GPU_CHECK_PYTHON=${python:-$(command -v python3 || echo python3)} GPU_CHECK_BUDGET_S=120 \
    timeout 150 bash "$bundle/run.sh" "$tmp/logs" "$tmp/copy" >"$tmp/run.out" 2>&1 || rc=$?
dt=$((SECONDS - t0))
cat "$tmp/run.out"
[[ $rc != 124 ]] || fail "run.sh hung (stopped after 150 s)"
((dt < 90)) || fail "run.sh took ${dt} s without a GPU"
[[ $rc == "$expected" ]] || fail "run.sh exited $rc without a GPU, not $expected (77: every GPU step SKIPPED, nothing FAILED)"
table=$(sed -n '/^| step | status/,$p' "$tmp/run.out")
for step in versions probe check labels-out-of-range time model cli-cuda python-install pytest-cuda torch-check memcheck memcheck-labels racecheck synccheck initcheck ncu; do
    grep -q "^| $step | " <<<"$table" || fail "no row for $step in the summary table"
done
for step in probe check labels-out-of-range time cli-cuda memcheck racecheck synccheck initcheck; do
    grep -q "^| $step | SKIPPED" <<<"$table" || fail "$step is not SKIPPED without a GPU"
done
grep -q '^| model | PASS' <<<"$table" || fail "the model step (CPU only) did not pass"
if ((expected == 77)); then
    grep -q '^| python-install | PASS' <<<"$table" || fail "the wheel did not install"
else
    echo "(no wheel or no python with NumPy here: python-install is expected to FAIL)"
    grep -q '^| python-install | FAIL' <<<"$table" || fail "python-install did not fail without a wheel or NumPy"
    [[ $(grep -c '| FAIL' <<<"$table") == 1 ]] || fail "a row other than python-install FAILED"
fi
[[ -f $tmp/copy/summary.md && -f $tmp/copy/logs.tar.gz ]] || fail "summary.md and logs.tar.gz were not copied"
[[ $(tail -n 1 "$tmp/run.out") == "|"* || $(tail -n 2 "$tmp/run.out" | head -n 1) == "|"* ]] ||
    fail "the summary table is not last"
echo "gpu-check test: passed (run.sh without a GPU: ${dt} s, exit $rc)"

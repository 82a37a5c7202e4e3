#!/usr/bin/env bash
# Builds gpu-bundle/ (git-ignored): everything the one-shot hardware check runs on the GPU
# machine (H200 sm_90, driver 580, CUDA 13.0, PyTorch 2.11 under Python 3.12, x86-64, no Rust,
# nothing downloadable, at most 64 MiB sent):
#
#   bin/gpu_check        the harness (examples/gpu_check.rs), release, sm_90 fatbin with -lineinfo
#   bin/circot           the CLI, the same build
#   wheel/circot-*.whl   the Python wheel (abi3, CUDA feature, same fatbin; needs only numpy)
#   fatbin/              the embedded fatbin and PTX, for cuobjdump/nvdisasm there
#   kernels/             the kernel sources and fallback-build.sh (nvcc there, if the fatbin fails)
#   python/              tests/test_torch_cuda.py (+ conftest.py) and torch_check.py
#   run.sh, MANIFEST.txt
#
#   bash tools/gpu-check/build.sh            # then carry gpu-bundle and run: bash gpu-bundle/run.sh LOG_DIR
#
# Uses its own target directory (target/gpu-check), so the sm_90-only, -lineinfo build never
# invalidates the shared one. Needs what .ci/run needs (Rust, python3 with venv, the pinned nvcc
# wheels, which .ci/cuda-toolchain.sh installs) and maturin from .venv (tools/python-tests.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bundle=${GPU_BUNDLE:-$root/gpu-bundle}
target=${GPU_CHECK_TARGET_DIR:-$root/target/gpu-check}
maturin=${MATURIN:-$root/.venv/bin/maturin}
interpreter=${GPU_CHECK_PYTHON:-$root/.venv/bin/python}

[[ $(uname -m) == x86_64 ]] || { echo "build.sh: the GPU machine is x86-64; this is $(uname -m)" >&2; exit 1; }
[[ -x $maturin ]] || { echo "build.sh: no maturin at $maturin (run tools/python-tests.sh once, or set MATURIN)" >&2; exit 1; }

echo "== toolchain: pinned nvcc wheels"
eval "$(bash .ci/cuda-toolchain.sh)"
CIRCOT_REAL_NVCC=$(command -v nvcc)
export CIRCOT_REAL_NVCC
export NVCC=$root/tools/gpu-check/nvcc-lineinfo.sh
export CIRCOT_CUDA_ARCHS=90
export CARGO_TARGET_DIR=$target
"$CIRCOT_REAL_NVCC" --version | tail -n 1

echo "== cargo: the harness and the CLI (release, sm_90, -lineinfo) into $target"
cargo build --release --locked --example gpu_check --bin circot

echo "== maturin: the wheel"
rm -rf "$target/gpu-wheels"
VIRTUAL_ENV=$root/.venv "$maturin" build --release --quiet --locked -m python/Cargo.toml \
    -o "$target/gpu-wheels" --interpreter "$interpreter"

echo "== assembling $bundle"
rm -rf "$bundle"
mkdir -p "$bundle"/{bin,wheel,fatbin,kernels,python/tests}
cp "$target/release/examples/gpu_check" "$target/release/circot" "$bundle/bin/"
strip --strip-debug "$bundle/bin/gpu_check" "$bundle/bin/circot" 2>/dev/null || true
cp "$target"/gpu-wheels/circot-*.whl "$bundle/wheel/"
# The fatbin build.rs made for this build (the newest, if there are several).
fatbin=$(ls -t "$target"/release/build/circot-*/out/circot.fatbin | head -n 1)
cp "$fatbin" "$bundle/fatbin/circot.fatbin"
cp "$(dirname "$fatbin")/circot.ptx" "$bundle/fatbin/circot.ptx"
cp kernels/*.cu kernels/*.cuh kernels/*.h "$bundle/kernels/"
cp tools/gpu-check/fallback-build.sh "$bundle/kernels/"
cp python/tests/test_torch_cuda.py python/tests/conftest.py "$bundle/python/tests/"
cp tools/gpu-check/torch_check.py "$bundle/python/"
cp tools/gpu-check/run.sh "$bundle/run.sh"
chmod +x "$bundle/run.sh" "$bundle/kernels/fallback-build.sh" "$bundle"/bin/*

echo "== checks"
# Every piece must carry the sm_90 kernels: the harness and CLI embed the fatbin whole; the
# wheel's extension too.
cuobjdump -lelf -lptx "$bundle/fatbin/circot.fatbin"
archs=$(cuobjdump -lelf "$bundle/fatbin/circot.fatbin" | grep -oE 'sm_[0-9]+' | sort -u | tr '\n' ' ')
[[ $archs == "sm_90 " ]] ||
    { echo "build.sh: the fatbin's SASS is for '$archs', not sm_90 alone" >&2; exit 1; }
# -lineinfo: the PTX carries .loc directives.
grep -q '^\s*\.loc' "$bundle/fatbin/circot.ptx" || { echo "build.sh: no line info in the PTX (-lineinfo)" >&2; exit 1; }
for bin in "$bundle/bin/gpu_check" "$bundle/bin/circot"; do
    grep -aq circot_sinkhorn_f32_k8 "$bin" || { echo "build.sh: $bin embeds no kernels" >&2; exit 1; }
done
python3 - "$bundle"/wheel/circot-*.whl <<'PY' || { echo "build.sh: the wheel is not an abi3 wheel with the kernels" >&2; exit 1; }
import sys, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
assert "-abi3-" in sys.argv[1] and "x86_64" in sys.argv[1], sys.argv[1]
native = wheel.read("circot/_native.abi3.so")
assert b"circot_sinkhorn_f32_k8" in native, "no kernels in circot/_native.abi3.so"
requires = [l for l in wheel.read(next(n for n in wheel.namelist() if n.endswith("METADATA"))).decode().splitlines()
            if l.startswith("Requires-Dist") and "extra ==" not in l]
print("wheel:", sys.argv[1].rsplit("/", 1)[-1], "requires", requires)
PY
rc=0
"$bundle/bin/gpu_check" probe >/dev/null 2>&1 || rc=$?
[[ $rc == 0 || $rc == 77 ]] || { echo "build.sh: bin/gpu_check probe exited $rc" >&2; exit 1; }

{
    echo "circot $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src kernels examples python build.rs Cargo.toml || echo '+changes'), built $(date -u +%FT%TZ) on $(uname -srm)"
    echo "nvcc: $("$CIRCOT_REAL_NVCC" --version | tail -n 1) -lineinfo; CIRCOT_CUDA_ARCHS=90; $(rustc --version)"
    echo
    (cd "$bundle" && find . -type f ! -name MANIFEST.txt -printf '%P\n' | sort | xargs sha256sum)
} >"$bundle/MANIFEST.txt"
size=$(du -sb "$bundle" | cut -f1)
echo "gpu-bundle: $((size / 1024)) KiB in $(find "$bundle" -type f | wc -l) files"
((size < 60 * 1024 * 1024)) || { echo "build.sh: the bundle is over 60 MiB" >&2; exit 1; }
echo "run there: bash gpu-bundle/run.sh LOG_DIR [COPY_DIR]"

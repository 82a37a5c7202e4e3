#!/usr/bin/env bash
# Fallback, on the GPU machine: when the embedded kernels do not load, build kernels/sinkhorn.cu
# with that machine's own nvcc (the same flags as build.rs, sm_90, -lineinfo) and load both that
# fatbin and the bundle's one with CuPy, to tell a toolkit/driver mismatch from a broken build.
#   fallback-build.sh OUT_DIR
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: fallback-build.sh OUT_DIR}
mkdir -p "$out"
nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
rc=0
if [[ -z "$nvcc" ]]; then
    echo "no nvcc on this machine"; rc=1
else
    "$nvcc" --version | tail -n 2
    flags=(-std=c++17 -O3 -ftz=true --Werror all-warnings -Xptxas=-warn-spills,-warn-lmem-usage,-Werror -lineinfo)
    if "$nvcc" -fatbin "${flags[@]}" -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_90,code=compute_90 \
        -o "$out/local.fatbin" "$here/kernels/sinkhorn.cu"; then
        echo "local nvcc build: ok ($(stat -c %s "$out/local.fatbin") bytes)"
        command -v cuobjdump >/dev/null && cuobjdump -res-usage "$out/local.fatbin" 2>&1 | grep -E "Function|REG" | head -n 24
    else
        echo "local nvcc build: FAILED"; rc=1
    fi
fi
python3 - "$here/fatbin/circot.fatbin" "$out/local.fatbin" <<'PY' || rc=1
import sys
try:
    import cupy
except Exception as e:
    print(f"no cupy to load the fatbins with: {e}"); sys.exit(1)
bad = 0
for path in sys.argv[1:]:
    try:
        m = cupy.RawModule(path=path)
        for k in ("k7", "k8", "kn"):
            m.get_function(f"circot_sinkhorn_f32_{k}")
        print(f"{path}: loads, entry points found")
    except Exception as e:
        bad = 1
        print(f"{path}: does NOT load: {e}")
sys.exit(bad)
PY
echo "summary: fallback build $([[ $rc == 0 ]] && echo ok || echo FAILED)"
exit $rc

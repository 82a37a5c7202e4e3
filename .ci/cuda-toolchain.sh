#!/usr/bin/env bash
# Installs a pinned CUDA compiler toolchain from PyPI into a venv (idempotent) and prints
# `export` lines for it. No GPU or driver is needed: only nvcc, ptxas, fatbinary, cuobjdump, nvdisasm
# and the CUDA headers.
#
#   eval "$(bash .ci/cuda-toolchain.sh)"    # then: cargo build, bash .ci/kernel-gates.sh
set -euo pipefail

venv="${CIRCOT_CUDA_VENV:-$HOME/.cache/circot-cuda}"
# Pinned together: nvcc 13.5 writes PTX ISA 9.5 and the headers must match the compiler.
pins=(
    nvidia-cuda-nvcc==13.5.37
    nvidia-cuda-runtime==13.5.37
    nvidia-cuda-crt==13.5.37
    nvidia-nvvm==13.5.37
    nvidia-cuda-cccl==13.3.5.0.6
    nvidia-cuda-cuobjdump==13.5.37
    nvidia-cuda-nvdisasm==13.5.37
)
stamp="$venv/.circot-pins"

if [[ ! -f "$stamp" || "$(cat "$stamp")" != "${pins[*]}" ]]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
    echo "${pins[*]}" >"$stamp"
fi

root="$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))')"
[[ -x "$root/bin/nvcc" ]] || { echo "cuda-toolchain: no nvcc under $root" >&2; exit 1; }
# The wheels share one cu13/ tree (bin/, include/, nvvm/, lib/), which is the layout nvcc expects
# of CUDA_HOME: it finds cicc, ptxas and the headers relative to its own bin/.
echo "export CUDA_HOME='$root'"
echo "export PATH='$root/bin':\"\$PATH\""

#!/usr/bin/env bash
# Writes kernels/COST_MODEL.txt: the kernels' instructions per problem-iteration per pipe, read
# from the sm_90 SASS (same code-generation flags as build.rs and .ci/kernel-gates.sh). With
# --check, writes nothing and fails if the committed file differs. `circot bench --model` reads
# the committed file and turns it into the H100 roofline.
#
#   bash tools/cost-model.sh [--check]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/kernels/COST_MODEL.txt"
arch=90
if ! command -v nvcc >/dev/null || ! command -v cuobjdump >/dev/null; then
    eval "$(bash "$root/.ci/cuda-toolchain.sh")"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
flags=(-std=c++17 -O3 -ftz=true --Werror all-warnings -Xptxas=-warn-spills,-warn-lmem-usage,-Werror)
nvcc -cubin "${flags[@]}" -arch="sm_$arch" -o "$work/k.cubin" "$root/kernels/sinkhorn.cu"
cuobjdump -sass "$work/k.cubin" >"$work/k.sass"
python3 "$root/tools/cost_model.py" "$work/k.sass" "$arch" >"$work/COST_MODEL.txt"
case "${1-}" in
    --check)
        diff -u "$out" "$work/COST_MODEL.txt"
        echo "cost-model: kernels/COST_MODEL.txt is up to date" ;;
    "")
        cp "$work/COST_MODEL.txt" "$out"
        echo "cost-model: wrote kernels/COST_MODEL.txt" ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

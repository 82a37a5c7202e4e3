#!/usr/bin/env bash
# nvcc with -lineinfo added (source lines in the SASS for compute-sanitizer and ncu; the machine
# code is unchanged). build.rs takes nvcc from $NVCC and has no flag hook, so tools/gpu-check/build.sh
# points NVCC here and CIRCOT_REAL_NVCC at the real compiler.
exec "${CIRCOT_REAL_NVCC:?set CIRCOT_REAL_NVCC to the real nvcc}" -lineinfo "$@"

// SIMT emulator: runs CUDA __global__ functions compiled by g++ (through kernels/host_compat.h), one
// block at a time, one fiber per CUDA thread, with warp collectives resolved under CUDA's mask rules.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "../../kernels/host_compat.h"

namespace circot_emu {

struct KernelInfo {
    const char* name;
    size_t params_size;    // sizeof the one by-value parameter
    unsigned max_threads;  // the kernel's __launch_bounds__
    void (*entry)(const void* params);
    bool listed;  // one of the crate's kernels (false: the emulator's own test kernels)
};

// Defined by the translation unit that includes the kernels (kernels.cpp).
extern const KernelInfo kKernels[];
extern const size_t kKernelCount;

// The block's dynamic shared memory (16-byte aligned, filled with 0xff at the start of every block).
// Kernels compiled by nvcc declare `extern __shared__`; only emulator-only kernels call this.
void* dynamic_shared();

// Wraps a kernel taking one parameter by value as a KernelInfo entry.
template <class P, void (*Kernel)(P)>
void invoke(const void* params) {
    P p;
    memcpy(static_cast<void*>(&p), params, sizeof p);
    Kernel(p);
}

}  // namespace circot_emu

extern "C" {
// How strictly a launch is emulated (mirrored by circot_emu::Mode in Rust).
enum { CIRCOT_EMU_MUFU_EXACT = 0, CIRCOT_EMU_MUFU_SEEDED = 1, CIRCOT_EMU_MUFU_BIAS = 2 };
enum { CIRCOT_EMU_ORDER_FORWARD = 0, CIRCOT_EMU_ORDER_REVERSE = 1, CIRCOT_EMU_ORDER_SHUFFLE = 2 };
struct CircotEmuMufu {
    int32_t kind;       // CIRCOT_EMU_MUFU_*: ex2, lg2 and __fdividef's rcp exact (correctly rounded),
                        // off by a seeded error in [-2, 2] ulp per call, or by bias_ulps
    int32_t bias_ulps;
    uint64_t seed;
};
struct CircotEmuMode {
    CircotEmuMufu mufu;
    int32_t lane_order;         // CIRCOT_EMU_ORDER_*: the order ready threads run in each round
    int32_t interleave_blocks;  // nonzero: several blocks in flight, one round each in turn
    uint64_t order_seed;
};
// Runs `kernel` to completion. Returns 0, or 1 with a NUL-terminated message in err (truncated to
// err_cap bytes). Unless null, sfu_counts[0..3] receives how many SFU evaluations the launch made:
// ex2, lg2 and __fdividef's reciprocal, over all threads.
int circot_emu_launch(const char* kernel, const uint32_t grid[3], const uint32_t block[3],
                      size_t dynamic_shared_bytes, const void* params, size_t params_size,
                      const CircotEmuMode* mode, char* err, size_t err_cap, uint64_t* sfu_counts);
// Name of the i-th listed kernel, or null past the last.
const char* circot_emu_kernel_name(size_t i);
}

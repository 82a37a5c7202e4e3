// Emulator-only kernels: deliberate bugs the emulator must report, and two correct kernels
// whose outputs pin down shuffle, vote and shared-memory semantics. Each thread writes out[i] for
// its global thread index i (out has grid x block entries, or 32 per lane for emu_test_collectives).
struct TestParams {
    uint32_t* out;
    uint32_t n;  // threads that take part; the rest return at once
    uint32_t reserved;
};

static __device__ unsigned global_thread(void) { return blockIdx.x * blockDim.x + threadIdx.x; }

// Bug: lanes >= n exit, yet the shuffle's mask names all 32 lanes.
extern "C" __global__ void emu_test_exited_lane(TestParams p) {
    const unsigned i = global_thread();
    if (threadIdx.x % 32 >= p.n) return;
    p.out[i] = __shfl_sync(0xffffffffu, i, 0);
}

// Bug: odd lanes name all 32 lanes, even lanes leave lane 31 out: the masks disagree.
extern "C" __global__ void emu_test_divergent_mask(TestParams p) {
    const unsigned lane = threadIdx.x % 32;
    const unsigned mask = lane % 2 ? 0xffffffffu : 0x7fffffffu;
    p.out[global_thread()] = __shfl_xor_sync(mask, lane, 1);
}

// Bug: half a warp waits at __syncthreads, the other half in a shuffle that needs the first half.
extern "C" __global__ void emu_test_syncthreads_vs_shfl(TestParams p) {
    const unsigned lane = threadIdx.x % 32;
    if (lane < 16) {
        __syncthreads();
    } else {
        p.out[global_thread()] = __shfl_sync(0xffffffffu, lane, 0);
    }
}

// Bug: the lanes of the lower half shuffle among themselves but read lane 20.
extern "C" __global__ void emu_test_reads_outside_mask(TestParams p) {
    const unsigned lane = threadIdx.x % 32;
    if (lane < 16) p.out[global_thread()] = __shfl_sync(0x0000ffffu, lane, 20);
}

// Bug: lane 1 passes a mask without itself.
extern "C" __global__ void emu_test_caller_outside_mask(TestParams p) {
    p.out[global_thread()] = __ballot_sync(0x1u, 1);
}

// Correct: each lane records shuffles with widths, a partial-mask shuffle, and votes.
extern "C" __global__ void emu_test_collectives(TestParams p) {
    const unsigned lane = threadIdx.x % 32;
    uint32_t* o = p.out + global_thread() * 8;
    const unsigned v = 100 + lane;
    o[0] = __shfl_sync(0xffffffffu, v, 11, 8);      // lane 3 of each group of 8
    o[1] = __shfl_up_sync(0xffffffffu, v, 3, 16);   // own value in the first 3 lanes of each 16
    o[2] = __shfl_down_sync(0xffffffffu, v, 5);     // own value in the last 5 lanes
    o[3] = __shfl_xor_sync(0xffffffffu, v, 6);
    o[4] = __ballot_sync(0xffffffffu, lane % 3 == 0);
    o[5] = __any_sync(0xffffffffu, lane == 17);
    o[6] = __all_sync(0xffffffffu, lane < 31);
    o[7] = lane < 16 ? __shfl_xor_sync(0x0000ffffu, v, 1) : __shfl_down_sync(0xffff0000u, v, 1);
}

// Correct: a block reverses its thread indices through dynamic shared memory. In a partial last
// block the threads past n exit between the two barriers (exited threads count as arrived).
extern "C" __global__ void emu_test_shared_reverse(TestParams p) {
    uint32_t* s = static_cast<uint32_t*>(circot_emu::dynamic_shared());
    const unsigned i = global_thread();
    s[threadIdx.x] = i;
    __syncthreads();
    if (i >= p.n) return;
    p.out[i] = s[blockDim.x - 1 - threadIdx.x];
    __syncthreads();
}

#define CIRCOT_EMU_TEST_KERNELS(X)                                                        \
    X(emu_test_exited_lane)                                                               \
    X(emu_test_divergent_mask)                                                            \
    X(emu_test_syncthreads_vs_shfl)                                                       \
    X(emu_test_reads_outside_mask)                                                        \
    X(emu_test_caller_outside_mask)                                                       \
    X(emu_test_collectives)                                                               \
    X(emu_test_shared_reverse)

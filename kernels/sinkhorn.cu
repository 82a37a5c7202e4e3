// Sinkhorn entry points: circot_sinkhorn_{f32,f16,bf16}_k{7,8,n}, each taking one SinkhornParams by
// value (params.h). The math is in sinkhorn.cuh.
//
// Thread mapping (THREADS_PER_PROBLEM):
//   _k7, _k8: 1. One problem's K^2 = 64 exponentials per half-iteration are independent, so a thread
//             has enough ILP on its own, every lane of a warp does useful work (32 problems per warp),
//             and no shuffles are needed. Warp-per-problem would leave 24 of 32 lanes idle at K = 8,
//             i.e. 4x the MUFU issue slots per problem. The scaled cost is staged in shared memory
//             once per block, then held in registers for the whole loop (~130-190 registers per
//             thread: few warps per SM, but each has 8 independent exponentials per row in flight).
//   _kn:      32 (one warp, lane = class, any K <= 32). A thread per problem would need K^2 = 1024
//             exponentials in series and 32-float arrays indexed at run time (local memory). Within
//             the Gibbs bound it runs the Gibbs-kernel loop too, with G = 2^{-c} in shared memory.
//
// Launch contract, for every entry point:
//   blockDim = (n, 1, 1) with n a multiple of 32 and n <= kMaxBlockThreads (256);
//   gridDim = (any x >= 1, 1, 1): a grid-stride loop covers all problems, so the grid may be capped;
//   no dynamic shared memory (static shared: 224/256 bytes for _k7/_k8, 22 KB for _kn).
//   Suggested: n = 128, gridDim.x = min(ceil(batch * THREADS_PER_PROBLEM / n), 65535).
// A _k7/_k8 launch solves problems work[0..*work_count) or, with work null, 0..batch (params.h,
// rounds); a _kn launch always solves 0..batch to the end (WarpTeam::kRounds).
#include "sinkhorn.cuh"

namespace circot {

constexpr int kMaxBlockThreads = 256;

// How many problems this launch solves, and the one at position `pos`.
__device__ __forceinline__ int64_t launch_size(const SinkhornParams& p) {
    return p.work ? static_cast<int64_t>(__ldg(p.work_count)) : p.batch;
}
__device__ __forceinline__ int64_t problem_at(const SinkhornParams& p, int64_t pos) {
    return p.work ? static_cast<int64_t>(__ldg(p.work + pos)) : pos;
}

// Each kernel's static shared memory, declared in the stamped entry point itself (not in these
// templates): the emulator gives a non-template function's statics a copy per block, poisoned at
// the block's start, and can then run blocks interleaved (g++ ignores the section of template
// statics).
template <int K>
struct ThreadShared {
    alignas(16) float rows[K * ThreadTeam<K>::kStride];
};
struct WarpShared {
    alignas(16) float rows[32 * WarpTeam::kStride];
    alignas(16) float cols[32 * WarpTeam::kStride];
    alignas(16) float gather[kMaxBlockThreads / 32][64];
    alignas(16) float g_rows[32 * WarpTeam::kStride];
    alignas(16) float g_cols[32 * WarpTeam::kStride];
    alignas(16) float weights[kMaxBlockThreads / 32][128];   // WarpTeam::weights of each warp
};

template <class T, int K>
__device__ __forceinline__ void sinkhorn_thread(const SinkhornParams& p, ThreadShared<K>& shared) {
    using Team = ThreadTeam<K>;
    float* const rows = shared.rows;
    load_scaled_cost(p, K, Team::kStride, rows, nullptr);
    Team team{rows, false};
    team.near = near_eps(team.max_cost());
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x, n = launch_size(p);
    for (int64_t pos = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; pos < n; pos += stride) {
        solve<T>(team, p, problem_at(p, pos));
    }
}

// Whole warps walk the problems together (blockDim is a multiple of 32) and every lane makes the same
// trips: the loop bound depends only on the block, and a warp past the last problem re-solves that
// problem without storing. So all 32 lanes are present in each collective, and ptxas can see it: a
// per-warp trip count would make it treat every shuffle as possibly divergent (a convergence check
// and an out-of-line WARPSYNC call per collective, whose calling convention spilled registers).
template <class T>
__device__ __forceinline__ void sinkhorn_warp(const SinkhornParams& p, WarpShared& shared) {
    float* const rows = shared.rows;
    float* const cols = shared.cols;
    float* const g_rows = shared.g_rows;
    float* const g_cols = shared.g_cols;
    load_scaled_cost(p, 32, WarpTeam::kStride, rows, cols);
    load_gibbs_kernel(p.k, 32 * WarpTeam::kStride, WarpTeam::kStride, rows, cols, g_rows, g_cols);
    const int warp = threadIdx.x / 32;
    const int64_t warps = blockDim.x / 32;
    // One team for all trips: its double buffer keeps alternating across problems.
    const int lane = static_cast<int>(threadIdx.x % 32);
    WarpTeam team{rows, cols, shared.gather[warp], lane, p.k, 0, true, g_rows, g_cols, false, false, shared.weights[warp]};
    // max C/eps over the whole cost, lane i taking row i with its zero padding (every warp alike,
    // so the block agrees; lanes >= K read padding only).
    float max_c = 0.f;
    for (int j = 0; j < WarpTeam::kStride; ++j) max_c = fmaxf(max_c, rows[lane * WarpTeam::kStride + j]);
    team.gibbs_ok = within_gibbs_bound(team.max(max_c));
    team.near = near_eps(team.max(max_c));
    for (int64_t first = blockIdx.x * warps; first < p.batch; first += gridDim.x * warps) {
        team.live = first + warp < p.batch;
        solve<T>(team, p, team.live ? first + warp : p.batch - 1);
    }
}

}  // namespace circot

// (suffix, element type) of every stamped dtype; the emulator builds its kernel table from it too.
#define CIRCOT_DTYPES(X) X(f32, float) X(f16, __half) X(bf16, __nv_bfloat16)

// _kn names a minimum of one block per SM: without it ptxas caps the warp kernel at 48 registers
// for occupancy and spills a few values of the near-form potential update to local memory.
#define CIRCOT_STAMP(suffix, T)                                                                      \
    extern "C" __global__ void __launch_bounds__(circot::kMaxBlockThreads)                          \
        circot_sinkhorn_##suffix##_k7(SinkhornParams p) {                                            \
        __shared__ circot::ThreadShared<7> shared;                                                   \
        circot::sinkhorn_thread<T, 7>(p, shared);                                                    \
    }                                                                                                \
    extern "C" __global__ void __launch_bounds__(circot::kMaxBlockThreads)                          \
        circot_sinkhorn_##suffix##_k8(SinkhornParams p) {                                            \
        __shared__ circot::ThreadShared<8> shared;                                                   \
        circot::sinkhorn_thread<T, 8>(p, shared);                                                    \
    }                                                                                                \
    extern "C" __global__ void __launch_bounds__(circot::kMaxBlockThreads, 1)                          \
        circot_sinkhorn_##suffix##_kn(SinkhornParams p) {                                            \
        __shared__ circot::WarpShared shared;                                                        \
        circot::sinkhorn_warp<T>(p, shared);                                                         \
    }

CIRCOT_DTYPES(CIRCOT_STAMP)

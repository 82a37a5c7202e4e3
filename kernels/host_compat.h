// Lets g++ compile kernels/*.cu and *.cuh without any CUDA header: the qualifiers, the intrinsics the
// kernels use, the half types, and the thread/collective built-ins, which are routed to the SIMT
// emulator (emu/), the only definer of `circot_emu::*`.
#pragma once
#ifndef __CUDACC__

#include <math.h>
#include <stdint.h>
#include <string.h>

#define __host__
#define __device__
#define __global__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define CIRCOT_UNROLL _Pragma("GCC unroll 32")
#define CIRCOT_NO_UNROLL
// A function-local static in the `circot_shared` section: the emulator gives every block in flight
// its own copy of that section (swapped in while the block runs) and poisons it when a block starts.
// g++ ignores the section for statics of template functions: those stay one copy, as before (the
// emulator then runs one block at a time).
#define __shared__ static __attribute__((section("circot_shared")))

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
};
struct alignas(16) float4 {
    float x, y, z, w;
};

namespace circot_emu {
enum class Shfl { Idx, Up, Down, Xor };
enum class Vote { Ballot, Any, All };
const uint3& thread_idx();
const uint3& block_idx();
const dim3& block_dim();
const dim3& grid_dim();
void syncthreads();
void syncwarp(unsigned mask);
uint32_t shfl(Shfl kind, unsigned mask, uint32_t value, int arg, int width);
unsigned vote(Vote kind, unsigned mask, int predicate);
// The SFU approximations (MUFU.EX2, MUFU.LG2, and __fdividef's MUFU.RCP): correctly rounded, or
// off by a few ulp as the launch's mode says.
float mufu_ex2(float x);
float mufu_lg2(float x);
float mufu_div(float a, float b);

template <class T>
T shfl_any(Shfl kind, unsigned mask, T value, int arg, int width) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "CUDA shuffles 32- and 64-bit values");
    uint32_t words[sizeof(T) / 4];
    memcpy(words, &value, sizeof(T));
    for (uint32_t& w : words) w = shfl(kind, mask, w, arg, width);  // 64-bit: two shuffles, as CUDA
    memcpy(&value, words, sizeof(T));
    return value;
}
}  // namespace circot_emu

#define threadIdx (::circot_emu::thread_idx())
#define blockIdx (::circot_emu::block_idx())
#define blockDim (::circot_emu::block_dim())
#define gridDim (::circot_emu::grid_dim())
constexpr int warpSize = 32;

inline void __syncthreads() { circot_emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { circot_emu::syncwarp(mask); }
template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = warpSize) {
    return circot_emu::shfl_any(circot_emu::Shfl::Idx, mask, v, src, width);
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
    return circot_emu::shfl_any(circot_emu::Shfl::Up, mask, v, static_cast<int>(delta), width);
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
    return circot_emu::shfl_any(circot_emu::Shfl::Down, mask, v, static_cast<int>(delta), width);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize) {
    return circot_emu::shfl_any(circot_emu::Shfl::Xor, mask, v, lane_mask, width);
}
inline unsigned __ballot_sync(unsigned mask, int p) { return circot_emu::vote(circot_emu::Vote::Ballot, mask, p); }
inline int __any_sync(unsigned mask, int p) { return circot_emu::vote(circot_emu::Vote::Any, mask, p) != 0; }
inline int __all_sync(unsigned mask, int p) { return circot_emu::vote(circot_emu::Vote::All, mask, p) != 0; }

// Math intrinsics as the device evaluates them. Subnormals: the device build uses -ftz=true and the
// emulator sets the x86 FTZ and DAZ bits for the duration of a launch, so flushing matches everywhere.
inline float __expf(float x) { return circot_emu::mufu_ex2(x * 1.44269504088896341f); }  // ex2.approx(x·log2 e)
inline float __logf(float x) { return circot_emu::mufu_lg2(x) * 0.693147180559945309f; }  // lg2.approx(x)·ln 2
inline float __log2f(float x) { return circot_emu::mufu_lg2(x); }
inline float __fdividef(float a, float b) { return circot_emu::mufu_div(a, b); }
// exp2f as the kernels use it (ex2.approx.ftz under -ftz=true).
inline float circot_ex2_approx(float x) { return circot_emu::mufu_ex2(x); }
inline float __int_as_float(int i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}
template <class T>
T __ldg(const T* p) {
    return *p;
}
// A launch's fibers share one OS thread, but launches may run on several: a real atomic.
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }

// f16: GCC 12's _Float16 converts with round-to-nearest-even, like cvt.rn.f16.f32.
using __half = _Float16;
inline float __half2float(__half h) { return static_cast<float>(h); }
inline __half __float2half_rn(float f) { return static_cast<__half>(f); }

// bf16: the top 16 bits of an f32, rounded to nearest even; NaN stays a (quiet) NaN.
struct __nv_bfloat16 {
    uint16_t bits;
};
inline float __bfloat162float(__nv_bfloat16 h) {
    const uint32_t u = static_cast<uint32_t>(h.bits) << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return {static_cast<uint16_t>((u >> 16) | 0x40u)};
    u += 0x7fffu + ((u >> 16) & 1u);
    return {static_cast<uint16_t>(u >> 16)};
}

#endif  // __CUDACC__

// Per-problem log-domain Sinkhorn (shared/design/numerics.md), written once for two "teams" that solve
// one problem: ThreadTeam<K> (one thread holds all K classes in registers; K known at compile time) and
// WarpTeam (one warp, lane = class, any K <= 32). The entry points are in sinkhorn.cu; g++ compiles
// the same code through host_compat.h for the SIMT emulator in emu/.
#pragma once
#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define CIRCOT_UNROLL _Pragma("unroll")
// The warp kernel's passes over float4 columns: one body, ceil(K/4) trips, so that the cost model
// (tools/cost_model.py) can count them; ptxas would unroll by 4 with remainder loops.
#define CIRCOT_NO_UNROLL _Pragma("unroll 1")
#else
#include "host_compat.h"
#endif
#include "params.h"

namespace circot {

// Units. The SFU evaluates only 2^x and log2 x (MUFU.EX2, MUFU.LG2): exp(x) would cost an FMUL by
// log2 e before every MUFU.EX2. So log2(e)/eps is folded into the cost once per block and the
// potentials are carried in the same units: u = f·log2(e)/eps, v = g·log2(e)/eps, la = log2 a,
// lb = log2 beta. An LSE term is then FADD + MUFU.EX2, and only the outputs are scaled by eps·ln 2.
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2 = 0.693147180559945309f;

__host__ __device__ __forceinline__ float inf() { return __int_as_float(0x7f800000); }

// Built with -ftz=true, each is one MUFU instruction (about 2 ulp); log2(0) = -inf.
#ifdef __CUDACC__
__host__ __device__ __forceinline__ float ex2(float x) { return exp2f(x); }
#else
__host__ __device__ __forceinline__ float ex2(float x) { return circot_ex2_approx(x); }  // the emulator's MUFU
#endif
__host__ __device__ __forceinline__ float lg2(float x) { return __log2f(x); }

// -LSE2(x) = -log2 sum_j 2^x_j, accumulated in f32 after subtracting the max. Zero masses enter as
// x = -inf. If all are -inf, x - max would be -inf - (-inf) = NaN: subtract 0 instead (every term is
// then 2^-inf = 0) and return -(-inf). Selects, not branches: lanes of a warp stay converged.
__host__ __device__ __forceinline__ float neg_lse2_finish(float m, float s) {
    return m == -inf() ? inf() : -(m + lg2(s));
}

template <int N>
__host__ __device__ __forceinline__ float neg_lse2(const float (&x)[N]) {
    float m = x[0];
CIRCOT_UNROLL
    for (int j = 1; j < N; ++j) m = fmaxf(m, x[j]);
    const float shift = m == -inf() ? 0.f : m;
    float s = ex2(x[0] - shift);
CIRCOT_UNROLL
    for (int j = 1; j < N; ++j) s += ex2(x[j] - shift);
    return neg_lse2_finish(m, s);
}

// Large eps: every exponent y_j = v_j - c_ij is about max C/eps, and the plain form adds it to lb_j
// first, keeping only 2^-24·|lb_j| of it, so u (times eps) carried an error of about eps·2^-24,
// unbounded in eps. When the y_j of a row are within kNearSpread of each other (log2 units) the
// near form -(m + log2(1 + sum_j beta_j·(2^(y_j - m) - 1))) (m = max y, using sum beta = 1) keeps
// them: every term has the same sign, so the error is 2^-24 relative to the spread. Used by the
// launches below the scaling form's range (near_eps(), max C/eps < kScalingMinCostOverEps), with the
// plain form for a row whose spread is wider (a warm start's first update); the CPU's
// src/lse.rs::weighted_lse is the same rule.
constexpr float kNearSpread = 1.f;

// c[0] + x·(c[1] + x·(...)) by Horner's rule with FMAs, highest coefficient last in `c`.
template <int N>
__host__ __device__ __forceinline__ float horner(const float (&c)[N], float x) {
    float p = c[N - 1];
CIRCOT_UNROLL
    for (int n = N - 2; n >= 0; --n) p = fmaf(p, x, c[n]);
    return p;
}

// 2^x - 1 for x in [-kNearSpread, 0]: e^t - 1 (t = x ln 2, |t| <= 0.7) by its Taylor series to t^10
// (remainder below 2^-26 relative), FMAs only: the same bits in the emulator and on the GPU.
__host__ __device__ __forceinline__ float ex2m1_near(float x) {
    constexpr float c[] = {1.f,         0.5f,           1.f / 6.f,      1.f / 24.f,      1.f / 120.f,
                           1.f / 720.f, 1.f / 5040.f,   1.f / 40320.f,  1.f / 362880.f,  1.f / 3628800.f};
    const float t = x * kLn2;
    return horner(c, t) * t;
}

// log2(1 + s) for s in [-1/2, 0] (the near form's sum): 2·atanh(z)/ln 2, z = s/(2 + s) in [-1/3, 0], by
// its odd series to z^17 (remainder below 2^-25 relative); log1pf would be a call (and a spill).
__host__ __device__ __forceinline__ float log2_1p_near(float s) {
    constexpr float c[] = {1.f, 1.f / 3.f, 1.f / 5.f, 1.f / 7.f, 1.f / 9.f, 1.f / 11.f, 1.f / 13.f, 1.f / 15.f, 1.f / 17.f};
    const float z = __fdividef(s, 2.f + s);
    return horner(c, z * z) * z * (2.f * kLog2e);
}

// -log2 sum_j w_j·2^(y_j) from the near form, given m = max y and s = sum_j w_j·(2^(y_j - m) - 1).
__host__ __device__ __forceinline__ float neg_near_finish(float m, float s) { return -(m + log2_1p_near(s)); }

__host__ __device__ __forceinline__ float to_f32(float x) { return x; }
__host__ __device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__host__ __device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

template <class T>
__host__ __device__ __forceinline__ float load(const void* base, int64_t i) {
    return to_f32(__ldg(static_cast<const T*>(base) + i));
}

template <class T>
__host__ __device__ __forceinline__ T from_f32(float x);
template <>
__host__ __device__ __forceinline__ float from_f32<float>(float x) {
    return x;
}
template <>
__host__ __device__ __forceinline__ __half from_f32<__half>(float x) {
    return __float2half_rn(x);
}
template <>
__host__ __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}

template <class T>
__host__ __device__ __forceinline__ void store(void* base, int64_t i, float x) {
    static_cast<T*>(base)[i] = from_f32<T>(x);
}

// Divisions use __fdividef (MUFU.RCP + FMUL, 2 ulp): an IEEE division brings a slow-path subroutine
// whose calling convention costs registers and stack; none of the divisors here is near the
// __fdividef range limit (|b| > 2^126).

// Scaled cost c = C·log2(e)/eps, in shared memory as `rows` (c[i][j], row i = source class) and,
// unless null, `cols` (its transpose), each row padded to `stride` floats with zeros. Called by every
// thread of the block.
__device__ __forceinline__ void load_scaled_cost(const SinkhornParams& p, int n_rows, int stride,
                                                 float* rows, float* cols) {
    const float scale = __fdividef(kLog2e, p.eps);
    const int k = p.k;
    for (int t = threadIdx.x; t < n_rows * stride; t += blockDim.x) {
        const int i = t / stride, j = t % stride;
        const bool in = i < k && j < k;
        rows[t] = in ? __ldg(p.cost + i * k + j) * scale : 0.f;
        if (cols) cols[t] = in ? __ldg(p.cost + j * k + i) * scale : 0.f;
    }
    __syncthreads();
}

// G = 2^{-c} and its transpose from the scaled cost in shared memory (same layout, zero padding),
// for the warp team's Gibbs-kernel loop. Called by every thread of the block.
__device__ __forceinline__ void load_gibbs_kernel(int k, int n, int stride, const float* rows, const float* cols,
                                                  float* g_rows, float* g_cols) {
    for (int t = threadIdx.x; t < n; t += blockDim.x) {
        const bool in = t / stride < k && t % stride < k;
        g_rows[t] = in ? ex2(-rows[t]) : 0.f;
        g_cols[t] = in ? ex2(-cols[t]) : 0.f;
    }
    __syncthreads();
}

// Sinkhorn through the Gibbs kernel G = 2^{-c} (gibbs_iterate) is exact to rounding while 2^{-max c}
// is a normal float with a wide margin: max C/eps <= kGibbsMaxCostOverEps (then every s_i, t_j >=
// 2^{-max c} > 2^-73, and a term that underflows weighs below 2^-53 of its sum); beyond it solve()
// keeps the log-sum-exp form. The same for every problem of a launch: the cost and eps are shared.
// Below kScalingMinCostOverEps (eps > 2·max C) the scaling form's potentials, carried as 2^u, keep u
// only to eps·2^-24 (as in src/problem.rs::SCALING_MIN_RATIO): such launches take the log-sum-exp
// form with its near form instead (near_eps).
constexpr float kGibbsMaxCostOverEps = 50.f;
constexpr float kScalingMinCostOverEps = 0.5f;
__host__ __device__ __forceinline__ bool within_gibbs_bound(float max_c) {
    return max_c >= kScalingMinCostOverEps * kLog2e && max_c <= kGibbsMaxCostOverEps * kLog2e;
}
__host__ __device__ __forceinline__ bool near_eps(float max_c) { return max_c < kScalingMinCostOverEps * kLog2e; }

// One thread per problem, all K classes in registers: slot s is class s. Only `rows` is used: the
// compiler keeps its K^2 values in registers across the loop (loop-invariant loads), one copy serving
// both updates.
template <int K>
struct ThreadTeam {
    static constexpr int kSlots = K;
    // A lane per problem: a warp waits for its slowest lane, which rounds (params.h) avoid.
    static constexpr bool kRounds = true;
    static constexpr int kStride = (K + 3) / 4 * 4;
    const float* rows;
    bool near;  // near_eps() of the launch's cost: the log-sum-exp updates may take the near form

    __host__ __device__ __forceinline__ int k() const { return K; }
    __host__ __device__ __forceinline__ int cls(int s) const { return s; }
    __host__ __device__ __forceinline__ bool valid(int) const { return true; }
    __host__ __device__ __forceinline__ bool active() const { return true; }
    __host__ __device__ __forceinline__ bool stores(int) const { return true; }
    __host__ __device__ __forceinline__ bool leader() const { return true; }
    __host__ __device__ __forceinline__ float sum(float x) const { return x; }
    __host__ __device__ __forceinline__ float max(float x) const { return x; }
    __host__ __device__ __forceinline__ bool all(bool x) const { return x; }
    __host__ __device__ __forceinline__ float cost(int i, int j) const { return rows[i * kStride + j]; }

    // max C/eps (log2 units) over the K x K cost, padding excluded.
    __host__ __device__ __forceinline__ float max_cost() const {
        float max_c = 0.f;
CIRCOT_UNROLL
        for (int i = 0; i < K; ++i) {
CIRCOT_UNROLL
            for (int j = 0; j < K; ++j) max_c = fmaxf(max_c, cost(i, j));
        }
        return max_c;
    }
    __host__ __device__ __forceinline__ bool gibbs() const { return within_gibbs_bound(max_cost()); }

    // G = 2^{-c} in registers for the whole loop: rows(w) = G w, cols(q) = G^T q.
    struct Gibbs {
        float g[K][K];
        __host__ __device__ __forceinline__ void rows(const float (&w)[K], float (&out)[K]) const {
CIRCOT_UNROLL
            for (int i = 0; i < K; ++i) {
                float acc = 0.f;
CIRCOT_UNROLL
                for (int j = 0; j < K; ++j) acc = fmaf(g[i][j], w[j], acc);
                out[i] = acc;
            }
        }
        __host__ __device__ __forceinline__ void cols(const float (&q)[K], float (&out)[K]) const {
CIRCOT_UNROLL
            for (int j = 0; j < K; ++j) {
                float acc = 0.f;
CIRCOT_UNROLL
                for (int i = 0; i < K; ++i) acc = fmaf(g[i][j], q[i], acc);
                out[j] = acc;
            }
        }
    };
    __host__ __device__ __forceinline__ Gibbs gibbs_kernel() const {
        Gibbs G;
CIRCOT_UNROLL
        for (int i = 0; i < K; ++i) {
CIRCOT_UNROLL
            for (int j = 0; j < K; ++j) G.g[i][j] = ex2(-cost(i, j));
        }
        return G;
    }

    // Nothing to publish: each thread holds its problem's weights (see WarpTeam::publish_weights).
    __host__ __device__ __forceinline__ void publish_weights(const float (&)[K], const float (&)[K], const float (&)[K],
                                                             const float (&)[K]) {}

    // -log2 sum_j w_j·2^(y_j): the plain form on x_j = lw_j + y_j, or (near launches) the near form.
    __host__ __device__ __forceinline__ float weighted_lse(const float (&lw)[K], const float (&w)[K],
                                                           const float (&y)[K]) const {
        if (near) {
            float m = -inf(), lo = inf();
CIRCOT_UNROLL
            for (int j = 0; j < K; ++j) {
                m = w[j] > 0.f ? fmaxf(m, y[j]) : m;
                lo = w[j] > 0.f ? fminf(lo, y[j]) : lo;
            }
            if (m - lo <= kNearSpread) {
                float s = 0.f;
CIRCOT_UNROLL
                for (int j = 0; j < K; ++j) s += w[j] > 0.f ? w[j] * ex2m1_near(y[j] - m) : 0.f;
                return neg_near_finish(m, s);
            }
        }
        float x[K];
CIRCOT_UNROLL
        for (int j = 0; j < K; ++j) x[j] = lw[j] + y[j];
        return neg_lse2(x);
    }

    // f-update shape: out_i = -log2 sum_j bt_j·2^(v_j - c[i][j]), lb = log2 bt.
    __host__ __device__ __forceinline__ void row_lse(const float (&lb)[K], const float (&bt)[K], const float (&v)[K],
                                                     float (&out)[K]) {
CIRCOT_UNROLL
        for (int i = 0; i < K; ++i) {
            if (near) {
                float y[K];
CIRCOT_UNROLL
                for (int j = 0; j < K; ++j) y[j] = v[j] - cost(i, j);
                out[i] = weighted_lse(lb, bt, y);
            } else {
                out[i] = neg_lse2_of(lb, v, i, true);
            }
        }
    }

    // g-update shape: out_j = -log2 sum_i a_i·2^(u_i - c[i][j]), la = log2 a.
    __host__ __device__ __forceinline__ void col_lse(const float (&la)[K], const float (&a)[K], const float (&u)[K],
                                                     float (&out)[K]) {
CIRCOT_UNROLL
        for (int j = 0; j < K; ++j) {
            if (near) {
                float y[K];
CIRCOT_UNROLL
                for (int i = 0; i < K; ++i) y[i] = u[i] - cost(i, j);
                out[j] = weighted_lse(la, a, y);
            } else {
                out[j] = neg_lse2_of(la, u, j, false);
            }
        }
    }

    // The plain form as before the near form existed, x = (lw + v) - c, bit for bit.
    __host__ __device__ __forceinline__ float neg_lse2_of(const float (&lw)[K], const float (&v)[K], int r,
                                                          bool row) const {
        float x[K];
CIRCOT_UNROLL
        for (int j = 0; j < K; ++j) x[j] = (lw[j] + v[j]) - (row ? cost(r, j) : cost(j, r));
        return neg_lse2(x);
    }

    // f(i, j, wr_i + wc_j - c[i][j]) for every pair.
    template <class F>
    __host__ __device__ __forceinline__ void for_each_pair(const float (&wr)[K], const float (&wc)[K], F f) {
CIRCOT_UNROLL
        for (int i = 0; i < K; ++i) {
CIRCOT_UNROLL
            for (int j = 0; j < K; ++j) f(i, j, wr[i] + wc[j] - cost(i, j));
        }
    }
};

// One warp per problem, lane = class (lanes >= K carry zero mass and are left out of sums and stores,
// but take part in every collective). Vectors are exchanged through a per-warp shared buffer, read
// by every lane as broadcast float4 loads alongside its own cost row.
//
// Team interface used by solve(): kSlots classes per thread, slot s is class cls(s) if valid(s);
// stores(s)/leader() say who writes per-class/per-problem outputs (active(): the problem is real);
// sum/max/all reduce over the team; row_lse/col_lse are the f/g-update shapes; gibbs() says whether
// the Gibbs-kernel loop applies, whose products gibbs_kernel() gives.
struct WarpTeam {
    static constexpr int kSlots = 1;
    // A warp per problem: no lane waits for another problem, so rounds would only add launches
    // (and their state cost registers). Work lists and round_cap are ignored.
    static constexpr bool kRounds = false;
    // 32 classes + 4: rows stay 16-byte aligned and the 8 lanes of one LDS.128 phase hit distinct banks.
    static constexpr int kStride = 36;
    const float* rows;
    const float* cols;
    float* gather;  // 2 x 32 floats of this warp: double-buffered, so one __syncwarp per exchange
    int lane;
    int kk;
    int phase;
    bool live;  // false: the warp is past the last problem and repeats one only to stay converged
    // G = 2^{-c} and its transpose, like rows/cols; used only if `gibbs_ok` (max C/eps within the
    // Gibbs bound, the same for the whole launch).
    const float* g_rows;
    const float* g_cols;
    bool gibbs_ok;
    // near_eps() of the launch's cost, and this warp's copy of its problem's weights for the near
    // form: a, log2 a, bt, log2 bt, 32 floats each, lanes >= K zero mass (publish_weights).
    bool near;
    float* weights;

    __host__ __device__ __forceinline__ int k() const { return kk; }
    __host__ __device__ __forceinline__ int cls(int) const { return lane; }
    __host__ __device__ __forceinline__ bool valid(int) const { return lane < kk; }
    __host__ __device__ __forceinline__ bool active() const { return live; }
    __host__ __device__ __forceinline__ bool stores(int s) const { return live && valid(s); }
    __host__ __device__ __forceinline__ bool leader() const { return live && lane == 0; }
    // Butterfly: every lane ends with the same bits (each step adds the same two operands), so a loop
    // exit that depends on a sum is warp-uniform.
    __host__ __device__ __forceinline__ float sum(float x) const {
CIRCOT_UNROLL
        for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
        return x;
    }
    __host__ __device__ __forceinline__ float max(float x) const {
CIRCOT_UNROLL
        for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
        return x;
    }
    __host__ __device__ __forceinline__ bool all(bool x) const { return __all_sync(0xffffffffu, x); }

    // Publishes every lane's w in this warp's next buffer, for all lanes to read. Lanes >= K publish
    // -inf (their mass is zero), so the padding of the last float4 adds nothing.
    __host__ __device__ __forceinline__ const float4* exchange(float w) {
        float* buf = gather + 32 * phase;
        phase ^= 1;
        buf[lane] = w;
        __syncwarp();
        return reinterpret_cast<const float4*>(buf);
    }

    __host__ __device__ __forceinline__ float cost(int i, int j) const { return rows[i * kStride + j]; }
    __host__ __device__ __forceinline__ bool gibbs() const { return gibbs_ok; }
    // The Gibbs products through the exchange buffer: rows(w) = G w, cols(q) = G^T q, lane = class.
    struct Gibbs {
        WarpTeam& t;
        __host__ __device__ __forceinline__ void rows(const float (&w)[1], float (&out)[1]) const {
            out[0] = t.dot(w[0], t.g_rows);
        }
        __host__ __device__ __forceinline__ void cols(const float (&q)[1], float (&out)[1]) const {
            out[0] = t.dot(q[0], t.g_cols);
        }
    };
    __host__ __device__ __forceinline__ Gibbs gibbs_kernel() { return Gibbs{*this}; }

    // The near form reads every class's weight and log2 weight: each lane publishes its own, once per
    // problem. The __syncwarp before keeps the previous problem's readers ahead of the writes. Done
    // in every launch, near or not: a __syncwarp under `if (near)` would give every shuffle of the
    // loop a collective slow path (the compiler cannot prove the branch warp-uniform).
    __host__ __device__ __forceinline__ void publish_weights(const float (&a)[1], const float (&la)[1],
                                                             const float (&bt)[1], const float (&lb)[1]) {
        __syncwarp();
        const bool in = lane < kk;
        weights[lane] = in ? a[0] : 0.f;
        weights[32 + lane] = in ? la[0] : -inf();
        weights[64 + lane] = in ? bt[0] : 0.f;
        weights[96 + lane] = in ? lb[0] : -inf();
        __syncwarp();
    }

    __host__ __device__ __forceinline__ void row_lse(const float (&lb)[1], const float (&)[1], const float (&v)[1],
                                                     float (&out)[1]) {
        out[0] = lse_either(lb[0], v[0], rows, weights + 64);
    }
    __host__ __device__ __forceinline__ void col_lse(const float (&la)[1], const float (&)[1], const float (&u)[1],
                                                     float (&out)[1]) {
        out[0] = lse_either(la[0], u[0], cols, weights);
    }

    // lse(lw + v, c), or for a near launch lse_near: one exchange before the branch, so that no
    // __syncwarp sits under a condition the compiler cannot prove warp-uniform (it would add a
    // collective slow path to every shuffle of the loop).
    __host__ __device__ __forceinline__ float lse_either(float lw, float v, const float* c, const float* wl) {
        const float4* x = exchange(near ? (lane < kk ? v : 0.f) : lw + v);
        return near ? lse_near(reinterpret_cast<const float*>(x), c, wl) : lse_of(x, c);
    }

    // -log2 sum_j w_j·2^(v_j - c[lane][j]) for a near launch, v exchanged at vj (w_j at wl[j], log2
    // w_j at wl[32 + j], lanes >= K zero): the potentials themselves are exchanged (lw + v would lose
    // their digits first), and each row takes the near form if its exponents are within
    // kNearSpread, else the plain form on (lw_j + v_j) - c (the CPU's per-row rule). Nothing here
    // touches the exchange buffer, so lanes may differ in which form they take.
    __host__ __device__ __forceinline__ float lse_near(const float* vj, const float* c, const float* wl) {
        const float* lw = wl + 32;
        const float* ci = c + lane * kStride;
        float m = -inf(), lo = inf();
CIRCOT_NO_UNROLL
        for (int j = 0; j < kk; ++j) {
            const float y = wl[j] > 0.f ? vj[j] - ci[j] : -inf();
            m = fmaxf(m, y);
            lo = y == -inf() ? lo : fminf(lo, y);
        }
        float s = 0.f;
        if (m - lo <= kNearSpread) {
CIRCOT_NO_UNROLL
            for (int j = 0; j < kk; ++j) s += wl[j] > 0.f ? wl[j] * ex2m1_near(vj[j] - ci[j] - m) : 0.f;
            return neg_near_finish(m, s);
        }
        float mx = -inf();
CIRCOT_NO_UNROLL
        for (int j = 0; j < kk; ++j) mx = fmaxf(mx, (lw[j] + vj[j]) - ci[j]);
        const float shift = mx == -inf() ? 0.f : mx;  // see neg_lse2
CIRCOT_NO_UNROLL
        for (int j = 0; j < kk; ++j) s += ex2((lw[j] + vj[j]) - ci[j] - shift);
        return neg_lse2_finish(mx, s);
    }

    // -LSE2_j(w_j - c[lane][j]) with c = rows or cols (the transpose): two passes (max, then sum)
    // over shared memory rather than 32 run-time-indexed values per lane, which would go to local
    // memory; the trip count ceil(K/4) is the same for every lane.
    __host__ __device__ __forceinline__ float lse(float w, const float* c) { return lse_of(exchange(w), c); }
    __host__ __device__ __forceinline__ float lse_of(const float4* wv, const float* c) {
        const float4* cv = reinterpret_cast<const float4*>(c + lane * kStride);
        const int n4 = (kk + 3) / 4;
        float m = -inf();
CIRCOT_NO_UNROLL
        for (int q = 0; q < n4; ++q) {
            const float4 a = wv[q], b = cv[q];
            m = fmaxf(fmaxf(m, fmaxf(a.x - b.x, a.y - b.y)), fmaxf(a.z - b.z, a.w - b.w));
        }
        const float shift = m == -inf() ? 0.f : m;  // see neg_lse2
        float s = 0.f;
CIRCOT_NO_UNROLL
        for (int q = 0; q < n4; ++q) {
            const float4 a = wv[q], b = cv[q];
            s += (ex2(a.x - b.x - shift) + ex2(a.y - b.y - shift)) + (ex2(a.z - b.z - shift) + ex2(a.w - b.w - shift));
        }
        return neg_lse2_finish(m, s);
    }

    // sum_j m[lane][j]·x_j over every lane's x (lanes >= K publish 0; m's padding is 0).
    __host__ __device__ __forceinline__ float dot(float x, const float* m) {
        const float4* xv = exchange(x);
        const float4* mv = reinterpret_cast<const float4*>(m + lane * kStride);
        const int n4 = (kk + 3) / 4;
        float acc = 0.f;
CIRCOT_NO_UNROLL
        for (int q = 0; q < n4; ++q) {
            const float4 a = xv[q], b = mv[q];
            acc = fmaf(b.w, a.w, fmaf(b.z, a.z, fmaf(b.y, a.y, fmaf(b.x, a.x, acc))));
        }
        return acc;
    }

    // Lane j visits column j: f(i, j, wr_i + wc_j - c[i][j]) for i < K, so stores of a plan row are
    // coalesced across lanes.
    template <class F>
    __host__ __device__ __forceinline__ void for_each_pair(const float (&wr)[1], const float (&wc)[1], F f) {
        const float* wi = reinterpret_cast<const float*>(exchange(wr[0]));
        if (lane < kk) {
            for (int i = 0; i < kk; ++i) f(i, lane, wi[i] + wc[0] - cols[lane * kStride + i]);
        }
    }
};

// Sinkhorn through the Gibbs kernel G = 2^{-c} (c = C·log2(e)/eps): the separable form of the
// log-sum-exp, carried as scalings so that the loop has no exponential or logarithm at all (the CPU
// backend's src/cpu/gibbs.rs, where the derivation is):
//   f-update: s = G w, q = a / s normalised by the power of two below its max (exponent e), Z = e - W
//   g-update: t = G^T q, p = beta / t normalised likewise (exponent e'), W = e' - Z
//   check:    s~ = G w (the next f-update's product); row sums q_i·s~_i·2^{e'}
//   result:   u = -(log2 s + W) (s and W of the last f-update), v = -(log2 t + Z), in log2 units.
// Per iteration: 2K^2 FFMA, 2K MUFU.RCP (__fdividef) and O(K) FMUL/FMNMX, against 2K^2 MUFU.EX2 for
// the log-sum-exp form; a warp team does the same per lane through its exchange buffer. Only while
// max C/eps is within the bound (within_gibbs_bound).
__host__ __device__ __forceinline__ int exponent_of(float x) {  // floor(log2 x) for a normal x > 0
#ifdef __CUDACC__
    const int bits = __float_as_int(x);
#else
    int bits;
    memcpy(&bits, &x, sizeof bits);
#endif
    return ((bits >> 23) & 0xff) - 127;
}
__host__ __device__ __forceinline__ float octave(int e) { return __int_as_float((e + 127) << 23); }  // 2^e

// beta∘V0 = 2^start (start = lb + v0, log2 units) as the Gibbs loop carries it: w·2^W with W an
// integer near max(start), so that w stays in range.
template <class Team>
__host__ __device__ __forceinline__ void gibbs_state(const Team& t, const float (&start)[Team::kSlots],
                                                    float (&w)[Team::kSlots], int& W) {
    constexpr int S = Team::kSlots;
    float top = start[0];
CIRCOT_UNROLL
    for (int j = 1; j < S; ++j) top = fmaxf(top, start[j]);
    W = static_cast<int>(floorf(t.max(top)));
CIRCOT_UNROLL
    for (int j = 0; j < S; ++j) w[j] = ex2(start[j] - static_cast<float>(W));
}

// sum over the team's valid slots of f(s).
template <class Team, class F>
__host__ __device__ __forceinline__ float team_sum(const Team& t, F f) {
    float s = 0.f;
CIRCOT_UNROLL
    for (int i = 0; i < Team::kSlots; ++i) s += t.valid(i) ? f(i) : 0.f;
    return t.sum(s);
}

// Runs the iteration from the state (w, W) after g-update `it0` (gibbs_state of the first f-update's
// input when it0 = 0) until the error is <= tol or `cap` iterations; leaves the state after the last
// g-update in (w, W) (what a stopped problem resumes from, bit for bit), writes u, v (log2 units)
// and err, returns the iterations. Slots that are not classes (warp lanes >= K) carry q = w = 0.
template <class Team>
__host__ __device__ __forceinline__ int gibbs_iterate(Team& t, const SinkhornParams& p,
                                                     const float (&a)[Team::kSlots], const float (&bt)[Team::kSlots],
                                                     float (&w)[Team::kSlots], int& W, int it0, int cap,
                                                     float (&u)[Team::kSlots], float (&v)[Team::kSlots], float& err) {
    constexpr int S = Team::kSlots;
    const auto G = t.gibbs_kernel();
    float s[S], s_prev[S], q[S], tt[S];
    G.rows(w, s);
    int it, W_prev = W, Z = 0;
    for (it = it0 + 1;; ++it) {
        // f-update
        float top_q = 0.f;
CIRCOT_UNROLL
        for (int i = 0; i < S; ++i) {
            q[i] = t.valid(i) ? __fdividef(a[i], s[i]) : 0.f;
            top_q = fmaxf(top_q, q[i]);
        }
        const int e = exponent_of(t.max(top_q));
        const float down_q = octave(-e);
CIRCOT_UNROLL
        for (int i = 0; i < S; ++i) q[i] *= down_q;
        Z = e - W;
        // g-update
        G.cols(q, tt);
        float top_p = 0.f;
CIRCOT_UNROLL
        for (int j = 0; j < S; ++j) {
            w[j] = t.valid(j) ? __fdividef(bt[j], tt[j]) : 0.f;
            top_p = fmaxf(top_p, w[j]);
        }
        const int e_new = exponent_of(t.max(top_p));
        const float down_p = octave(-e_new);
CIRCOT_UNROLL
        for (int j = 0; j < S; ++j) w[j] *= down_p;
        W_prev = W;
        W = e_new - Z;
        // check, with the next f-update's product
        const float up = octave(e_new);
CIRCOT_UNROLL
        for (int i = 0; i < S; ++i) s_prev[i] = s[i];
        G.rows(w, s);
        err = team_sum(t, [&](int i) { return fabsf(q[i] * s[i] * up - a[i]); });
        if (t.all(err <= p.tol || it >= cap)) break;  // err is warp-uniform: see WarpTeam::sum
    }
    // A zero-mass row (a_i = 0) takes no part in the dual value, and its f_i is defined as the
    // c-transform of the final g: the check's product s (= G w after the last g-update, with W),
    // not the previous one, which would leave it one g-update stale.
CIRCOT_UNROLL
    for (int i = 0; i < S; ++i) {
        u[i] = a[i] > 0.f ? -(lg2(s_prev[i]) + static_cast<float>(W_prev)) : -(lg2(s[i]) + static_cast<float>(W));
        v[i] = -(lg2(tt[i]) + static_cast<float>(Z));
    }
    return it;
}

// x·log2 x with 0·log2 0 = 0 (entropy terms of zero masses).
__host__ __device__ __forceinline__ float xlog2x(float x, float lx) { return x > 0.f ? x * lx : 0.f; }

// 1/x to about 1 ulp: MUFU.RCP (__fdividef, about 2 ulp, biased alike on every call) and one
// Newton step, 2 FFMA. For renormalisations, whose sums must not inherit the reciprocal's bias.
__host__ __device__ __forceinline__ float recip(float x) {
    const float r = __fdividef(1.f, x);
    return fmaf(r, fmaf(-x, r, 1.f), r);
}

// Reads problem b's row of a B x K distribution and renormalises it in f32, as the CPU backend does:
// x = raw / sum, lx = log2 raw - log2 sum (-inf at zero mass). Rows are validated to sum to 1 only
// up to their type's precision (f16/bf16 rounding alone leaves |sum - 1| up to about K·2^-9), and
// |sum a - sum beta| would be a floor under the marginal error.
template <class T, class Team>
__host__ __device__ __forceinline__ void load_distribution(const Team& t, const void* base, int64_t b,
                                                          float (&x)[Team::kSlots], float (&lx)[Team::kSlots]) {
CIRCOT_UNROLL
    for (int s = 0; s < Team::kSlots; ++s) x[s] = t.valid(s) ? load<T>(base, b * t.k() + t.cls(s)) : 0.f;
    const float sum = team_sum(t, [&](int s) { return x[s]; });
    const float inv = recip(sum), lsum = lg2(sum);
CIRCOT_UNROLL
    for (int s = 0; s < Team::kSlots; ++s) {
        lx[s] = lg2(x[s]) - lsum;
        x[s] *= inv;
    }
}

// A problem that is not solved: ignored (label < 0: every output zero) or invalid (label >= K:
// loss, transport cost and marginal error NaN, iterations -1, per-class outputs zero). A label >= K
// must never index the cost: cuda::enqueue does not read labels on the host.
template <class T, class Team>
__host__ __device__ __forceinline__ void write_ignored(Team& t, const SinkhornParams& p, int64_t b, bool invalid) {
    const int K = t.k();
CIRCOT_UNROLL
    for (int s = 0; s < Team::kSlots; ++s) {
        if (!t.stores(s)) continue;
        const int64_t o = b * K + t.cls(s);
        store<T>(p.f, o, 0.f);
        store<T>(p.g, o, 0.f);
        store<T>(p.grad_source, o, 0.f);
        if (p.grad_logits) store<T>(p.grad_logits, o, 0.f);
        if (p.plan) {
            for (int j = 0; j < K; ++j) store<T>(p.plan, o * K + j, 0.f);
        }
    }
    if (t.leader()) {
        const float flag = invalid ? __int_as_float(0x7fc00000) : 0.f;  // quiet NaN
        store<T>(p.loss, b, flag);
        store<T>(p.transport_cost, b, flag);
        store<T>(p.marginal_error, b, flag);
        p.iterations[b] = invalid ? -1 : 0;
    }
}

// Hands problem b, stopped unfinished after `it` iterations with its state saved, to the next
// launch: its count goes where that launch reads it, its index to the next work list.
template <class Team>
__host__ __device__ __forceinline__ void hand_on(const Team& t, const SinkhornParams& p, int64_t b, int it) {
    if (t.leader()) {
        p.iterations[b] = it;
        p.next_work[atomicAdd(p.next_count, 1)] = static_cast<int32_t>(b);
    }
}

// Solves problem b and writes all its outputs. Everything a branch or loop trip depends on is
// uniform across the team (see WarpTeam::sum).
template <class T, class Team>
__host__ __device__ __forceinline__ void solve(Team& t, const SinkhornParams& p, int64_t b) {
    constexpr int S = Team::kSlots;
    const int K = t.k();
    // t.all on a condition that is already the same on every lane: the vote lets ptxas prove the branch
    // warp-uniform; otherwise it guards every later collective with a convergence check and an
    // out-of-line WARPSYNC call (whose calling convention spilled registers).
    const int64_t y = p.labels ? __ldg(p.labels + b) : -1;
    if (t.all(p.labels && (y < 0 || y >= K))) {
        write_ignored<T>(t, p, b, y >= K);
        return;
    }

    // Source: a and la = log2 a. From logits, la = (z - max z)·log2 e - log2 sum 2^(...) directly:
    // subtracting the max before scaling keeps the big logits' rounding out of la.
    float a[S], la[S];
    if (p.source_is_logits) {
        float z[S];
CIRCOT_UNROLL
        for (int s = 0; s < S; ++s) z[s] = t.valid(s) ? load<T>(p.source, b * K + t.cls(s)) : -inf();
        float mz = z[0];
CIRCOT_UNROLL
        for (int s = 1; s < S; ++s) mz = fmaxf(mz, z[s]);
        mz = t.max(mz);
CIRCOT_UNROLL
        for (int s = 0; s < S; ++s) la[s] = (z[s] - mz) * kLog2e;
        const float lsum = lg2(team_sum(t, [&](int s) { return ex2(la[s]); }));
CIRCOT_UNROLL
        for (int s = 0; s < S; ++s) {
            la[s] -= lsum;
            a[s] = ex2(la[s]);
        }
        // MUFU.EX2/LG2 are about 2 ulp off, so sum a differs from sum beta by up to ~1e-6: a floor
        // under the L1 marginal error, which can then never reach a tolerance near it.
        // Renormalise a by its f32 sum, with a reciprocal refined to ~1 ulp (see recip).
        const float inv = recip(team_sum(t, [&](int s) { return a[s]; }));
CIRCOT_UNROLL
        for (int s = 0; s < S; ++s) a[s] *= inv;
    } else {
        load_distribution<T>(t, p.source, b, a, la);
    }

    // Target: beta and lb = log2 beta (-inf for zero mass).
    float bt[S], lb[S];
    if (p.labels) {
        const float off = __fdividef(p.smoothing, static_cast<float>(K));
CIRCOT_UNROLL
        for (int s = 0; s < S; ++s) {
            bt[s] = !t.valid(s) ? 0.f : t.cls(s) == y ? (1.f - p.smoothing) + off : off;
            lb[s] = lg2(bt[s]);
        }
    } else {
        load_distribution<T>(t, p.target, b, bt, lb);
    }

    t.publish_weights(a, la, bt, lb);

    float u[S], v[S];
    float err;
    int it;
    if (p.labels && p.smoothing == 0.f) {
        // One-hot closed form: the state after one iteration from g = 0, which is a fixed point.
CIRCOT_UNROLL
        for (int s = 0; s < S; ++s) {
            u[s] = t.cost(t.cls(s), static_cast<int>(y));
        }
        t.col_lse(la, a, u, v);
CIRCOT_UNROLL
        for (int s = 0; s < S; ++s) v[s] = t.cls(s) == y ? 0.f : v[s];
        it = 1;
        err = 0.f;
    } else {
        // The first f-update's input, lb + g0 in log2 units (g0 = 0 or the warm start). g0 is
        // defined up to a constant: shift it by its maximum first, so that g0·log2(e)/eps can neither
        // overflow nor reach 2^31, where the float-to-int conversion of the Gibbs loop's octave
        // saturates on the GPU (and gives INT_MIN on x86). The maximum is over the target's support
        // (lb > -inf): a zero-mass class takes no part in the f-update, and a start far above the
        // others there would push every supported class's start to -inf (then inf - inf).
        // v0: g0 in log2 units scaled by 1/eps; start = lb + v0, the Gibbs loop's form of it.
        float v0[S], start[S];
CIRCOT_UNROLL
        for (int s = 0; s < S; ++s) v0[s] = 0.f;
        // A problem handed on by an earlier launch (rounds: params.h) resumes from its saved state
        // and count instead; the state is exactly what the loop carries, so the iterates are the
        // same bits as in one launch.
        const bool resumed = Team::kRounds && t.all(p.work != nullptr);
        if (p.init_g && !resumed) {
            const float to_units = __fdividef(kLog2e, p.eps);
            float g0[S];
CIRCOT_UNROLL
            for (int s = 0; s < S; ++s) {
                const bool support = t.valid(s) && lb[s] > -inf();
                g0[s] = support ? load<T>(p.init_g, b * K + t.cls(s)) : -inf();
            }
            float top = g0[0];
CIRCOT_UNROLL
            for (int s = 1; s < S; ++s) top = fmaxf(top, g0[s]);
            top = t.max(top);
CIRCOT_UNROLL
            for (int s = 0; s < S; ++s) v0[s] = g0[s] > -inf() ? (g0[s] - top) * to_units : 0.f;
        }
CIRCOT_UNROLL
        for (int s = 0; s < S; ++s) start[s] = lb[s] + v0[s];
        const int it0 = resumed ? p.iterations[b] : 0;
        const int cap = Team::kRounds ? p.round_cap : p.max_iters;
        float* const saved = Team::kRounds && p.resume ? p.resume + b * (K + 1) : nullptr;
        // Whether the problem stops unfinished here, for the next launch: only below max_iters.
        const auto stops = [&] {
            return Team::kRounds && t.all(p.next_work != nullptr && !(err <= p.tol) && it < p.max_iters);
        };
        // t.all: the same on every lane already (the cost and eps are the launch's); see above.
        const bool gibbs = t.all(t.gibbs());
        if (gibbs) {
            float gw[S];
            int gW;
            if (resumed) {
CIRCOT_UNROLL
                for (int s = 0; s < S; ++s) gw[s] = saved[s];
                gW = static_cast<int>(saved[K]);
            } else {
                gibbs_state(t, start, gw, gW);
            }
            it = gibbs_iterate(t, p, a, bt, gw, gW, it0, cap, u, v, err);
            if (stops()) {
CIRCOT_UNROLL
                for (int s = 0; s < S; ++s) saved[s] = gw[s];
                saved[K] = static_cast<float>(gW);
                hand_on(t, p, b, it);
                return;
            }
        }
        if (!gibbs) {
            // Log-sum-exp form. u = Tf(g0); then g-update, and the next f-update doubles as the
            // convergence check: the row sums of the plan are a_i·2^(u_i - u'_i), so the L1 error needs
            // no extra exponentials. Resumed, the first f-update's input is lb + v, as in the loop.
            if (resumed) {
CIRCOT_UNROLL
                for (int s = 0; s < S; ++s) v0[s] = t.valid(s) ? saved[t.cls(s)] : 0.f;
            }
            float un[S];
            t.row_lse(lb, bt, v0, u);
            for (it = it0 + 1;; ++it) {
                t.col_lse(la, a, u, v);
                t.row_lse(lb, bt, v, un);
                // a > 0 guard: a zero-mass row may have 2^(u - u') overflow, and 0·inf is NaN.
                err = team_sum(t, [&](int s) { return a[s] > 0.f ? a[s] * fabsf(expm1f((u[s] - un[s]) * kLn2)) : 0.f; });
                if (t.all(err <= p.tol || it >= cap)) break;  // err is warp-uniform: see sum
CIRCOT_UNROLL
                for (int s = 0; s < S; ++s) u[s] = un[s];
            }
            if (stops()) {
CIRCOT_UNROLL
                for (int s = 0; s < S; ++s) {
                    if (t.stores(s)) saved[t.cls(s)] = v[s];
                }
                hand_on(t, p, b, it);
                return;
            }
            // A zero-mass row's f is the c-transform of the final g (see gibbs_iterate).
CIRCOT_UNROLL
            for (int s = 0; s < S; ++s) u[s] = a[s] > 0.f ? u[s] : un[s];
        }
    }

    const float scale = p.eps * kLn2;  // log2 units scaled by 1/eps -> cost units
    const float inv_k = __fdividef(1.f, static_cast<float>(K));
    const bool entropy = p.convention == CIRCOT_CONVENTION_ENTROPY;
    const int64_t row = b * K;

    // Plan and <P, C>, with the raw cost for the product.
    float wr[S], wc[S];
CIRCOT_UNROLL
    for (int s = 0; s < S; ++s) {
        wr[s] = la[s] + u[s];
        wc[s] = lb[s] + v[s];
    }
    float tc = 0.f;
    t.for_each_pair(wr, wc, [&](int i, int j, float x) {
        const float pij = ex2(x);
        tc += pij * __ldg(p.cost + i * K + j);
        if (p.plan && t.active()) store<T>(p.plan, (row + i) * K + j, pij);
    });
    tc = t.sum(tc);

    // Dual value <f, a> + <g, beta>; entropy convention adds -eps·(H(a) + H(beta)).
    float dual = team_sum(t, [&](int s) { return a[s] * u[s] + bt[s] * v[s]; });
    if (entropy) dual += team_sum(t, [&](int s) { return xlog2x(a[s], la[s]) + xlog2x(bt[s], lb[s]); });

    // Potentials shifted to equal means; gradient = centred v (f, or f + eps·log a).
    const float mean_u = team_sum(t, [&](int s) { return u[s]; }) * inv_k;
    const float mean_v = team_sum(t, [&](int s) { return v[s]; }) * inv_k;
    const float shift = 0.5f * (mean_v - mean_u);
    float gs[S];
CIRCOT_UNROLL
    for (int s = 0; s < S; ++s) gs[s] = entropy ? u[s] + la[s] : u[s];
    const float mean_gs = team_sum(t, [&](int s) { return gs[s]; }) * inv_k;
CIRCOT_UNROLL
    for (int s = 0; s < S; ++s) gs[s] -= mean_gs;
    const float a_dot_gs = p.grad_logits ? team_sum(t, [&](int s) { return a[s] * gs[s]; }) : 0.f;

CIRCOT_UNROLL
    for (int s = 0; s < S; ++s) {
        if (!t.stores(s)) continue;
        const int64_t o = row + t.cls(s);
        store<T>(p.f, o, (u[s] + shift) * scale);
        store<T>(p.g, o, (v[s] - shift) * scale);
        store<T>(p.grad_source, o, gs[s] * scale);
        if (p.grad_logits) store<T>(p.grad_logits, o, a[s] * (gs[s] - a_dot_gs) * scale);
    }
    if (t.leader()) {
        store<T>(p.loss, b, dual * scale);
        store<T>(p.transport_cost, b, tc);
        store<T>(p.marginal_error, b, err);
        p.iterations[b] = it;
    }
}

}  // namespace circot

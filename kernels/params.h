// The one parameter block every Sinkhorn entry point takes, by value.
//
// Mirrored field for field by `src/cuda/params.rs` (`SinkhornParams`, #[repr(C)]), whose
// const asserts pin the size (192 bytes) and alignment (8). Change both or neither.
#pragma once
#include <stdint.h>

// Convention of the reported loss and gradient (numerics.md).
#define CIRCOT_CONVENTION_KL 0
#define CIRCOT_CONVENTION_ENTROPY 1

struct SinkhornParams {
    // Inputs. Element type T (f32, f16 or bf16) is fixed by the entry point's name.
    const void* source;          // B x K, row-major: probabilities, or logits when source_is_logits
    const void* target;          // B x K distributions, or null when labels are given
    const int64_t* labels;       // B class labels in [0, K), or null when target is given;
                                 // a negative label marks an ignored problem (all outputs zero);
                                 // a label >= K an invalid one: loss, transport_cost and
                                 // marginal_error NaN, iterations -1, the rest zero
    const float* cost;           // K x K, row-major, f32, finite, non-negative

    // Outputs, element type T unless stated. Optional ones may be null.
    void* loss;                  // B: dual value after the last g-update, in `convention`
    void* transport_cost;        // B: <P, C>
    void* f;                     // B x K: potentials (KL units), shifted so mean(f) == mean(g)
    void* g;                     // B x K
    void* grad_source;           // B x K: centred gradient w.r.t. the source distribution
    void* grad_logits;           // B x K or null: gradient w.r.t. the logits
    int32_t* iterations;         // B: g-updates performed (1 for the one-hot closed form)
    void* marginal_error;        // B: L1 row-marginal error after the last g-update
    void* plan;                  // B x K x K or null

    // Optional input, element type T.
    const void* init_g;          // B x K warm start for g (KL units, any shift), or null for g = 0

    // Rounds (src/cuda/rounds.rs). In tolerance mode one launch may stop a problem unfinished at
    // `round_cap` iterations and hand it, with its exact state, to the next launch, which runs only
    // the handed-on problems: they are packed into full warps instead of each warp of the first
    // launch waiting for its slowest lane. A problem's outputs are bit for bit those of one launch.
    const int32_t* work;         // this launch's problems (indices < B), or null: all B in order
    const int32_t* work_count;   // device memory: how many entries `work` holds; read when work is set
    int32_t* next_work;          // B entries: where stopped problems are appended, or null: none stops
    int32_t* next_count;         // device memory, zero before the launch: entries appended
    float* resume;               // B x (K + 1): a stopped problem's state (written when it stops,
                                 // read when `work` is set); `iterations` holds its count so far

    int64_t batch;               // B
    int32_t k;                   // K, 2..=32; must equal the entry point's K where it has one
    int32_t max_iters;           // >= 1
    float eps;                   // > 0, finite
    float tol;                   // stop when marginal error <= tol
    float smoothing;             // label targets only: beta = (1 - s) e_y + s / K; 0 = one-hot
    int32_t source_is_logits;    // 0 or 1
    int32_t convention;          // CIRCOT_CONVENTION_*
    int32_t round_cap;           // iterations a problem may reach in this launch (1..=max_iters);
                                 // beyond it, a problem that is not done stops, if next_work is set
};

#ifdef __cplusplus
static_assert(sizeof(SinkhornParams) == 192, "SinkhornParams layout is mirrored in Rust");
static_assert(alignof(SinkhornParams) == 8, "SinkhornParams layout is mirrored in Rust");
#endif

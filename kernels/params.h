// The one parameter block every Sinkhorn entry point takes, by value.
//
// Mirrored field for field by `src/cuda/params.rs` (`SinkhornParams`, #[repr(C)]), whose
// const asserts pin the size (152 bytes) and alignment (8). Change both or neither.
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

    int64_t batch;               // B
    int32_t k;                   // K, 2..=32; must equal the entry point's K where it has one
    int32_t max_iters;           // >= 1
    float eps;                   // > 0, finite
    float tol;                   // stop when marginal error <= tol
    float smoothing;             // label targets only: beta = (1 - s) e_y + s / K; 0 = one-hot
    int32_t source_is_logits;    // 0 or 1
    int32_t convention;          // CIRCOT_CONVENTION_*
    int32_t reserved;            // zero; keeps the struct a multiple of 8 bytes
};

#ifdef __cplusplus
static_assert(sizeof(SinkhornParams) == 152, "SinkhornParams layout is mirrored in Rust");
static_assert(alignof(SinkhornParams) == 8, "SinkhornParams layout is mirrored in Rust");
#endif

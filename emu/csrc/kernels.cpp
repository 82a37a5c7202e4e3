// The kernel table: the crate's real kernels/sinkhorn.cu and the emulator's own test kernels, compiled
// by g++ against kernels/host_compat.h (g++ does not take .cu files on the command line).
#include "emu.h"

#include "../../kernels/sinkhorn.cu"
#include "test_kernels.cu"

namespace circot_emu {

#define CIRCOT_EMU_ROWS(suffix, T)                                                                          \
    {"circot_sinkhorn_" #suffix "_k7", sizeof(SinkhornParams), circot::kMaxBlockThreads,                    \
     invoke<SinkhornParams, circot_sinkhorn_##suffix##_k7>, true},                                          \
        {"circot_sinkhorn_" #suffix "_k8", sizeof(SinkhornParams), circot::kMaxBlockThreads,                \
         invoke<SinkhornParams, circot_sinkhorn_##suffix##_k8>, true},                                      \
        {"circot_sinkhorn_" #suffix "_kn", sizeof(SinkhornParams), circot::kMaxBlockThreads,                \
         invoke<SinkhornParams, circot_sinkhorn_##suffix##_kn>, true},

#define CIRCOT_EMU_TEST_ROW(name) {#name, sizeof(TestParams), 1024, invoke<TestParams, name>, false},

const KernelInfo kKernels[] = {CIRCOT_DTYPES(CIRCOT_EMU_ROWS) CIRCOT_EMU_TEST_KERNELS(CIRCOT_EMU_TEST_ROW)};
const size_t kKernelCount = sizeof kKernels / sizeof kKernels[0];

}  // namespace circot_emu

// User-space fibers: one stack and saved context per emulated CUDA thread.
//
// On x86-64 a switch is six pushes, a stack-pointer swap and six pops (about 10 ns). glibc's
// swapcontext also saves the signal mask with a system call (about 0.4 us per round trip here),
// which made warp-per-problem kernels, with a collective every few instructions, 40x slower to
// emulate; other architectures use ucontext. MXCSR (the FTZ/DAZ bits) is not switched: all fibers
// share the launch's floating-point mode.
#pragma once
#include <stddef.h>
#include <stdint.h>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace circot_emu {

using FiberEntry = void (*)();

#if defined(__x86_64__)

extern "C" void circot_emu_switch(void** save_sp, void* load_sp);

struct Fiber {
    void* sp = nullptr;

    // The first switch into the fiber pops six zero registers and `ret`s into entry, with the stack
    // aligned as after a call. entry must never return.
    void init(char* stack, size_t size, FiberEntry entry) {
        auto** top = reinterpret_cast<void**>(reinterpret_cast<uintptr_t>(stack + size) & ~uintptr_t{15});
        *--top = nullptr;  // entry's (never used) return address
        *--top = reinterpret_cast<void*>(entry);
        for (int i = 0; i < 6; ++i) *--top = nullptr;  // rbp, rbx, r12-r15
        sp = top;
    }
};

inline void switch_fiber(Fiber& from, Fiber& to) { circot_emu_switch(&from.sp, to.sp); }

#else

struct Fiber {
    ucontext_t ctx;

    void init(char* stack, size_t size, FiberEntry entry) {
        getcontext(&ctx);
        ctx.uc_stack.ss_sp = stack;
        ctx.uc_stack.ss_size = size;
        ctx.uc_link = nullptr;
        makecontext(&ctx, entry, 0);
    }
};

inline void switch_fiber(Fiber& from, Fiber& to) { swapcontext(&from.ctx, &to.ctx); }

#endif

}  // namespace circot_emu

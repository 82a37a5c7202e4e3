// circot_emu_switch(void** save_sp, void* load_sp): saves the callee-saved registers on the current
// stack, stores the stack pointer to *save_sp, and resumes the fiber whose stack pointer is load_sp.
#if defined(__x86_64__)
    .text
    .globl circot_emu_switch
    .type circot_emu_switch, @function
circot_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size circot_emu_switch, .-circot_emu_switch
    .section .note.GNU-stack, "", @progbits
#endif

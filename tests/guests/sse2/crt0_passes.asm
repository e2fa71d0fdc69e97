; crt0_passes.asm - start-up code of the SSE2 benchmark guest: c/crt0.asm's job (stack in .bss,
; .bss zeroed, then main), except that EDI on entry (the pass count, as for the other benchmark
; guests; 0 = 1) is kept and passed to bench_main(passes) (lib.h declares main without arguments).
bits 32
section .text
global _start
extern __bss_start, __bss_end
extern bench_main

_start:
        mov esp, stack_top
        mov ebp, edi            ; the pass count, before rep stosd uses EDI
        cld
        mov edi, __bss_start
        mov ecx, __bss_end
        sub ecx, edi
        shr ecx, 2
        xor eax, eax
        rep stosd
        push ebp
        call bench_main
.halt:  hlt
        jmp .halt

section .bss
align 16
        resb 16384
stack_top:

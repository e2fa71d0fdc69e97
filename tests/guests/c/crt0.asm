; crt0.asm - start-up code of the C guest (ELF32, linked at 0x100000 by link.ld).
; Entered in 32-bit flat protected mode with ESP undefined: sets ESP to a 16 KiB
; stack in .bss, zeroes .bss (__bss_start..__bss_end from link.ld), calls main
; (or, built with -DMULTIBOOT, mb_main(magic, info)), then halts for good.
; -DMULTIBOOT also emits the Multiboot v1 header, which link.ld places first.
bits 32

%ifdef MULTIBOOT
MB_MAGIC equ 0x1BADB002
MB_FLAGS equ 0x00000003         ; bit 0: page-align modules, bit 1: memory info wanted

section .multiboot progbits alloc noexec nowrite align=4
        dd MB_MAGIC
        dd MB_FLAGS
        dd -(MB_MAGIC + MB_FLAGS)       ; the three sum to 0
%endif

section .text
global _start
extern __bss_start, __bss_end
%ifdef MULTIBOOT
extern mb_main
%else
extern main
%endif

_start:
        mov esp, stack_top
        mov esi, eax            ; keep the multiboot magic (EBX, the info pointer, is untouched)
        cld
        mov edi, __bss_start    ; zero .bss, which includes the stack (nothing is on it yet)
        mov ecx, __bss_end
        sub ecx, edi
        shr ecx, 2              ; link.ld aligns both ends to 4
        xor eax, eax
        rep stosd
%ifdef MULTIBOOT
        push ebx                ; mb_main(magic, info)
        push esi
        call mb_main
        add esp, 8
%else
        call main
%endif
.halt:  hlt
        jmp .halt

section .bss
        alignb 16
        resb 16384
stack_top:

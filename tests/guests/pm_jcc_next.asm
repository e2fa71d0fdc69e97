; pm_jcc_next.asm - control flow that binaryen's Relooper asserted on (issue 15): a conditional
; jump whose taken and fall-through targets are the same instruction (`jz $+2`, rel8 = 0), inside
; a loop that is entered at two places (an irreducible graph, which the JIT hands to the Relooper).
; Before the fix, `--engine jit` aborted the process with "Assertion failed:
; !contains(BranchesOut, Target)" in Relooper::AddBranchTo.
; 32-bit flat protected mode. EDI = passes (0 = 1). Per pass: ECX counts 1000 down; the loop is
; entered at .a when the pass number is even, at .b when odd.
;   .a: eax += ecx; jz $+2; ecx -= 1 (exit at 0)    .b: eax = rol(eax, 3) + 3; ecx -= 1; loop to .a
; Output: EAX as 8 lowercase hex digits and "\n", HLT.
bits 32
org 0x100000

start:
        mov esp, 0x80000
        mov ebx, edi
        test ebx, ebx
        jnz .have
        mov ebx, 1
.have:  xor eax, eax
.pass:  mov ecx, 1000
        test ebx, 1
        jnz .b                  ; two entries into the loop below
.a:     add eax, ecx
        jz .a2                  ; taken and fall-through are both .a2
.a2:    dec ecx
        jz .next
.b:     rol eax, 3
        add eax, 3
        dec ecx
        jnz .a
.next:  dec ebx
        jnz .pass

        call print_hex
        call newline
.halt:  hlt
        jmp .halt

%include "pm_print.inc"

; pm_fib.asm - naive recursive Fibonacci, 32-bit flat protected mode (benchmark).
; fib(24) = 46368 via CALL/RET (150049 calls per pass), EDI times (EDI=0 means
; once). Tests: deep CALL/RET and PUSH/POP on the stack at 0x80000.
; Output: "46368\n", then HLT.
bits 32
org 0x100000

start:
        mov esp, 0x80000
        mov ebp, edi            ; repeat count
        test ebp, ebp
        jnz pass
        inc ebp

pass:   mov eax, 24
        call fib
        dec ebp
        jnz pass

        call print_dec
        call newline
.halt:  hlt
        jmp .halt

; fib: EAX = n -> EAX = fib(n), fib(0)=0, fib(1)=1. Preserves other registers.
fib:
        cmp eax, 2
        jb .ret                 ; fib(n) = n for n < 2
        push ebx
        push eax
        dec eax
        call fib                ; fib(n-1)
        mov ebx, eax
        pop eax
        sub eax, 2
        call fib                ; fib(n-2)
        add eax, ebx
        pop ebx
.ret:   ret

%include "pm_print.inc"

; pm_sieve.asm - sieve of Eratosthenes, 32-bit flat protected mode (benchmark).
; Counts the primes below 65536 with a byte array at 0x200000, EDI times
; (EDI=0 means once); prints the count from the last pass.
; Tests: REP STOSD, IMUL r32,r/m32, [base+index] byte stores, MOVZX, DIV.
; Output: "6542\n", then HLT.
bits 32
org 0x100000

N       equ 65536
FLAGS   equ 0x200000            ; N bytes

start:
        mov esp, 0x80000
        cld
        mov ebp, edi            ; repeat count
        test ebp, ebp
        jnz pass
        inc ebp                 ; EDI=0 -> 1 pass

pass:   mov edi, FLAGS          ; flags[0..N) = 1
        mov ecx, N / 4
        mov eax, 0x01010101
        rep stosd
        mov byte [FLAGS], 0     ; 0 and 1 are not prime
        mov byte [FLAGS+1], 0

        mov ebx, 2              ; i
.outer: mov eax, ebx
        imul eax, ebx           ; i*i
        cmp eax, N
        jae .count
        cmp byte [FLAGS+ebx], 0
        je .nexti
.inner: mov byte [FLAGS+eax], 0 ; j = i*i, i*i+i, ...
        add eax, ebx
        cmp eax, N
        jb .inner
.nexti: inc ebx
        jmp .outer

.count: xor eax, eax            ; EAX = number of primes
        xor ecx, ecx
.cnt:   movzx edx, byte [FLAGS+ecx]
        add eax, edx
        inc ecx
        cmp ecx, N
        jb .cnt

        dec ebp
        jnz pass

        call print_dec
        call newline
.halt:  hlt
        jmp .halt

%include "pm_print.inc"

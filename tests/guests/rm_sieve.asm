; rm_sieve.asm - sieve of Eratosthenes in real mode.
; Counts the primes below 10000 with a byte array at 2000:0000 (linear
; 0x20000), so every array access goes through an ES segment override.
; DI times (DI=0, the reset value, means once; benchmark); prints the count of the
; last pass.
; Tests: REP STOSB, MUL, segment arithmetic, byte compares, DIV (printing).
; Output: "1229\n", then HLT.
bits 16
org 0x1000

N       equ 10000

start:
        mov bp, di              ; repeat count
        test bp, bp
        jnz .go
        inc bp                  ; DI=0 -> 1 pass
.go:    xor ax, ax
        mov ds, ax
        mov ss, ax
        mov sp, 0x8000
        mov ax, 0x2000
        mov es, ax
        cld

.pass:  xor di, di              ; flags[0..N) = 1
        mov cx, N
        mov al, 1
        rep stosb
        mov byte [es:0], 0      ; 0 and 1 are not prime
        mov byte [es:1], 0

        mov bx, 2               ; i
.outer: mov ax, bx
        mul bx                  ; DX:AX = i*i (i <= 100, fits in AX)
        cmp ax, N
        jae .count
        cmp byte [es:bx], 0
        je .nexti
        mov di, ax              ; j = i*i
.inner: mov byte [es:di], 0
        add di, bx
        cmp di, N
        jb .inner
.nexti: inc bx
        jmp .outer

.count: xor ax, ax              ; AX = number of primes
        xor di, di
.cnt:   movzx dx, byte [es:di]
        add ax, dx
        inc di
        cmp di, N
        jb .cnt

        dec bp
        jnz .pass

        call print_dec
        mov al, 10
        call putc
        hlt

%include "rm_print.inc"

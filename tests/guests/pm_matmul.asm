; pm_matmul.asm - int32 matrix multiply C = A*B, 32-bit flat protected mode (benchmark).
; A and B are N x N int32 matrices in row order, filled once (A first, then B, one LCG
; stream): x = x*1664525 + 1013904223 (mod 2^32), seed 0x2545F491, element = x as a
; signed int32 shifted right arithmetically by 20 (-2048..2047). Each pass (EDI times,
; EDI=0 means once) computes C[i][j] = sum over k of A[i][k]*B[k][j] (IMUL, sums mod
; 2^32) and then checksum(C): c = 0; for each element e in row order: c = rol(c, 5) + e.
; Output: the checksum of the last pass as 8 lowercase hex digits and "\n", then HLT.
; Tests: IMUL r32,r/m32 with a memory operand, SAR, ROL, strided loads.
bits 32
org 0x100000

N       equ 64
MA      equ 0x200000            ; N*N dwords each
MB      equ 0x210000
MC      equ 0x220000
; -DLOOPVARS keeps the j loop's index in memory, as unoptimised C does (pm_matmul_lv.bin);
; with -DCODEPAGE too, the variables live on the code's own page (pm_matmul_cp.bin): a store
; per j to a page that holds code, touching none of its bytes.
%ifdef CODEPAGE
VARS    equ cp_vars
%else
VARS    equ 0x230000            ; variables, away from the code page
%endif
passes  equ VARS + 0
result  equ VARS + 4
jvar    equ VARS + 8

start:
        mov esp, 0x80000
        test edi, edi
        jnz .have_passes
        inc edi                 ; EDI=0 -> 1 pass
.have_passes:
        mov [passes], edi
        mov eax, 0x2545F491     ; LCG state: A, then B, one stream
        mov edi, MA
        call fill
        mov edi, MB
        call fill

pass:   mov edi, MC             ; EDI = &C[i][j]
        mov esi, MA             ; ESI = &A[i][0]
%ifdef LOOPVARS
.i:     mov dword [jvar], 0     ; j*4, in memory
.j:     mov ebp, [jvar]
        lea ebx, [MB + ebp]     ; EBX = &B[0][j]
%else
.i:     xor ebp, ebp            ; EBP = j*4
.j:     lea ebx, [MB + ebp]     ; EBX = &B[0][j]
%endif
        xor edx, edx            ; EDX = sum
        mov ecx, N
.k:     mov eax, [esi]          ; sum += A[i][k] * B[k][j]
        imul eax, [ebx]
        add edx, eax
        add esi, 4
        add ebx, N*4
        dec ecx
        jnz .k
        mov [edi], edx
        add edi, 4
        sub esi, N*4            ; back to &A[i][0]
%ifdef LOOPVARS
        add dword [jvar], 4
        cmp dword [jvar], N*4
%else
        add ebp, 4
        cmp ebp, N*4
%endif
        jb .j
        add esi, N*4            ; next row of A
        cmp esi, MA + N*N*4
        jb .i

        mov esi, MC             ; checksum(C)
        xor eax, eax
        mov ecx, N*N
.sum:   rol eax, 5
        add eax, [esi]
        add esi, 4
        dec ecx
        jnz .sum
        mov [result], eax

        dec dword [passes]
        jnz pass

        mov eax, [result]
        call print_hex
        call newline
.halt:  hlt
        jmp .halt

; fill: N*N LCG elements at EDI; EAX = LCG state in and out. Clobbers ECX, EDX, EDI.
fill:   mov ecx, N*N
.next:  imul eax, eax, 1664525
        add eax, 1013904223
        mov edx, eax
        sar edx, 20
        mov [edi], edx
        add edi, 4
        dec ecx
        jnz .next
        ret

%include "pm_print.inc"

%ifdef CODEPAGE
        align 4
cp_vars: times 3 dd 0
%endif

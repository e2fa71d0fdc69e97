; pm_mandel.asm - fixed-point Mandelbrot set, 32-bit flat protected mode (benchmark).
; A W x H grid over re [-2.0, 1.0), im [-1.125, 1.125) in 4.12 fixed point (4096 = 1.0),
; at most MAXIT iterations per point, EDI times (EDI=0 means once).
; Each point's c comes from a signed divide (IDIV) of its pixel offset from the centre:
;   cr = ((2*px - W) * 6144) / W - 2048           (truncated toward zero, as IDIV does)
;   ci = ((2*py - H) * 4608) / H
; Iteration, with z = zr + i*zi starting at 0 and n counting from 0:
;   zr2 = (zr*zr) >> 12, zi2 = (zi*zi) >> 12     (IMUL, then SAR: an arithmetic shift)
;   if zr2 + zi2 > 4*4096: stop (escaped)
;   zi = ((zr*zi) >> 11) + ci, zr = zr2 - zi2 + cr, n += 1; stop when n = MAXIT
; The values stay far inside 32 bits: |zr|, |zi| < 6*4096 whenever a product is taken.
; hash = 0, then for each point in row order: hash = hash*31 + n (mod 2^32).
; Output: hash as 8 lowercase hex digits, a space, the number of points that reached
; MAXIT in decimal, "\n"; then HLT.
; Tests: IMUL r32,r/m32 and r32,r/m32,imm32, SAR, CDQ, IDIV with negative dividends.
bits 32
org 0x100000

W       equ 80
H       equ 60
MAXIT   equ 128
ONE     equ 4096

; Variables live at 0x200000, away from the code page: a store to a page that holds
; code would make a JIT drop what it compiled from it (self-modifying code rules).
; Built with -DCODEPAGE (pm_mandel_cp.bin) they live on the code's own page instead, right
; after the code: stores that share a page with code but touch none of its bytes.
%ifdef CODEPAGE
VARS    equ cp_vars
%else
VARS    equ 0x200000
%endif
hash    equ VARS + 0
inside  equ VARS + 4
px      equ VARS + 8
py      equ VARS + 12
cr      equ VARS + 16
ci      equ VARS + 20

start:
        mov esp, 0x80000
        mov ebp, edi            ; repeat count
        test ebp, ebp
        jnz pass
        inc ebp                 ; EDI=0 -> 1 pass

pass:   mov dword [hash], 0
        mov dword [inside], 0
        mov dword [py], 0

.row:   mov eax, [py]           ; ci = ((2*py - H) * 4608) / H
        add eax, eax
        sub eax, H
        imul eax, eax, 4608
        cdq
        mov ecx, H
        idiv ecx
        mov [ci], eax
        mov dword [px], 0

.col:   mov eax, [px]           ; cr = ((2*px - W) * 6144) / W - 2048
        add eax, eax
        sub eax, W
        imul eax, eax, 6144
        cdq
        mov ecx, W
        idiv ecx
        sub eax, ONE / 2
        mov [cr], eax

        xor ebx, ebx            ; zr
        xor ecx, ecx            ; zi
        xor esi, esi            ; n
.iter:  mov eax, ebx            ; zr2
        imul eax, ebx
        sar eax, 12
        mov edx, ecx            ; zi2
        imul edx, ecx
        sar edx, 12
        lea edi, [eax+edx]
        cmp edi, 4*ONE
        jg .done                ; |z|^2 > 4: escaped
        imul ecx, ebx           ; zi = 2*zr*zi + ci
        sar ecx, 11
        add ecx, [ci]
        mov ebx, eax            ; zr = zr2 - zi2 + cr
        sub ebx, edx
        add ebx, [cr]
        inc esi
        cmp esi, MAXIT
        jb .iter
        inc dword [inside]

.done:  mov eax, [hash]         ; hash = hash*31 + n
        imul eax, eax, 31
        add eax, esi
        mov [hash], eax

        inc dword [px]
        cmp dword [px], W
        jb .col
        inc dword [py]
        cmp dword [py], H
        jb .row

        dec ebp
        jnz pass

        mov eax, [hash]
        call print_hex
        mov al, ' '
        call putc
        mov eax, [inside]
        call print_dec
        call newline
.halt:  hlt
        jmp .halt

%include "pm_print.inc"

%ifdef CODEPAGE
        align 4
cp_vars: times 6 dd 0
%endif

; pm_memcpy_movsd.asm - memcpy by REP MOVSD, 32-bit flat protected mode (benchmark).
; One half of pm_memcpy on its own, so the two copies can be measured apart.
; SRC (0x200000) is filled once with the same 64 KiB as pm_memcpy's: LCG dwords
; x = x*1103515245 + 12345, seed 1, each x stored (first dword 0x41c67ea6). Each pass
; (EDI times, EDI=0 means once) copies SRC to DST (0x300000, zero at the start).
; Then checksum(DST) is compared with checksum(SRC); c = 0; for each dword d:
; c = rol(c, 5) + d.
; Output: the checksum as 8 lowercase hex digits and "\n" (or "mismatch\n"), HLT.
; Tests: REP MOVSD (one instruction per dword moved, as the budget counts it), ROL.
bits 32
org 0x100000

%include "pm_memcpy.inc"

SRC     equ 0x200000
DST     equ 0x300000
SIZE    equ 65536

start:
        FILL_SRC

pass:
        mov esi, SRC            ; SRC -> DST, a dword string copy
        mov edi, DST
        mov ecx, SIZE / 4
        rep movsd
        dec ebp
        jnz pass

        mov esi, SRC
        call checksum
        mov ebx, eax            ; EBX = reference checksum
        mov esi, DST
        call checksum
        cmp eax, ebx
        jne .bad
        call print_hex
        call newline
.halt:  hlt
        jmp .halt

.bad:   mov esi, mismatch_msg
        call puts
        jmp .halt

        MEMCPY_TAIL

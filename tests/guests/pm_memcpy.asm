; pm_memcpy.asm - 64 KiB copies, 32-bit flat protected mode (benchmark).
; SRC (0x200000) is filled once with LCG dwords: x = x*1103515245 + 12345,
; seed 1, each x stored (first dword 0x41c67ea6). Each pass (EDI times, EDI=0
; means once): clear DST1 (0x300000) and DST2 (0x400000) with REP STOSD, copy
; SRC->DST1 with REP MOVSD, copy DST1->DST2 with a byte loop, and compare the
; checksum of DST2 with that of SRC.
; checksum: c = 0; for each dword d: c = rol(c, 5) + d.
; Output: the checksum as 8 lowercase hex digits and "\n" (or "mismatch\n"), HLT.
bits 32
org 0x100000

%include "pm_memcpy.inc"

SRC     equ 0x200000
DST1    equ 0x300000
DST2    equ 0x400000
SIZE    equ 65536

start:
        FILL_SRC

        mov esi, SRC
        call checksum
        mov ebx, eax            ; EBX = reference checksum

pass:   xor eax, eax            ; clear both destinations
        mov edi, DST1
        mov ecx, SIZE / 4
        rep stosd
        mov edi, DST2
        mov ecx, SIZE / 4
        rep stosd

        mov esi, SRC            ; SRC -> DST1, dword string copy
        mov edi, DST1
        mov ecx, SIZE / 4
        rep movsd

        mov esi, DST1           ; DST1 -> DST2, one byte at a time
        mov edi, DST2
        mov ecx, SIZE
.bytes: mov al, [esi]
        mov [edi], al
        inc esi
        inc edi
        dec ecx
        jnz .bytes

        mov esi, DST2
        call checksum
        cmp eax, ebx
        jne .bad
        dec ebp
        jnz pass

        mov eax, ebx
        call print_hex
        call newline
.halt:  hlt
        jmp .halt

.bad:   mov esi, mismatch_msg
        call puts
        jmp .halt

        MEMCPY_TAIL

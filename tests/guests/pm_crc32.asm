; pm_crc32.asm - bitwise CRC-32 (reflected, polynomial 0xEDB88320, init and
; final XOR 0xFFFFFFFF: the zlib/PNG CRC), 32-bit flat protected mode (benchmark).
; The 4 KiB buffer at 0x200000 is filled once from an LCG:
;   x = x*1664525 + 1013904223 (mod 2^32), seed 0x12345678; byte = x >> 24.
; The CRC of the buffer is computed EDI times (EDI=0 means once).
; Tests: IMUL r32,r/m32,imm32, LODSB, SHR with CF, conditional XOR, NOT.
; Output: the CRC as 8 lowercase hex digits and "\n", then HLT.
bits 32
org 0x100000

BUF     equ 0x200000
LEN     equ 4096

start:
        mov esp, 0x80000
        mov ebp, edi            ; repeat count
        test ebp, ebp
        jnz .fill_start
        inc ebp
.fill_start:
        cld
        mov eax, 0x12345678     ; LCG state
        mov edi, BUF
        mov ecx, LEN
.fill:  imul eax, eax, 1664525
        add eax, 1013904223
        mov edx, eax
        shr edx, 24
        mov [edi], dl
        inc edi
        dec ecx
        jnz .fill

pass:   mov edx, 0xFFFFFFFF     ; crc
        mov esi, BUF
        mov ecx, LEN
.byte:  lodsb
        xor dl, al
        mov ebx, 8
.bit:   shr edx, 1              ; CF = bit shifted out
        jnc .nox
        xor edx, 0xEDB88320
.nox:   dec ebx
        jnz .bit
        dec ecx
        jnz .byte
        not edx

        dec ebp
        jnz pass

        mov eax, edx
        call print_hex
        call newline
.halt:  hlt
        jmp .halt

%include "pm_print.inc"

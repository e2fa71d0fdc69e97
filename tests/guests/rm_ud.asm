; rm_ud.asm - an invalid opcode with no handler.
; Prints "A", then executes UD2 (0F 0B). No IVT entry is installed (vector 6
; is whatever RAM holds: 0000:0000 in zeroed memory); the emulator is
; expected to report a shutdown. The HLT after UD2 must never be reached.
; Output: "A" (no newline). Exit: shutdown.
bits 16
org 0x1000

start:
        xor ax, ax
        mov ds, ax
        mov ss, ax
        mov sp, 0x8000
        mov al, 'A'
        out 0xE9, al
        ud2
        hlt

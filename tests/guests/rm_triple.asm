; rm_triple.asm - an architectural triple fault in real mode.
; Loads an IDT (IVT) limit of 0, prints "T", then executes UD2. #UD cannot be
; delivered (vector 6 lies beyond the limit) -> #GP -> also beyond -> #DF ->
; also beyond -> shutdown (SDM Vol. 3, 6.15 "Interrupt 8", and 20.1.4 for real
; mode). Unlike rm_ud.asm this shuts down on real hardware and KVM too.
; Needs LIDT. Output: "T" (no newline). Exit: shutdown.
bits 16
org 0x1000

start:
        xor ax, ax
        mov ds, ax
        mov ss, ax
        mov sp, 0x8000
        lidt [null_idt]
        mov al, 'T'
        out 0xE9, al
        ud2
        hlt

null_idt:
        dw 0                    ; limit
        dd 0                    ; base

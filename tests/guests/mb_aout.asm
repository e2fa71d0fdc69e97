; mb_aout.asm - a flat-binary multiboot v1 kernel using the a.out kludge.
; Header flags bit 16 says the load addresses are in the header, so a loader
; needs no ELF: the file is copied to load_addr (0x100000) up to
; load_end_addr, memory up to bss_end_addr is zeroed, and execution starts at
; entry_addr with EAX=0x2BADB002, EBX=multiboot info, flat CS/DS, paging off.
; Checks EAX; prints "multiboot aout ok\n" (or "multiboot aout bad magic\n"), HLT.
bits 32
org 0x100000

MB_MAGIC equ 0x1BADB002
MB_FLAGS equ 0x00010000         ; bit 16: address fields valid

section .text
mb_header:
        dd MB_MAGIC
        dd MB_FLAGS
        dd -(MB_MAGIC + MB_FLAGS)       ; checksum: the three sum to 0
        dd mb_header            ; header_addr: where this header lands
        dd mb_header            ; load_addr: file offset 0 lands here
        dd load_end             ; load_end_addr: end of the bytes to copy
        dd bss_end              ; bss_end_addr: zero up to here
        dd entry                ; entry_addr

entry:
        mov esp, stack_top      ; the stack is in the bss
        mov esi, ok_msg
        cmp eax, 0x2BADB002
        je .print
        mov esi, bad_msg
.print: lodsb
        test al, al
        jz .halt
        out 0xE9, al
        jmp .print
.halt:  hlt
        jmp .halt

ok_msg:  db "multiboot aout ok", 10, 0
bad_msg: db "multiboot aout bad magic", 10, 0
        align 4
load_end:

section .bss
        alignb 16
        resb 4096
stack_top:
bss_end:

; mb_low.asm - a multiboot v1 kernel (a.out kludge) loaded low, at 0x8000, whose image
; (8 KiB of code and data, then 4 KiB of bss) covers 0x9000, where vmxlab puts the multiboot
; information when it is free: the loader must place the information clear of the kernel.
; Uses the stack it is given (no stack of its own: Machine.load's initial ESP, top of RAM).
; Checks EAX = 0x2BADB002, that the information at EBX lies outside 0x8000..bss_end, that its
; flags say mem_lower/mem_upper are valid (bit 0), and that the image's own bytes are intact
; (the word at `canary`, in the page the information would have overwritten at 0x9000).
; Prints "multiboot low ok\n", or what failed; then HLT.
bits 32
org 0x8000

MB_MAGIC equ 0x1BADB002
MB_FLAGS equ 0x00010003         ; bit 16: address fields valid; bits 0, 1: page-align, memory info

section .text
mb_header:
        dd MB_MAGIC
        dd MB_FLAGS
        dd -(MB_MAGIC + MB_FLAGS)
        dd mb_header            ; header_addr
        dd mb_header            ; load_addr
        dd load_end             ; load_end_addr
        dd bss_end              ; bss_end_addr
        dd entry                ; entry_addr

entry:
        mov esi, bad_magic
        cmp eax, 0x2BADB002
        jne .print
        mov esi, bad_place
        cmp ebx, bss_end        ; above the kernel is fine
        jae .placed
        cmp ebx, mb_header - 88 ; the 88-byte structure below it is fine too
        ja .print
.placed:
        mov esi, bad_flags
        test dword [ebx], 1
        jz .print
        mov esi, bad_canary
        cmp dword [canary], 0x600DF00D
        jne .print
        push dword ok_msg       ; a push and a call: the initial stack is usable
        call get_arg
        add esp, 4
.print: lodsb
        test al, al
        jz .halt
        out 0xE9, al
        jmp .print
.halt:  hlt
        jmp .halt

get_arg:
        mov esi, [esp + 4]
        ret

ok_msg:     db "multiboot low ok", 10, 0
bad_magic:  db "multiboot low: bad magic", 10, 0
bad_place:  db "multiboot low: the information overlaps the kernel", 10, 0
bad_flags:  db "multiboot low: no memory information", 10, 0
bad_canary: db "multiboot low: the kernel was overwritten", 10, 0

        times 0x9000 - ($ - $$ + 0x8000) db 0x90
canary: dd 0x600DF00D           ; at 0x9000
        times 0x2000 - ($ - $$) db 0x90
load_end:

section .bss
        resb 4096
bss_end:

; sys.asm - the fixed frame of the QEMU oracle's system programs (tests/oracle/qemu.ts adds the
; random body). A multiboot v1 kernel (a.out kludge) loaded at 0x100000 by QEMU's -kernel and by
; vmxlab's multiboot loader alike. It sets its own GDT, IDT, page tables, CR0 and CR4 (nothing
; from either loader leaks into the result), calls the body at 0x110000, then writes a dump to the
; debug console (port 0xE9) and ends at port 0xF4 (QEMU's isa-debug-exit; a hook in vmxlab).
;
; Layout (physical = linear for everything here; the body changes only the test windows):
;   0x100000 multiboot header; 0x100020 the body's interface:
;            +0 address of log_eax (call dword [0x100020]: append EAX to the log)
;            +4 resume: where a fault resumes (the body sets it before each access that may fault)
;            +8 CR0 to start with (PE ET PG, WP as the generator chose)
;   0x101000 GDT (the segments the body loads into FS), 0x102000 IDT (32 trap stubs)
;   0x103000 page directory: PDE0 -> PT0 (identity 0-4 MiB), PDE2 -> PT_ID2 (identity 8-12 MiB),
;            PDE1/5/9 -> PT_A/PT_B/PT_C: test windows at 0x400000, 0x1400000, 0x2400000 (16 MiB apart)
;   0x104000 PT0, 0x105000 PT_ID2, 0x106000 PT_A, 0x107000 PT_B, 0x108000 PT_C (the generator
;            writes the windows' first eight PTEs), stack below 0x10F000, body at 0x110000,
;            log at 0x300000 ("VMXO", byte length, entries). Everything here is user-accessible
;            (PT0's U/S = 1); the user-mode stack is below 0x10E000, the TSS at 0x10F800.
; The test frames are 0x800000-0x80FFFF (sixteen 4 KiB frames, reached also through PT_ID2).
bits 32
org 0x100000

MB_MAGIC equ 0x1BADB002
MB_FLAGS equ 0x00010000
LOG      equ 0x300000
BODY     equ 0x110000
PD       equ 0x103000
PT0      equ 0x104000
PT_ID2   equ 0x105000
PT_A     equ 0x106000
PT_B     equ 0x107000
PT_C     equ 0x108000
FRAMES   equ 0x800000
TSS      equ 0x10F800           ; SS0 = 0x10; ESP0 written by the body before it enters CPL 3

mb_header:
        dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
        dd mb_header            ; header_addr
        dd mb_header            ; load_addr
        dd 0                    ; load_end_addr: the whole file (the generator appends the body)
        dd 0                    ; bss_end_addr: none
        dd entry
iface:
        dd log_eax              ; 0x100020
resume: dd dump                 ; 0x100024
cr0_init: dd 0x80010011         ; 0x100028
fault_count: dd 0               ; 0x10002c
log_ptr: dd LOG + 8             ; 0x100030

entry:
        cli
        cld
        lgdt [gdtr]
        jmp 0x08:.cs
.cs:    mov ax, 0x10
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov fs, ax
        mov gs, ax
        mov esp, 0x10F000
        xor eax, eax            ; a null LDT: the reset value (limit 0xFFFF) or a loader's must not leak in
        lldt ax
        mov ax, 0x70            ; the TSS (ESP0 for faults and INT 0x30 from CPL 3)
        ltr ax
        xor ecx, ecx
.gate:  mov eax, [isr_table + ecx*4]
        mov [0x102000 + ecx*8], ax
        mov word [0x102000 + ecx*8 + 2], 0x08
        mov word [0x102000 + ecx*8 + 4], 0x8E00
        shr eax, 16
        mov [0x102000 + ecx*8 + 6], ax
        inc ecx
        cmp ecx, 32
        jb .gate
        mov eax, user_return    ; INT 0x30: a DPL 3 interrupt gate, the way back from CPL 3
        mov [0x102000 + 0x30*8], ax
        mov word [0x102000 + 0x30*8 + 2], 0x08
        mov word [0x102000 + 0x30*8 + 4], 0xEE00
        shr eax, 16
        mov [0x102000 + 0x30*8 + 6], ax
        lidt [idtr]
        mov eax, 0x10           ; CR4: PSE only
        mov cr4, eax
        mov eax, PD
        mov cr3, eax
        mov eax, [cr0_init]
        mov cr0, eax
        jmp .pg
.pg:    call BODY
dump:   cld
        mov ax, 0x10
        mov ds, ax
        mov es, ax
        mov esp, 0x10F000
        mov eax, cr0
        call log_eax
        mov eax, cr4
        call log_eax
        mov esi, PD             ; PD[0..15]
        mov ecx, 16
        call log_words
        mov esi, PT_A           ; the windows' PTEs
        mov ecx, 8
        call log_words
        mov esi, PT_B
        mov ecx, 8
        call log_words
        mov esi, PT_C
        mov ecx, 8
        call log_words
        mov esi, gdt            ; the descriptors (accessed bits)
        mov ecx, (gdt_end - gdt) / 4
        call log_words
        mov esi, FRAMES         ; a checksum per test frame
        mov edx, 16
.frame: xor eax, eax
        mov ecx, 1024
.word:  rol eax, 5
        xor eax, [esi]
        add esi, 4
        dec ecx
        jnz .word
        call log_eax
        dec edx
        jnz .frame
        mov eax, [log_ptr]
        sub eax, LOG
        mov dword [LOG], 'VMXO'
        mov [LOG + 4], eax
        mov ecx, eax
        mov esi, LOG
        mov dx, 0xE9
        rep outsb
        mov al, 0
        out 0xF4, al
.halt:  hlt
        jmp .halt

log_eax:
        push ebx
        mov ebx, [log_ptr]
        cmp ebx, 0x3F0000       ; a full log stops appending
        jae .full
        mov [ebx], eax
        add ebx, 4
        mov [log_ptr], ebx
.full:  pop ebx
        ret

log_words:                      ; ESI words, ECX count
        lodsd
        call log_eax
        loop log_words
        ret

; INT 0x30 from CPL 3 (the body's way back to CPL 0): drop the interrupt frame (EIP CS EFLAGS ESP
; SS, on the ESP0 the body put in the TSS, so ESP is the body's own again) and go on at the
; instruction after the INT with flat DS/ES. EAX and ECX are the body's scratch registers.
user_return:
        mov eax, [esp]
        add esp, 20
        mov cx, 0x10
        mov ds, cx
        mov es, cx
        jmp eax

; Exceptions: log 0xFA0000vv, the error code (0 when none), CR2 and the faulting EIP, then go on
; at [resume]. After 4096 faults the program ends at the dump.
isr_common:                     ; [esp] vector, error, EIP, CS, EFLAGS
        push eax
        mov eax, [esp + 4]
        or eax, 0xFA000000
        call log_eax
        mov eax, [esp + 8]
        call log_eax
        mov eax, cr2
        call log_eax
        mov eax, [esp + 12]
        call log_eax
        mov eax, [resume]
        inc dword [fault_count]
        cmp dword [fault_count], 4096
        jb .go
        mov eax, dump
.go:    mov [esp + 12], eax
        pop eax
        add esp, 8
        iretd

%macro ISR 1
isr%1:
%if %1 = 8 || (%1 >= 10 && %1 <= 14) || %1 = 17
        push %1
%else
        push 0
        push %1
%endif
        jmp isr_common
%endmacro
%assign v 0
%rep 32
ISR v
%assign v v+1
%endrep

isr_table:
%assign v 0
%rep 32
        dd isr %+ v
%assign v v+1
%endrep

        align 8
gdtr:   dw gdt_end - gdt - 1
        dd gdt
idtr:   dw 0x31 * 8 - 1
        dd 0x102000

; base, limit (20 bits), access byte, flags nibble (G D/B L AVL)
%macro DESC 4
        dw (%2) & 0xFFFF, (%1) & 0xFFFF
        db ((%1) >> 16) & 0xFF, %3, (((%2) >> 16) & 0xF) | ((%4) << 4), ((%1) >> 24) & 0xFF
%endmacro

        times 0x1000 - ($ - $$) db 0
gdt:                            ; 0x101000
        dq 0                                    ; 0x00 null
        DESC 0, 0xFFFFF, 0x9B, 0xC              ; 0x08 code, flat, accessed (QEMU does not set A on a far JMP: README)
        DESC 0, 0xFFFFF, 0x92, 0xC              ; 0x10 data, flat
        DESC FRAMES, 0x00FFF, 0x92, 0x4         ; 0x18 data RW, 4 KiB, byte granular
        DESC FRAMES, 0x0FFFF, 0x90, 0x4         ; 0x20 data read-only, 64 KiB
        DESC FRAMES, 0x00FFF, 0x96, 0x4         ; 0x28 data RW expand-down, B=1 (offsets 0x1000-0xFFFFFFFF)
        DESC FRAMES, 0x0FFFF, 0x12, 0x4         ; 0x30 data RW, not present
        DESC FRAMES, 0x0FFFF, 0x98, 0x4         ; 0x38 code, execute-only
        DESC FRAMES, 0x0FFFF, 0x9A, 0x4         ; 0x40 code, readable
        DESC FRAMES, 0x0FFFF, 0xF2, 0x4         ; 0x48 data RW, DPL 3
        DESC FRAMES + 0x1000, 0x00000, 0x92, 0xC ; 0x50 data RW, G=1, limit 0 (4 KiB)
        DESC FRAMES, 0x00FFF, 0x96, 0x0         ; 0x58 data RW expand-down, B=0 (offsets 0x1000-0xFFFF)
        DESC 0, 0xFFFFF, 0xFB, 0xC              ; 0x60 user code, flat, DPL 3, accessed (QEMU does not set A on an IRET to CS: README)
        DESC 0, 0xFFFFF, 0xF2, 0xC              ; 0x68 user data, flat, DPL 3
        DESC TSS, 0x67, 0x89, 0x0               ; 0x70 32-bit TSS (available; LTR makes it busy)
gdt_end:

        times 0x3000 - ($ - $$) db 0
pd:                             ; 0x103000
        dd PT0 + 7, PT_A + 7, PT_ID2 + 7, 0, 0, PT_B + 7, 0, 0, 0, PT_C + 7
        times 0x4000 - ($ - $$) db 0
pt0:                            ; 0x104000: identity 0-4 MiB, user-accessible (the body also runs at CPL 3)
%assign p 0
%rep 1024
        dd (p << 12) | 7
%assign p p+1
%endrep
pt_id2:                         ; 0x105000: identity 8-12 MiB
%assign p 0
%rep 1024
        dd 0x800000 + (p << 12) | 3
%assign p p+1
%endrep
        times 0xF800 - ($ - $$) db 0    ; PT_A, PT_B, PT_C (written by the generator), stacks
tss:    dd 0, 0, 0x10                   ; link, ESP0, SS0
        times 0x66 - ($ - tss) db 0
        dw 0x68                         ; I/O map base beyond the limit: no I/O bitmap
        times 0x10000 - ($ - $$) db 0   ; the body follows at 0x110000

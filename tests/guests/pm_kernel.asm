; pm_kernel.asm - a small protected-mode kernel: its own GDT (ring 0 and ring 3 segments, a
; TSS), its own IDT, 4 KiB paging, the 8259A PIC and 8254 PIT, a switch to ring 3 with IRET,
; system calls by INT 0x80 through a DPL 3 trap gate, demand paging in the #PF handler, timer
; interrupts taken in ring 0 (while halted) and in ring 3 (stack switch through the TSS).
;
; Loaded flat at 0x100000 and entered there in 32-bit protected mode (vmrun --mode protected:
; CS=0x08 and DS/ES/SS=0x10 flat, paging off, IF=0). Needs the in-kernel PIC and PIT (Machine's
; default) and the debug console at port 0xE9. Prints:
;   pm_kernel: GDT, IDT, TSS loaded
;   pm_kernel: paging on
;   pm_kernel: 3 timer ticks while halted
;   ring 3: hello via int 0x80
;   pm_kernel: #PF at 00400000 err 00000006, mapped a page
;   pm_kernel: #PF at 00401ffc err 00000006, mapped a page
;   ring 3: demand-paged memory reads back
;   ring 3: 2 timer interrupts taken in ring 3
;   pm_kernel: user exit 42
;   pm_kernel: halting
; then halts with IF=0 (hlt; jmp back). An unexpected exception prints its vector, error code
; and EIP and halts.
;
; Physical memory (identity-mapped below 4 MiB by one page table; page 0 is left unmapped):
;   0x100000  kernel code and data (this file, supervisor pages)
;   0x101000+ user code and read-only strings (user, read-only), then one user read-write page
;   0x110000  IDT (0x81 gates)        0x110900  TSS            0x111000  page directory
;   0x112000  page table 0 (0-4 MiB)  0x113000  page table 1 (4-8 MiB, filled on demand)
;   0x114000-0x118000 kernel stack (TSS.ESP0)   0x119000 user stack page
;   0x130000+ frames the #PF handler hands out for virtual 0x400000-0x7fffff
bits 32
org 0x100000

IDT        equ 0x110000
TSS        equ 0x110900
PD         equ 0x111000
PT0        equ 0x112000
PT1        equ 0x113000
KSTACK_TOP equ 0x118000
USTACK     equ 0x119000
FRAMES     equ 0x130000
DEMAND_LO  equ 0x400000
DEMAND_HI  equ 0x800000

KCODE      equ 0x08
KDATA      equ 0x10
UCODE      equ 0x18 | 3
UDATA      equ 0x20 | 3
TSS_SEL    equ 0x28

PTE_P      equ 1
PTE_RW     equ 2
PTE_US     equ 4

PIT_COUNT  equ 1193             ; 1193182 Hz / 1193: about 1 kHz

start:
        mov esp, KSTACK_TOP
        lgdt [gdtr]
        jmp KCODE:.flush
.flush: mov ax, KDATA
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov fs, ax
        mov gs, ax

        ; TSS: the ring 0 stack for interrupts from ring 3; no I/O bitmap (ring 3 has no ports)
        mov edi, TSS
        mov ecx, 104 / 4
        xor eax, eax
        rep stosd
        mov dword [TSS + 4], KSTACK_TOP   ; ESP0
        mov dword [TSS + 8], KDATA        ; SS0
        mov word [TSS + 102], 104         ; I/O map base beyond the limit
        mov ax, TSS_SEL
        ltr ax

        ; IDT: vectors 0-31 to stubs that report the exception (#PF to its own handler), 0x20 the
        ; timer, 0x80 the system call (a trap gate ring 3 may use)
        mov edi, IDT
        mov ecx, 0x81 * 2
        xor eax, eax
        rep stosd
        xor ebx, ebx
.exc:   mov eax, [exc_stubs + ebx * 4]
        mov edx, 0x8e00                   ; present, DPL 0, 32-bit interrupt gate
        call set_gate
        inc ebx
        cmp ebx, 32
        jb .exc
        mov ebx, 14
        mov eax, page_fault
        call set_gate
        mov ebx, 0x20
        mov eax, irq0
        call set_gate
        mov ebx, 0x80
        mov eax, syscall
        mov edx, 0xef00                   ; present, DPL 3, 32-bit trap gate
        call set_gate
        lidt [idtr]
        mov esi, msg_tables
        call puts

        ; Paging: page table 0 maps 0-4 MiB one to one for the supervisor; the user pages get U/S
        mov edi, PD
        mov ecx, 3 * 1024                 ; PD, PT0, PT1
        xor eax, eax
        rep stosd
        mov edi, PT0 + 4                  ; page 0 stays unmapped
        mov eax, 0x1000 | PTE_P | PTE_RW
.map:   stosd
        add eax, 0x1000
        cmp edi, PT0 + 4096
        jb .map
        mov eax, user_start               ; user code and strings: read-only for ring 3
.ucode: mov ebx, eax
        shr ebx, 12
        or dword [PT0 + ebx * 4], PTE_US
        and dword [PT0 + ebx * 4], ~PTE_RW
        add eax, 0x1000
        cmp eax, user_data
        jb .ucode
        mov ebx, (user_data - $$ + 0x100000) >> 12
        or dword [PT0 + ebx * 4], PTE_US
        or dword [PT0 + (USTACK >> 12) * 4], PTE_US
        mov dword [PD], PT0 | PTE_P | PTE_RW | PTE_US
        mov eax, PD
        mov cr3, eax
        mov eax, cr0
        or eax, 0x80010000                ; PG, WP (the kernel honours read-only pages too)
        mov cr0, eax
        mov esi, msg_paging
        call puts

        ; PIC: master vectors 0x20-0x27, slave 0x28-0x2f, only IRQ0 unmasked
        mov al, 0x11                      ; ICW1: edge, cascade, ICW4 follows
        out 0x20, al
        out 0xa0, al
        mov al, 0x20                      ; ICW2
        out 0x21, al
        mov al, 0x28
        out 0xa1, al
        mov al, 0x04                      ; ICW3: slave on IR2
        out 0x21, al
        mov al, 0x02
        out 0xa1, al
        mov al, 0x01                      ; ICW4: 8086 mode
        out 0x21, al
        out 0xa1, al
        mov al, 0xfe                      ; OCW1
        out 0x21, al
        mov al, 0xff
        out 0xa1, al
        ; PIT channel 0: rate generator (mode 2), LSB then MSB
        mov al, 0x34
        out 0x43, al
        mov ax, PIT_COUNT
        out 0x40, al
        mov al, ah
        out 0x40, al

        ; Wait for three ticks with HLT (the emulator skips the idle time)
        sti
.idle:  hlt
        cmp dword [ticks], 3
        jb .idle
        cli
        mov esi, msg_ticks1
        call puts
        mov eax, [ticks]
        call print_dec
        mov esi, msg_ticks2
        call puts

        ; To ring 3: IRET with SS:ESP, EFLAGS (IF=1, IOPL 0), CS:EIP of the user program
        push UDATA
        push USTACK + 0x1000
        push 0x202
        push UCODE
        push user_start
        iret

; set_gate: IDT entry EBX = handler EAX, type and attributes EDX (bits 15:8 of the high dword)
set_gate:
        mov ecx, eax
        and ecx, 0xffff
        or ecx, KCODE << 16
        mov [IDT + ebx * 8], ecx
        and eax, 0xffff0000
        or eax, edx
        mov [IDT + ebx * 8 + 4], eax
        ret

; ---- interrupt and exception handlers ---------------------------------------------------

; IRQ0: count the tick, and whether it interrupted ring 3 (the CPL in the saved CS)
irq0:
        push eax
        push ds
        mov ax, KDATA
        mov ds, ax
        inc dword [ticks]
        test byte [esp + 12], 3           ; saved CS (above DS, EAX, EIP)
        jz .eoi
        inc dword [user_ticks]
.eoi:   mov al, 0x20                      ; non-specific EOI
        out 0x20, al
        pop ds
        pop eax
        iret

; INT 0x80: EAX = 0 exit(EBX), 1 write(EBX = buffer, ECX = length); returns EAX
syscall:
        push ds
        push es
        push esi
        push ecx
        push eax
        mov ax, KDATA
        mov ds, ax
        mov es, ax
        pop eax
        cmp eax, 1
        je .write
        test eax, eax
        je .exit
        mov eax, -1
        jmp .ret
.write: mov esi, ebx
        mov eax, ecx
        jecxz .ret
.wl:    mov dl, [esi]
        xchg eax, edx
        out 0xe9, al
        xchg eax, edx
        inc esi
        loop .wl
.ret:   pop ecx
        pop esi
        pop es
        pop ds
        iret
.exit:  mov esi, msg_exit
        call puts
        mov eax, ebx
        call print_dec
        mov al, 10
        call putc
        mov esi, msg_halt
        call puts
        cli
.halt:  hlt
        jmp .halt

; #PF: a not-present fault from ring 3 in the demand region gets a fresh zeroed frame; the
; faulting instruction runs again after IRET
page_fault:
        pushad
        push ds
        push es
        mov ax, KDATA
        mov ds, ax
        mov es, ax
        mov ebx, cr2
        mov edx, [esp + 8 + 32]           ; error code (above ES, DS and PUSHAD)
        cmp ebx, DEMAND_LO
        jb .bad
        cmp ebx, DEMAND_HI
        jae .bad
        test edx, 1                       ; P=1: a protection fault, not a missing page
        jnz .bad
        mov esi, msg_pf1
        call puts
        mov eax, ebx
        call print_hex
        mov esi, msg_pf2
        call puts
        mov eax, edx
        call print_hex
        mov esi, msg_pf3
        call puts
        mov eax, ebx                      ; the page directory entry for 4-8 MiB
        shr eax, 22
        test dword [PD + eax * 4], PTE_P
        jnz .pte
        mov dword [PD + eax * 4], PT1 | PTE_P | PTE_RW | PTE_US
.pte:   mov edi, [next_frame]
        add dword [next_frame], 0x1000
        push edi
        mov ecx, 1024
        xor eax, eax
        rep stosd
        pop eax
        or eax, PTE_P | PTE_RW | PTE_US
        mov ecx, ebx
        shr ecx, 12
        and ecx, 0x3ff
        mov [PT1 + ecx * 4], eax
        invlpg [ebx]
        pop es
        pop ds
        popad
        add esp, 4                        ; the error code
        iret
.bad:   push dword [esp + 8 + 32 + 4]     ; EIP
        push edx
        push 14
        jmp exc_report

; Exceptions without a handler: report vector, error code and EIP, and halt
%assign v 0
%rep 32
exc_ %+ v:
%if v == 8 || (v >= 10 && v <= 14) || v == 17
        push dword [esp + 4]              ; EIP (above the error code)
        push dword [esp + 4]              ; the error code
%else
        push dword [esp]                  ; EIP
        push 0
%endif
        push v
        jmp exc_report
%assign v v + 1
%endrep

exc_report:                               ; [esp] vector, [esp+4] error code, [esp+8] EIP
        mov ax, KDATA
        mov ds, ax
        mov esi, msg_exc1
        call puts
        mov eax, [esp]
        call print_hex
        mov esi, msg_exc2
        call puts
        mov eax, [esp + 4]
        call print_hex
        mov esi, msg_exc3
        call puts
        mov eax, [esp + 8]
        call print_hex
        mov al, 10
        call putc
        cli
.halt:  hlt
        jmp .halt

; ---- console (port 0xE9) --------------------------------------------------------------

putc:   out 0xe9, al
        ret
puts:   lodsb                             ; ESI: a zero-terminated string
        test al, al
        jz .done
        call putc
        jmp puts
.done:  ret
print_hex:                                ; EAX as 8 hex digits
        push ecx
        mov ecx, 8
.digit: rol eax, 4
        push eax
        and al, 0x0f
        add al, '0'
        cmp al, '9'
        jbe .out
        add al, 'a' - '0' - 10
.out:   call putc
        pop eax
        loop .digit
        pop ecx
        ret
print_dec:                                ; EAX in decimal
        push ebx
        push ecx
        push edx
        mov ebx, 10
        xor ecx, ecx
.div:   xor edx, edx
        div ebx
        push edx
        inc ecx
        test eax, eax
        jnz .div
.emit:  pop eax
        add al, '0'
        call putc
        loop .emit
        pop edx
        pop ecx
        pop ebx
        ret

; ---- kernel data ------------------------------------------------------------------------

align 8
gdt:    dq 0
        dq 0x00cf9a000000ffff             ; 0x08 ring 0 code, flat
        dq 0x00cf92000000ffff             ; 0x10 ring 0 data, flat
        dq 0x00cffa000000ffff             ; 0x18 ring 3 code, flat
        dq 0x00cff2000000ffff             ; 0x20 ring 3 data, flat
        dw 103, TSS & 0xffff              ; 0x28 32-bit TSS, available
        db (TSS >> 16) & 0xff, 0x89, 0, TSS >> 24
gdt_end:
gdtr:   dw gdt_end - gdt - 1
        dd gdt
idtr:   dw 0x81 * 8 - 1
        dd IDT
exc_stubs:
%assign v 0
%rep 32
        dd exc_ %+ v
%assign v v + 1
%endrep
next_frame:
        dd FRAMES

msg_tables: db "pm_kernel: GDT, IDT, TSS loaded", 10, 0
msg_paging: db "pm_kernel: paging on", 10, 0
msg_ticks1: db "pm_kernel: ", 0
msg_ticks2: db " timer ticks while halted", 10, 0
msg_pf1:    db "pm_kernel: #PF at ", 0
msg_pf2:    db " err ", 0
msg_pf3:    db ", mapped a page", 10, 0
msg_exit:   db "pm_kernel: user exit ", 0
msg_halt:   db "pm_kernel: halting", 10, 0
msg_exc1:   db "pm_kernel: unexpected exception ", 0
msg_exc2:   db " err ", 0
msg_exc3:   db " at ", 0

; ---- ring 3 -----------------------------------------------------------------------------

align 4096
user_start:
        mov ax, UDATA
        mov ds, ax
        mov es, ax
        mov eax, 1
        mov ebx, umsg_hello
        mov ecx, umsg_hello_len
        int 0x80
        ; two pages nobody mapped: the first fault also fills the page directory entry
        mov dword [DEMAND_LO], 0x12345678
        mov dword [DEMAND_LO + 0x1ffc], 0x9abcdef0
        cmp dword [DEMAND_LO], 0x12345678
        jne .bad
        cmp dword [DEMAND_LO + 0x1ffc], 0x9abcdef0
        jne .bad
        cmp dword [DEMAND_LO + 4], 0      ; a fresh page is zeroed
        jne .bad
        mov eax, 1
        mov ebx, umsg_paged
        mov ecx, umsg_paged_len
        int 0x80
        ; spin in ring 3 until two more ticks: the timer interrupts ring 3 code
        mov eax, [ticks]
        add eax, 2
.spin:  cmp [ticks], eax
        jb .spin
        mov eax, [user_ticks]
        add al, '0'
        mov [umsg_ticks_digit], al
        mov eax, 1
        mov ebx, umsg_ticks
        mov ecx, umsg_ticks_len
        int 0x80
        xor eax, eax
        mov ebx, 42
        int 0x80
.bad:   mov eax, 1
        mov ebx, umsg_bad
        mov ecx, umsg_bad_len
        int 0x80
        xor eax, eax
        mov ebx, 1
        int 0x80

umsg_hello:     db "ring 3: hello via int 0x80", 10
umsg_hello_len  equ $ - umsg_hello
umsg_paged:     db "ring 3: demand-paged memory reads back", 10
umsg_paged_len  equ $ - umsg_paged
umsg_bad:       db "ring 3: bad", 10
umsg_bad_len    equ $ - umsg_bad

align 4096
user_data:                                ; ring 3 may write here; the kernel counts ticks here too
ticks:          dd 0
user_ticks:     dd 0
umsg_ticks:     db "ring 3: "
umsg_ticks_digit: db "? timer interrupts taken in ring 3", 10
umsg_ticks_len  equ $ - umsg_ticks

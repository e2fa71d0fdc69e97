; pm_serial.asm - polled output through the 16550 UART, 32-bit flat protected mode.
; Before each byte, spins on the line status register (0x3FD) until bit 5
; (THR empty) is set, then writes the byte to 0x3F8. A UART that never
; reports THR empty makes this spin until the instruction budget ends.
; Output (on the UART, not on 0xE9): "serial ok\n", then HLT.
bits 32
org 0x100000

start:
        mov esp, 0x80000
        mov esi, msg
.next:  lodsb
        test al, al
        jz .halt
        call uart_putc
        jmp .next
.halt:  hlt
        jmp .halt

; uart_putc: AL -> UART. Preserves all registers.
uart_putc:
        push edx
        push eax
        mov dx, 0x3FD           ; LSR
.wait:  in al, dx
        test al, 0x20           ; THRE
        jz .wait
        pop eax
        mov dx, 0x3F8           ; THR
        out dx, al
        pop edx
        ret

msg:    db "serial ok", 10, 0

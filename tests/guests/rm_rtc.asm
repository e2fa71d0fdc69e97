; rm_rtc.asm - the MC146818 RTC's periodic interrupt on IRQ8, through the slave 8259A, waking HLT.
; Tests: the RTC (ports 0x70/0x71) raising IRQ8 at its periodic rate (register A rate 15: 500 ms),
; the interrupt reaching the processor through the cascaded PICs (slave vector base 0x70), a halted
; vCPU woken by the RTC's timer alone (the PIT is never programmed), and register C's read
; releasing the line. Output: "R" per interrupt, three of them, then "\n" and HLT with IF=0.
; Needs the Machine's RTC (devices: { rtc: "userspace" } or "kernel"). Virtual time at the end: 1.5 s.
bits 16
org 0x1000

start:
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x8000

        mov word [0x70*4], rtc_handler  ; IVT 0x70: IRQ8 with the slave's vectors at 0x70
        mov word [0x70*4+2], 0

        mov al, 0x11                    ; master: ICW1 (edge, cascade, ICW4)
        out 0x20, al
        mov al, 0x08                    ; ICW2: vectors 0x08-0x0F
        out 0x21, al
        mov al, 0x04                    ; ICW3: a slave on IR2
        out 0x21, al
        mov al, 0x01                    ; ICW4: 8086 mode
        out 0x21, al
        mov al, 0xfb                    ; OCW1: only IR2 (the slave) unmasked
        out 0x21, al

        mov al, 0x11                    ; slave: ICW1
        out 0xa0, al
        mov al, 0x70                    ; ICW2: vectors 0x70-0x77
        out 0xa1, al
        mov al, 0x02                    ; ICW3: slave id 2
        out 0xa1, al
        mov al, 0x01                    ; ICW4
        out 0xa1, al
        mov al, 0xfe                    ; OCW1: only IR0 (IRQ8) unmasked
        out 0xa1, al

        mov al, 0x0a                    ; RTC register A: divider on, rate 15 (500 ms)
        out 0x70, al
        mov al, 0x2f
        out 0x71, al
        mov al, 0x0b                    ; register B: set PIE
        out 0x70, al
        in al, 0x71
        or al, 0x40
        mov ah, al
        mov al, 0x0b
        out 0x70, al
        mov al, ah
        out 0x71, al

        sti
idle:
        hlt
        cmp byte [ticks], 3
        jb idle

        cli
        mov al, 0x0b                    ; PIE off again
        out 0x70, al
        mov al, 0x02
        out 0x71, al
        mov al, 10
        out 0xe9, al
        hlt

rtc_handler:
        push ax
        mov al, 0x0c                    ; read register C: clears IRQF, the line drops
        out 0x70, al
        in al, 0x71
        mov al, 'R'
        out 0xe9, al
        inc byte [ticks]
        mov al, 0x20                    ; EOI to the slave, then the master
        out 0xa0, al
        out 0x20, al
        pop ax
        iret

ticks:  db 0

; hello16.asm - the classic KVM "hello" guest (LWN "Using the KVM API").
; Real mode, loaded at 0x1000, CS=0 IP=0x1000.
; Expects AX=2 and BX=2 on entry; prints AL+BL as a digit, then '\n', on the
; 16550 UART transmit register (port 0x3F8), and halts: output "4\n".
; The bytes must stay exactly: ba f8 03 00 d8 04 30 ee b0 0a ee f4
bits 16
org 0x1000

        mov dx, 0x3f8           ; UART THR
        add al, bl              ; 2 + 2
        add al, '0'             ; to ASCII
        out dx, al
        mov al, 0x0a            ; newline
        out dx, al
        hlt

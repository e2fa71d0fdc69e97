; rm_string_io.asm - real-mode string and byte port I/O.
; Tests: REP OUTSB (DS:SI, CX, DX=0xE9), IN AL,DX from port 0x60 (4 times,
; stored at 0000:0600..0603 so a test can compare them with what its port
; hook returned), then REP OUTSB again.
; Output: "hello via rep outsb\nok\n", then HLT. The bytes read are not printed.
bits 16
org 0x1000

INBUF   equ 0x0600              ; where the 4 bytes from port 0x60 are stored

start:
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x8000
        cld

        mov si, msg
        mov cx, msg_len
        mov dx, 0xE9
        rep outsb               ; one console byte per iteration

        mov dx, 0x60            ; keyboard data port
        mov di, INBUF
        mov cx, 4
.read:  in al, dx
        mov [di], al
        inc di
        dec cx
        jnz .read

        mov si, ok_msg
        mov cx, ok_len
        mov dx, 0xE9
        rep outsb
        hlt

msg:    db "hello via rep outsb", 10
msg_len equ $ - msg
ok_msg: db "ok", 10
ok_len  equ $ - ok_msg

; rm_int.asm - real-mode software interrupt through the IVT.
; Tests: writing an IVT entry (vector 0x21 at 0000:0084), INT n pushing
; FLAGS/CS/IP, the handler seeing that frame, IRET restoring IP, CS and FLAGS
; (CF set before INT survives the handler's CLC), and SP back where it was.
; Output: "hello from int 21h\nok\n" (or "...bad\n" on a failed check), then HLT.
bits 16
org 0x1000

start:
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x8000
        cld

        ; IVT entry 0x21: offset at 0x21*4 = 0x84, segment at 0x86
        mov word [0x21*4], int21_handler
        mov word [0x21*4+2], 0

        mov ah, 0x09            ; DOS-style "print $-terminated string at DS:DX"
        mov dx, msg
        xor bx, bx
        stc                     ; CF=1 must come back after IRET
        int 0x21
after_int:
        jnc bad                 ; FLAGS not restored by IRET
        cmp bx, 0xBEEF          ; handler ran and saw a correct frame
        jne bad
        cmp sp, 0x8000          ; IRET popped exactly IP, CS, FLAGS
        jne bad
        mov si, ok_msg
        call puts
        hlt

bad:    mov si, bad_msg
        call puts
        hlt

; INT 0x21 handler. Frame after "push bp": [bp+2]=IP, [bp+4]=CS, [bp+6]=FLAGS.
int21_handler:
        push bp
        mov bp, sp
        cmp word [bp+2], after_int      ; return IP is the instruction after INT
        jne .badframe
        cmp word [bp+4], 0              ; return CS
        jne .badframe
        test word [bp+6], 1             ; pushed FLAGS has CF=1
        jz .badframe
        push ax
        push si
        mov si, dx
.next:  lodsb
        cmp al, '$'
        je .done
        out 0xE9, al
        jmp .next
.done:  pop si
        pop ax
        mov bx, 0xBEEF
        clc                     ; IRET must restore CF=1 anyway
        pop bp
        iret
.badframe:
        mov bx, 0xBAD0
        pop bp
        iret

%include "rm_print.inc"

msg:     db "hello from int 21h", 10, "$"
ok_msg:  db "ok", 10, 0
bad_msg: db "bad", 10, 0

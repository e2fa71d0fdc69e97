; pm_outloop.asm - I/O exit storm, 32-bit flat protected mode (benchmark).
; Writes a POST code to port 0x80 (OUT imm8, AL) ECX times (ECX=0 means
; 100000), the whole loop repeated EDI times (EDI=0 means once), then prints
; "done\n" to port 0xE9. Each OUT 0x80 is an IO exit (to the in-kernel POST
; device, or to userspace if none is attached).
; Output: "done\n", then HLT. Port 0x80 sees the low byte of the down-counter:
; N & 0xff, (N-1) & 0xff, ..., 1.
bits 32
org 0x100000

start:
        mov esp, 0x80000
        mov ebx, ecx            ; OUTs per pass
        test ebx, ebx
        jnz .have_n
        mov ebx, 100000
.have_n:
        mov ebp, edi            ; passes
        test ebp, ebp
        jnz pass
        inc ebp

pass:   mov ecx, ebx
.out:   mov al, cl
        out 0x80, al
        dec ecx
        jnz .out
        dec ebp
        jnz pass

        mov esi, done_msg
        call puts
.halt:  hlt
        jmp .halt

%include "pm_print.inc"

done_msg: db "done", 10, 0

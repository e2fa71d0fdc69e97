; pm_hypercall.asm - one VMCALL (0F 01 C1), 32-bit flat protected mode.
; KVM's hypercall ABI: number in EAX, arguments in EBX, ECX, EDX, ESI, result
; in EAX. Calls hypercall 1 with EBX=0x11111111, ECX=0x22222222, EDX=ESI=0.
; Output: the EAX returned, as 8 lowercase hex digits and "\n", then HLT.
;   with a hook that returns EBX+ECX:          "33333333\n"
;   with KVM's default for an unknown call (-KVM_ENOSYS = -1000): "fffffc18\n"
bits 32
org 0x100000

start:
        mov esp, 0x80000
        mov eax, 1              ; hypercall number
        mov ebx, 0x11111111     ; a0
        mov ecx, 0x22222222     ; a1
        xor edx, edx            ; a2
        xor esi, esi            ; a3
        vmcall
        call print_hex
        call newline
.halt:  hlt
        jmp .halt

%include "pm_print.inc"

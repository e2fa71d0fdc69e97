; pm_xpage.asm - a loop that calls a function on another page, remapped halfway (JIT regions
; spanning pages, and the TLB guard on their cross-page edges).
; 32-bit flat protected mode. Sets up paging itself: 4 MiB pages (CR4.PSE), PDE 0 identity-maps
; 0..4 MiB (this code, the stack, the page directory at 0x90000), PDE 1 maps linear 0x400000 to
; physical 0x400000, where FN_A is copied. The loop calls linear 0x400000 EDI times (EDI=0: 200000);
; when ECX reaches half the count, it points PDE 1 at physical 0x800000 (FN_B) and INVLPGs.
;   FN_A: eax = (eax + ecx) ^ 0x5a5a      FN_B: eax = rol(eax - ecx, 3)
; Output: EAX as 8 lowercase hex digits and "\n", HLT.
bits 32
org 0x100000

PD      equ 0x90000
FN_LIN  equ 0x400000

start:
        mov esp, 0x80000
        mov ebx, edi            ; iterations
        test ebx, ebx
        jnz .have
        mov ebx, 200000
.have:  cld
        mov esi, fn_a           ; copy the two functions (paging is still off)
        mov edi, 0x400000
        mov ecx, fn_a_end - fn_a
        rep movsb
        mov esi, fn_b
        mov edi, 0x800000
        mov ecx, fn_b_end - fn_b
        rep movsb
        mov edi, PD             ; page directory
        mov ecx, 1024
        xor eax, eax
        rep stosd
        mov dword [PD], 0x00000083       ; 0..4 MiB, 4 MiB page, RW, present
        mov dword [PD + 4], 0x00400083   ; linear 4 MiB -> physical 0x400000 (FN_A)
        mov eax, cr4
        or eax, 0x10            ; PSE
        mov cr4, eax
        mov eax, PD
        mov cr3, eax
        mov eax, cr0
        or eax, 0x80000000      ; PG
        mov cr0, eax

        mov ecx, ebx
        shr ebx, 1              ; remap when ECX == count / 2
        xor eax, eax
.loop:  call FN_LIN
        cmp ecx, ebx
        jne .same
        mov dword [PD + 4], 0x00800083   ; linear 4 MiB -> physical 0x800000 (FN_B)
        invlpg [FN_LIN]
.same:  dec ecx
        jnz .loop

        call print_hex
        call newline
.halt:  hlt
        jmp .halt

fn_a:   add eax, ecx
        xor eax, 0x5a5a
        ret
fn_a_end:
fn_b:   sub eax, ecx
        rol eax, 3
        ret
fn_b_end:

%include "pm_print.inc"

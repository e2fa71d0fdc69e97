#!/usr/bin/env bash
# build.sh - rebuild every guest binary in tests/guests from its source.
# Needs nasm and gcc with 32-bit multilib (Debian: apt-get install nasm gcc-multilib).
# The outputs are committed, so tests never need this; run it after editing a source
# and commit the sources and binaries together. `./build.sh --check` rebuilds into a
# temporary directory and fails if any committed binary differs from its rebuild.
set -euo pipefail
cd "$(dirname "$0")"

OUT=.
if [[ "${1:-}" == "--check" ]]; then
    OUT=$(mktemp -d)
fi
OBJ=$(mktemp -d)
trap 'rm -rf "$OBJ"; [[ "$OUT" != . ]] && rm -rf "$OUT"' EXIT

# ---- flat binaries: nasm -f bin -------------------------------------------------------
RAW="hello16 rm_int rm_string_io rm_ud rm_triple rm_sieve
     pm_sieve pm_crc32 pm_fib pm_memcpy pm_outloop pm_hypercall pm_serial mb_aout
     rm_rtc pm_kernel pm_mandel pm_matmul pm_memcpy_movsd pm_memcpy_bytes pm_xpage pm_jcc_next mb_low"
for name in $RAW; do
    nasm -f bin -Werror -o "$OUT/$name.bin" "$name.asm"
done
# Variants with their variables on the code page (and matmul's j index in memory, as -O0 C has it)
nasm -f bin -Werror -DCODEPAGE -o "$OUT/pm_mandel_cp.bin" pm_mandel.asm
nasm -f bin -Werror -DLOOPVARS -o "$OUT/pm_matmul_lv.bin" pm_matmul.asm
nasm -f bin -Werror -DLOOPVARS -DCODEPAGE -o "$OUT/pm_matmul_cp.bin" pm_matmul.asm

# ---- the C guest: gcc -m32 freestanding + ld ------------------------------------------
CFLAGS=(-m32 -march=i686 -std=gnu11 -Wall -Wextra -Werror
        -ffreestanding -fno-builtin -fno-pic -fno-pie -fno-stack-protector
        -fno-asynchronous-unwind-tables -fcf-protection=none
        -mno-sse -mno-mmx -mno-80387 -mgeneral-regs-only)
LDFLAGS=(-m elf_i386 -nostdlib -static -T c/link.ld --build-id=none
         -z max-page-size=0x1000 -z noexecstack)
LIBGCC=$(gcc -m32 -print-libgcc-file-name)

nasm -f elf32 -Werror -o "$OBJ/crt0.o" c/crt0.asm
nasm -f elf32 -Werror -DMULTIBOOT -o "$OBJ/crt0_mb.o" c/crt0.asm

for opt in O0 O2; do
    for src in lib main; do
        gcc "${CFLAGS[@]}" -"$opt" -c -o "$OBJ/${src}_$opt.o" "c/$src.c"
    done
    ld "${LDFLAGS[@]}" -o "$OUT/cguest_$opt.elf" \
        "$OBJ/crt0.o" "$OBJ/lib_$opt.o" "$OBJ/main_$opt.o" "$LIBGCC"
done

# the float guest: x87 code (-mfpmath=387, no SSE), linked with the C guest's crt0 and lib
FCFLAGS=(-m32 -march=i686 -std=gnu11 -Wall -Wextra -Werror
         -ffreestanding -fno-builtin -fno-pic -fno-pie -fno-stack-protector
         -fno-asynchronous-unwind-tables -fcf-protection=none
         -mno-sse -mno-mmx -mfpmath=387)
for opt in O0 O2; do
    gcc "${FCFLAGS[@]}" -"$opt" -c -o "$OBJ/float_$opt.o" c/float.c
    ld "${LDFLAGS[@]}" -o "$OUT/cfloat_$opt.elf" \
        "$OBJ/crt0.o" "$OBJ/lib_$opt.o" "$OBJ/float_$opt.o" "$LIBGCC"
done

# multiboot: the -O2 objects plus multiboot.c, with the header-bearing crt0
gcc "${CFLAGS[@]}" -O2 -c -o "$OBJ/multiboot_O2.o" c/multiboot.c
ld "${LDFLAGS[@]}" -o "$OUT/mb_kernel.elf" \
    "$OBJ/crt0_mb.o" "$OBJ/multiboot_O2.o" "$OBJ/lib_O2.o" "$OBJ/main_O2.o" "$LIBGCC"

# the debugger's demo (tests/gdb_test.ts): -O0 with DWARF, so gdb can break, step and print
gcc "${CFLAGS[@]}" -O0 -g -c -o "$OBJ/gdb_demo.o" c/gdb_demo.c
gcc "${CFLAGS[@]}" -O0 -g -c -o "$OBJ/lib_g.o" c/lib.c
ld "${LDFLAGS[@]}" -o "$OUT/gdb_demo.elf" "$OBJ/crt0.o" "$OBJ/lib_g.o" "$OBJ/gdb_demo.o" "$LIBGCC"

# a C program linked the usual way, at gcc's default 0x08048000 (and the same linked at 1 MiB)
gcc -m32 -ffreestanding -nostdlib -static -O2 -o "$OUT/usual_link.elf" c/usual_link.c
gcc -m32 -ffreestanding -nostdlib -static -O2 -Wl,-Ttext-segment=0x100000 -o "$OUT/usual_link_low.elf" c/usual_link.c

if [[ "$OUT" != . ]]; then
    status=0
    for f in "$OUT"/*; do
        if ! cmp -s "$f" "$(basename "$f")"; then
            echo "differs from its rebuild: $(basename "$f")" >&2
            status=1
        fi
    done
    [[ $status == 0 ]] && echo "all binaries match their sources"
    exit $status
fi
echo "built: $(ls *.bin *.elf | tr '\n' ' ')"

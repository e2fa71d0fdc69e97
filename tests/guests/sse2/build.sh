#!/usr/bin/env bash
# build.sh - build the SSE2 C guest (sse2.elf) and its expected output (sse2.expected: the same
# source run natively). Needs gcc with 32-bit multilib and nasm. Outputs are committed.
set -euo pipefail
cd "$(dirname "$0")"
OBJ=$(mktemp -d)
trap 'rm -rf "$OBJ"' EXIT
FP=(-msse2 -mfpmath=sse -mno-80387 -fno-math-errno)
CFLAGS=(-m32 -march=pentium4 -std=gnu11 -Wall -Wextra -Werror -O2
        -ffreestanding -fno-builtin -fno-pic -fno-pie -fno-stack-protector
        -fno-asynchronous-unwind-tables -fcf-protection=none)
LDFLAGS=(-m elf_i386 -nostdlib -static -T ../c/link.ld --build-id=none -z max-page-size=0x1000 -z noexecstack)
nasm -f elf32 -Werror -o "$OBJ/crt0.o" ../c/crt0.asm
# lib.c holds no floating point: built as the C guest builds it (general registers only).
gcc "${CFLAGS[@]}" -mno-sse -mno-mmx -mno-80387 -mgeneral-regs-only -c -o "$OBJ/lib.o" ../c/lib.c
gcc "${CFLAGS[@]}" "${FP[@]}" -c -o "$OBJ/sse2.o" sse2.c
ld "${LDFLAGS[@]}" -o sse2.elf "$OBJ/crt0.o" "$OBJ/lib.o" "$OBJ/sse2.o" "$(gcc -m32 -print-libgcc-file-name)"
# No x87 instruction anywhere (opcodes D8-DF would be x87; -mno-80387 already forbids them).
if objdump -d sse2.elf | grep -E '\sf(ld|st|add|mul|div|sub|ild|istp|comi|ucomi)' ; then
    echo "x87 instructions in sse2.elf" >&2; exit 1
fi
# The expected output: the same source, hosted, on this processor.
H=(-m32 -std=gnu11 -O2 -fno-builtin -DHOSTED "${FP[@]}")
gcc "${H[@]}" -c -o "$OBJ/h_sse2.o" sse2.c
gcc -m32 -O2 -std=gnu11 -fno-builtin -DHOSTED -c -o "$OBJ/h_lib.o" ../c/lib.c
gcc -m32 -O2 -c -o "$OBJ/h_shim.o" ../c/host_shim.c
gcc -m32 -o "$OBJ/host" "$OBJ/h_sse2.o" "$OBJ/h_lib.o" "$OBJ/h_shim.o"
"$OBJ/host" > sse2.expected
echo "sse2.elf: $(wc -c < sse2.elf) bytes; expected output: $(wc -l < sse2.expected) lines"

# The benchmark guest: passes in EDI (crt0_passes.asm hands them to main), same flags.
nasm -f elf32 -Werror -o "$OBJ/crt0_passes.o" crt0_passes.asm
gcc "${CFLAGS[@]}" "${FP[@]}" -c -o "$OBJ/bench_sse2.o" bench_sse2.c
ld "${LDFLAGS[@]}" -o bench_sse2.elf "$OBJ/crt0_passes.o" "$OBJ/lib.o" "$OBJ/bench_sse2.o" "$(gcc -m32 -print-libgcc-file-name)"
if objdump -d bench_sse2.elf | grep -E '\sf(ld|st|add|mul|div|sub|ild|istp|comi|ucomi)' ; then
    echo "x87 instructions in bench_sse2.elf" >&2; exit 1
fi
gcc "${H[@]}" -c -o "$OBJ/h_bench.o" bench_sse2.c
printf '%s\n' '#include <stdlib.h>' 'int bench_main(unsigned);' 'int main(int c, char **v) { return bench_main(c > 1 ? (unsigned)atoi(v[1]) : 1); }' > "$OBJ/h_main.c"
gcc -m32 -O2 -c -o "$OBJ/h_main.o" "$OBJ/h_main.c"
gcc -m32 -o "$OBJ/hbench" "$OBJ/h_bench.o" "$OBJ/h_lib.o" "$OBJ/h_shim.o" "$OBJ/h_main.o"
"$OBJ/hbench" 3 > bench_sse2.expected
echo "bench_sse2.elf: $(wc -c < bench_sse2.elf) bytes; expected: $(cat bench_sse2.expected)"

#!/usr/bin/env bash
# Builds the host-CPU oracle harness (harness.c -> harness.elf): a static 32-bit Linux binary,
# committed so that the oracle and CI run it without a compiler. Needs gcc-multilib (Debian).
set -euo pipefail
cd "$(dirname "$0")"
gcc -m32 -static -O2 -Wall -Wextra -fno-pie -no-pie -o harness.elf harness.c
strip harness.elf
echo "built $(pwd)/harness.elf ($(stat -c %s harness.elf) bytes)"

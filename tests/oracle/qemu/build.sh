#!/usr/bin/env bash
# Builds the QEMU oracle's frame (sys.asm -> sys.bin), committed so neither the oracle nor CI needs nasm.
set -euo pipefail
cd "$(dirname "$0")"
nasm -f bin -o sys.bin sys.asm
echo "built $(pwd)/sys.bin ($(stat -c %s sys.bin) bytes)"

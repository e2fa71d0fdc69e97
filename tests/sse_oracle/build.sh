#!/usr/bin/env bash
# build.sh - build oracle.c for the host (gcc -m32, Debian's gcc-multilib), run it, and write the
# vectors the tests check vmxlab against (vectors.txt, committed: tests never compile C).
# sequences.txt (random sequences over XMM0-7) and exceptions.txt (exceptions unmasked: #XM).
# Usage: ./build.sh [vectors-per-instruction] [seed] [sequences]   (defaults 24, the source's seed, 2000)
set -euo pipefail
cd "$(dirname "$0")"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
gcc -m32 -O1 -std=gnu11 -Wall -Wextra -Werror -fno-pie -no-pie -o "$OUT/oracle" oracle.c
"$OUT/oracle" "${1:-24}" "${2:-0x9e3779b97f4a7c15}" > vectors.txt
"$OUT/oracle" "${3:-2000}" "${2:-0x9e3779b97f4a7c15}" seq > sequences.txt
"$OUT/oracle" 20 "${2:-0x9e3779b97f4a7c15}" xm > exceptions.txt
echo "$(wc -l < vectors.txt) vectors, $(wc -l < sequences.txt) sequences, $(wc -l < exceptions.txt) with exceptions unmasked on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

#!/usr/bin/env bash
# build.sh - build oracle.c for the host (gcc -m32, Debian's gcc-multilib), run it, and write the
# vectors the tests check vmxlab against (vectors.txt, committed: tests never compile C).
# Usage: ./build.sh [vectors-per-instruction] [seed]   (defaults 24 and the source's seed)
set -euo pipefail
cd "$(dirname "$0")"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
gcc -m32 -O1 -std=gnu11 -Wall -Wextra -Werror -fno-pie -no-pie -o "$OUT/oracle" oracle.c
"$OUT/oracle" "${1:-24}" ${2:+"$2"} > vectors.txt
echo "$(wc -l < vectors.txt) vectors on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

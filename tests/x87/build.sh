#!/usr/bin/env bash
# build.sh - build the x87 host oracle and regenerate its vectors from the host CPU.
# Needs gcc with 32-bit multilib (Debian: apt-get install gcc-multilib). The binary and the
# vectors are committed, so tests never need this. The host that made the committed vectors is
# named in vectors.host.
set -euo pipefail
cd "$(dirname "$0")"
gcc -m32 -O1 -std=gnu11 -Wall -Wextra -Werror -o x87_oracle x87_oracle.c
./x87_oracle 1 40 > vectors.txt
{ grep -m1 "model name" /proc/cpuinfo | sed 's/.*: //'; gcc --version | head -1; } > vectors.host
wc -l vectors.txt

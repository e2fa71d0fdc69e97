#!/usr/bin/env bash
# The test command (npm test): type-check, then the same test files under `deno test` and
# `bun test`. Ends with one line "N passed, N failed" summing both runners; exits non-zero when
# the type check fails, a test fails, or no test ran.
set -uo pipefail
cd "$(dirname "$0")/.."
export NO_COLOR=1 FORCE_COLOR=0
deno=node_modules/.bin/deno
bun=node_modules/.bin/bun
logs=$(mktemp -d)
status=0

dirs=()
for d in runtime jit api scripts tests; do
  if [ -n "$(find "$d" -name '*.ts' -not -path '*/node_modules/*' 2>/dev/null | head -1)" ]; then dirs+=("$d/"); fi
done
echo "== deno check ${dirs[*]}"
if ! "$deno" check "${dirs[@]}"; then echo "deno check failed"; status=1; fi

echo "== deno test"
"$deno" test -A --no-check "$@" 2>&1 | tee "$logs/deno.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "== bun test"
"$bun" test --timeout 60000 "$@" 2>&1 | tee "$logs/bun.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# deno: "ok | 12 passed | 0 failed | 1 ignored"; bun: " 12 pass", " 0 fail"
dp=$(grep -Eo '[0-9]+ passed' "$logs/deno.log" | tail -1 | grep -Eo '[0-9]+'); dp=${dp:-0}
df=$(grep -Eo '[0-9]+ failed' "$logs/deno.log" | tail -1 | grep -Eo '[0-9]+'); df=${df:-0}
bp=$(grep -Eo '^ *[0-9]+ pass$' "$logs/bun.log" | tail -1 | grep -Eo '[0-9]+'); bp=${bp:-0}
bf=$(grep -Eo '^ *[0-9]+ fail$' "$logs/bun.log" | tail -1 | grep -Eo '[0-9]+'); bf=${bf:-0}
echo "deno: $dp passed, $df failed; bun: $bp passed, $bf failed"
passed=$((dp + bp)); failed=$((df + bf))
if [ "$passed" -eq 0 ]; then echo "no test ran"; status=1; fi
if [ "$failed" -ne 0 ]; then status=1; fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
exit $status

#!/usr/bin/env bash
# The test command (npm test): type-check, then the same test files under `deno test` and
# `bun test`, then (without arguments) the tests that run guests once more under `deno test` with
# VMXLAB_ENGINE=jit, so every Machine they build runs under the JIT. Ends with one line
# "N passed, N failed" summing all three; exits non-zero when the type check fails, a test fails,
# or no test ran. VMXLAB_JIT_PASS=0 skips the JIT pass.
set -uo pipefail
cd "$(dirname "$0")/.."
# No colour codes in the logs: NO_COLOR, and FORCE_COLOR unset (Deno colours whenever it is set, even to 0).
export NO_COLOR=1
unset FORCE_COLOR
deno=node_modules/.bin/deno
bun=node_modules/.bin/bun
logs=$(mktemp -d)
status=0

dirs=()
for d in runtime jit api scripts tests; do
  if [ -n "$(find "$d" -name '*.ts' -not -path '*/node_modules/*' 2>/dev/null | head -1)" ]; then dirs+=("$d/"); fi
done
nfiles=$(find "${dirs[@]}" -name '*_test.ts' -not -path '*/node_modules/*' | wc -l)
echo "== [1/4] deno check ${dirs[*]}"
if ! "$deno" check "${dirs[@]}"; then echo "deno check failed"; status=1; fi

echo "== [2/4] deno test ($nfiles test files; each starts with a \"running N tests from FILE\" line)"
"$deno" test -A --no-check "$@" 2>&1 | tee "$logs/deno.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "== [3/4] bun test ($nfiles test files)"
"$bun" test --timeout 60000 "$@" 2>&1 | tee "$logs/bun.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# The JIT pass: the files whose tests run guests through Machine, vmrun or the HTTP service
# (VMXLAB_ENGINE reaches Machines built in-process, in child processes and in the service's
# workers). Left out, each for a reason:
#   api/engine_test.ts, runtime/vmm/machine_engine_test.ts, jit/*: run every engine already;
#   tests/vmrun_test.ts: the CLI's options, usage errors and report (17 child processes that would
#     each load binaryen, ~20 s); vmrun under the JIT is jit/vmrun_engine_test.ts, lockstep_test.ts
#     and the README's vmrun examples, which are in this pass;
#   api/{openapi,malformed,problem,serve,client,watchdog}_test.ts: validation, documents,
#     transport and worker replacement, the same whatever the engine;
#   tests/sse_oracle/sse_oracle_test.ts and tests/sse2_guest_test.ts: run interp and jit (and auto) themselves;
#   tests/conformance*_test.ts and runtime/{cpu,devices,vmm} tests other than the ones below: they
#     drive the processor or a device directly, not a Machine, tests/cpu_harness.ts or
#     runtime/kvm/_testing.ts (VMXLAB_ENGINE does not reach them; jit/conformance_jit_test.ts runs
#     the conformance vectors under the JIT).
# The hand-built processor tests on tests/cpu_harness.ts and the KVM-level tests on
# runtime/kvm/_testing.ts are in: both helpers attach the JIT too.
JIT_FILES=(tests/guests_test.ts tests/interrupts_test.ts tests/readme_test.ts tests/scripts_test.ts
  runtime/vmm/machine_test.ts runtime/vmm/machine_reset_test.ts
  api/app_test.ts api/sandbox_test.ts api/sessions_test.ts api/reuse_test.ts api/parallel_test.ts
  tests/system_test.ts tests/singlestep_exit_test.ts runtime/cpu/ops_test.ts runtime/cpu/rep_bulk_test.ts
  tests/kvm_paths_test.ts runtime/kvm/exit_path_test.ts runtime/kvm/irq_test.ts runtime/kvm/memslot_test.ts
  runtime/kvm/string_io_test.ts runtime/kvm/trace_test.ts runtime/vmx/vmx_test.ts tests/state_test.ts
  tests/x87/x87_oracle_test.ts runtime/cpu/x87/x87_test.ts runtime/cpu/sse/sse_test.ts tests/cpuid_truth_test.ts)
: > "$logs/jit.log"
if [ $# -eq 0 ] && [ "${VMXLAB_JIT_PASS:-1}" != 0 ]; then
  echo "== [4/4] deno test, VMXLAB_ENGINE=jit (${#JIT_FILES[@]} files that run guests, again under the JIT)"
  VMXLAB_ENGINE=jit "$deno" test -A --no-check "${JIT_FILES[@]}" 2>&1 | tee "$logs/jit.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

# deno: "ok | 12 passed | 0 failed | 1 ignored"; bun: " 12 pass", " 0 fail"
count() { local n; n=$(grep -Eo "$1" "$2" | tail -1 | grep -Eo '[0-9]+'); echo "${n:-0}"; }
dp=$(count '[0-9]+ passed' "$logs/deno.log"); df=$(count '[0-9]+ failed' "$logs/deno.log")
bp=$(count '^ *[0-9]+ pass$' "$logs/bun.log"); bf=$(count '^ *[0-9]+ fail$' "$logs/bun.log")
jp=$(count '[0-9]+ passed' "$logs/jit.log"); jf=$(count '[0-9]+ failed' "$logs/jit.log")
echo "deno: $dp passed, $df failed; bun: $bp passed, $bf failed; deno with VMXLAB_ENGINE=jit: $jp passed, $jf failed"
passed=$((dp + bp + jp)); failed=$((df + bf + jf))
if [ "$passed" -eq 0 ]; then echo "no test ran"; status=1; fi
if [ "$failed" -ne 0 ]; then status=1; fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
exit $status

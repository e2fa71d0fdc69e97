/**
 * A hypercall demo: the guest (tests/guests/pm_hypercall.bin) executes VMCALL with RAX=1 and
 * arguments in RBX and RCX; KVM exits to userspace with KVM_EXIT_HYPERCALL, the script's hook adds
 * the arguments, and the sum lands in the guest's EAX, which the guest prints.
 *
 *   node_modules/.bin/deno run -A scripts/hypercall.ts
 */
import { readFileSync } from "node:fs";
import { Machine } from "../runtime/vmm/machine.ts";

export function runHypercallDemo(log: (s: string) => void = () => {}) {
  const m = new Machine({ mode: "protected" });
  m.load(new Uint8Array(readFileSync(new URL("../tests/guests/pm_hypercall.bin", import.meta.url))));
  m.onHypercall(1, ([a, b]) => {
    log(`hypercall 1 (add): 0x${a.toString(16)} + 0x${b.toString(16)}`);
    return (a + b) >>> 0;
  }, "add");
  const r = m.run({ budget: 1_000_000 });
  return { output: m.console, exit: r.exit.reason, userspaceExits: r.userspaceExits };
}

if (import.meta.main) {
  const r = runHypercallDemo((s) => console.log(s));
  console.log(`the guest printed ${JSON.stringify(r.output)}; exits to userspace: ${JSON.stringify(r.userspaceExits)}; ended with ${r.exit}`);
}

/**
 * Bundled hook set "hypercalls": a small hypercall ABI (KVM's: number in EAX, arguments in EBX,
 * ECX, EDX, ESI, result in EAX).
 *
 * | nr | does | returns |
 * |---|---|---|
 * | 1 | adds EBX and ECX (what `tests/guests/pm_hypercall.bin` calls) | EBX + ECX (mod 2^32) |
 * | 2 | logs ECX bytes of guest memory at EBX as one line of the run's `logs` (at most 4 KiB) | bytes logged |
 * | 3 | ends the run: `exit.reason` "stopped", detail "exit code N" with N = EBX | — |
 * | 4 | the instruction count so far (low 32 bits) | count |
 */
import { defineHookSets } from "../hooks.ts";

export const hookSets = defineHookSets({
  name: "hypercalls",
  description: "Hypercalls 1 add (EBX+ECX), 2 log ECX bytes at EBX, 3 stop with exit code EBX, 4 instruction count",
  install(machine, env) {
    machine.onHypercall(1, ([a, b]) => (a + b) >>> 0, "hypercalls:add");
    machine.onHypercall(2, ([addr, len], ctx) => {
      const n = Math.min(len >>> 0, 4096);
      env.log(new TextDecoder().decode(ctx.read(addr >>> 0, n)));
      return n;
    }, "hypercalls:log");
    machine.onHypercall(3, ([code], ctx) => {
      ctx.stop(`exit code ${code >>> 0}`);
    }, "hypercalls:exit");
    machine.onHypercall(4, (_args, ctx) => ctx.vcpu.instructions % 2 ** 32, "hypercalls:icount");
  },
});

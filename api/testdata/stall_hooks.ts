/**
 * Test-only operator hook sets that block their worker past any limit a run has, so the pool's
 * watchdog must kill it: "stall" (hypercall 9) sleeps 2 s inside the hook; "spin" (hypercall 10)
 * spins on the CPU forever, as a buggy operator hook might.
 */
import { defineHookSets } from "../hooks.ts";

export const hookSets = defineHookSets({
  name: "stall",
  description: "Hypercall 9 blocks the worker for 2 s (tests the watchdog)",
  install(machine) {
    machine.onHypercall(9, () => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2000);
      return 0;
    }, "stall");
  },
}, {
  name: "spin",
  description: "Hypercall 10 spins forever (tests that a stuck worker is killed and its core freed)",
  install(machine) {
    machine.onHypercall(10, () => {
      for (;;) { /* spin */ }
    }, "spin");
  },
});

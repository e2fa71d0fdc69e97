/**
 * A test-only operator hook set that blocks its worker: hypercall 9 sleeps 2 s inside the hook, past
 * any limit the run has, so the pool's watchdog must replace the worker.
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
});

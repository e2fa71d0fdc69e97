/**
 * Bundled hook set "isa-debug-exit": QEMU's isa-debug-exit device at port 0xF4. A guest that
 * writes V there ends the run with `exit.reason` "stopped" and detail "exit code N", N = (V << 1) | 1
 * as QEMU computes the process status, so test guests written for QEMU can report pass or fail.
 */
import { defineHookSets } from "../hooks.ts";

export const hookSets = defineHookSets({
  name: "isa-debug-exit",
  description: "OUT to port 0xF4 ends the run with exit code (value << 1) | 1, as QEMU's isa-debug-exit",
  install(machine) {
    machine.onIo({
      port: 0xf4,
      direction: "out",
      name: "isa-debug-exit",
      handler: (io, ctx) => ctx.stop(`exit code ${((io.value << 1) | 1) >>> 0}`),
    });
  },
});

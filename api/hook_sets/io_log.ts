/**
 * Bundled hook set "io-log": every IO exit that reaches userspace becomes a line of the run's
 * `logs` (`out 0x3f8 size 1 value 0x34`), for watching a guest talk to its devices. The limits cap
 * the lines kept.
 */
import { defineHookSets } from "../hooks.ts";

export const hookSets = defineHookSets({
  name: "io-log",
  description: "Logs every userspace IO exit (direction, port, size, data)",
  install(machine, env) {
    machine.onExit("io", (exit) => {
      if (exit.reason !== "io") return;
      const data = [...exit.data].map((b) => b.toString(16).padStart(2, "0")).join("");
      env.log(`${exit.direction} 0x${exit.port.toString(16)} size ${exit.size}${exit.count > 1 ? ` count ${exit.count}` : ""}${exit.direction === "out" ? ` data ${data}` : ""}`);
    }, "io-log");
  },
});

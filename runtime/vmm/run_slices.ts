/**
 * One run made of slices: `Machine.run` called again and again with part of the budget (the HTTP
 * service's worker, to check its limits between slices; `runAuto`, to let binaryen load). The
 * caller's result is the sum of the slices, less the ends of slices that it did not ask for.
 */
import type { RunResult } from "./machine.ts";

/** An empty total to add slices to; its exit is set by the caller when the run ends. */
export function emptyRun(): RunResult {
  return { exit: { reason: "budget" }, instructions: 0, exits: {}, userspaceExits: {}, wallMs: 0 };
}

/** Add a slice's counts to the total. */
export function addSlice(total: RunResult, r: Pick<RunResult, "instructions" | "exits" | "userspaceExits">): void {
  total.instructions += r.instructions;
  for (const [k, v] of Object.entries(r.exits)) total.exits[k] = (total.exits[k] ?? 0) + v;
  for (const [k, v] of Object.entries(r.userspaceExits)) total.userspaceExits[k] = (total.userspaceExits[k] ?? 0) + v;
}

/**
 * Take a slice's end out of the total: its budget exit (VMX `preemption_timer`, userspace `budget`)
 * was the slicing's, not the guest's.
 */
export function dropSliceEnd(total: RunResult): void {
  const drop = (m: Record<string, number>, k: string) => {
    if (m[k] && --m[k] === 0) delete m[k];
  };
  drop(total.exits, "preemption_timer");
  drop(total.userspaceExits, "budget");
}

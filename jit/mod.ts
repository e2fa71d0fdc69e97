/**
 * The JIT tier: hot guest code compiled to WebAssembly with binaryen (jit/DESIGN.md).
 *
 * binaryen takes 1.5–2.5 s to load, asynchronously, so a program loads it once with
 * `await loadJit()`; from then on `new Machine({ engine: "jit" })` attaches the JIT synchronously.
 * `await Machine.create({ engine: "jit" })` loads it on demand.
 *
 * @example
 * ```ts
 * import { Machine } from "../runtime/vmm/machine.ts";
 * import { loadJit } from "./mod.ts";
 *
 * await loadJit();
 * const m = new Machine({ mode: "protected", engine: "jit" });
 * // mov ecx,1000; l: add eax,ecx; dec ecx; jnz l; hlt
 * m.load(new Uint8Array([0xb9, 0xe8, 0x03, 0, 0, 0x01, 0xc8, 0x49, 0x75, 0xfb, 0xf4]), { format: "raw" });
 * const r = m.run({ budget: 100_000 });
 * if (r.exit.reason !== "hlt" || m.vcpu.getRegs().rax !== 500500) throw new Error("wrong result");
 * if (m.engine !== "jit" || m.jitStats!.regions === 0) throw new Error("the loop was not compiled");
 * ```
 */
import type { Cpu } from "../runtime/cpu/cpu.ts";
import { type EngineName, engineFactory, registerEngineFactory } from "../runtime/vmm/engines.ts";
import type { Machine, RunResult } from "../runtime/vmm/machine.ts";
import { addSlice, dropSliceEnd, emptyRun } from "../runtime/vmm/run_slices.ts";
import { loadBinaryen } from "./_binaryen.ts";
import { type JitOptions, JitEngine, type JitStats, warmUp } from "./engine.ts";

export { JitEngine } from "./engine.ts";
export type { JitMode, JitOptions, JitStats } from "./engine.ts";

/** Execution engines of the emulated processor (the hardware tier, kvm, is elsewhere). */
export type Engine = EngineName;
export const ENGINES: readonly Engine[] = ["interp", "jit", "auto"];

let loading: Promise<void> | null = null;

/**
 * Load binaryen (once per process; later calls return at once) and register the JIT with the
 * runtime, so that Machines can attach it synchronously (`new Machine({ engine: "jit" })`).
 */
export function loadJit(): Promise<void> {
  if (engineFactory() !== null) return Promise.resolve();
  loading ??= loadBinaryen().then((b) => {
    warmUp(b);
    registerEngineFactory((cpu, mode, opts) => new JitEngine(b, cpu, { ...opts, mode }));
  }).finally(() => {
    loading = null;
  });
  return loading;
}

/** Whether `loadJit()` has completed in this process (or worker). */
export function jitLoaded(): boolean {
  return engineFactory() !== null;
}

/** A Machine (anything with `setEngine`), a Vcpu, or the Cpu itself. */
export type CpuHolder = Cpu | { cpu: Cpu } | { vcpu: { cpu: Cpu } };

interface EngineHolder {
  setEngine(engine: Engine, opts?: JitOptions): void;
  readonly vcpu: { cpu: Cpu };
}

function cpuOf(t: CpuHolder): Cpu {
  if ("vcpu" in t) return t.vcpu.cpu;
  if ("cpu" in t) return t.cpu;
  return t;
}

/**
 * Attach a JIT engine to a processor (binaryen is loaded on the first call), or detach it. For a
 * Machine this is `await loadJit()` then `machine.setEngine(engine, opts)`.
 * @param target a Machine, a Vcpu or a Cpu
 * @param engine "jit" compiles blocks the first time they run, "auto" once they are hot, "interp" detaches
 * @param opts engine options (threshold, callouts, validation)
 * @returns the engine (for its stats), or null for "interp"
 */
export async function useEngine(target: CpuHolder, engine: Engine, opts: JitOptions = {}): Promise<JitEngine | null> {
  if (engine !== "interp" && engine !== "jit" && engine !== "auto") throw new RangeError(`Unknown engine: ${engine} (expected interp, jit or auto)`);
  if (engine !== "interp") await loadJit();
  if ("setEngine" in target && typeof (target as unknown as EngineHolder).setEngine === "function") {
    const m = target as unknown as EngineHolder;
    m.setEngine(engine, opts);
    return m.vcpu.cpu.engine as JitEngine | null;
  }
  const cpu = cpuOf(target);
  if (engine === "interp") {
    cpu.engine = null;
    return null;
  }
  const e = engineFactory()!(cpu, engine, opts) as JitEngine;
  cpu.engine = e;
  return e;
}

/** Instructions `runAuto` interprets before it looks again at binaryen's loading (~10 ms interpreted). */
const AUTO_SLICE = 1_000_000;

/**
 * The wall time a run should have left before it starts loading binaryen: loading holds the
 * thread for about half a second (parsing binaryen's 15 MB of JavaScript, starting its module)
 * and takes 0.7–2.5 s in all, time a run's own limit cannot preempt. A run closer to its deadline
 * finishes interpreted.
 */
export const JIT_LOAD_HEADROOM_MS = 2_000;

/** `Machine.run`'s limits, and the JIT's options for the engine `runAuto` attaches. */
export interface AutoRunOptions {
  budget?: number;
  timeoutMs?: number;
  jit?: JitOptions;
}

/**
 * Run a Machine under `auto` without waiting for binaryen first (it takes 0.7–2.5 s to load): a
 * program that ends within its first slice (a million instructions, some 10 ms interpreted) never
 * loads it; a longer one loads it in the background while the interpreter runs on in slices, and
 * continues under the auto engine once it has loaded (unless its `timeoutMs` is too near for the
 * load: JIT_LOAD_HEADROOM_MS). With binaryen loaded already, this is
 * `setEngine("auto")` and `run()`. The result is one run's: counts summed over the slices, the
 * slices' own ends left out; `m.engine` says which tier it finished in.
 * @throws MachineError as `Machine.run`; the error of loading binaryen, if that fails
 */
export async function runAuto(m: Machine, opts: AutoRunOptions = {}): Promise<RunResult> {
  if (jitLoaded()) {
    if (m.engine !== "auto") m.setEngine("auto", opts.jit);
    return m.run({ budget: opts.budget, timeoutMs: opts.timeoutMs });
  }
  const t0 = performance.now();
  const deadline = opts.timeoutMs === undefined ? null : t0 + opts.timeoutMs;
  const total = emptyRun();
  let left = opts.budget ?? Infinity;
  let rest = false; // too near the deadline to load binaryen: the rest of the run, interpreted
  for (;;) {
    const last = rest || m.engine === "auto";
    const slice = last ? left : Math.min(left, AUTO_SLICE);
    const r = m.run({
      budget: slice === Infinity ? undefined : slice,
      timeoutMs: deadline === null ? undefined : Math.max(0, deadline - performance.now()),
    });
    addSlice(total, r);
    left -= r.instructions;
    if (last || r.exit.reason !== "budget" || left <= 0) {
      total.exit = r.exit;
      break;
    }
    dropSliceEnd(total);
    if (deadline !== null && performance.now() >= deadline) {
      total.exit = { reason: "timeout" };
      break;
    }
    if (deadline !== null && deadline - performance.now() < JIT_LOAD_HEADROOM_MS) rest = true;
    else if (await loadJitStep()) m.setEngine("auto", opts.jit);
  }
  total.wallMs = performance.now() - t0;
  return total;
}

let background: Promise<void> | null = null;
let backgroundFailure: { error: unknown } | null = null;

/**
 * One step of loading binaryen under a run that goes on meanwhile (runAuto, the service's auto
 * runs): starts the import on the first call, then yields to the event loop, which goes on with it
 * (reading, compiling binaryen's wasm); a synchronous `Machine.run` never would.
 * @returns whether the JIT is loaded now
 * @throws the import's error, once it has failed
 */
export async function loadJitStep(): Promise<boolean> {
  if (jitLoaded()) return true;
  background ??= loadJit().catch((error) => void (backgroundFailure = { error }));
  await new Promise((resolve) => setTimeout(resolve, 0));
  if (backgroundFailure !== null) throw backgroundFailure.error;
  return jitLoaded();
}

/** A run report's `jit` field (vmrun --json, the service): what the JIT compiled. */
export interface JitReport {
  regions: number;
  cachedRegions: number;
  blocks: number;
  compiledInstructions: number;
  compileMs: number;
  /** Regions that failed to compile and run interpreted (jitStats.failures). */
  failures: number;
}

/** `stats` as a report's `jit` field; all zero for null (an auto run that ended before binaryen was needed). */
export function jitReport(stats: JitStats | null): JitReport {
  if (stats === null) return { regions: 0, cachedRegions: 0, blocks: 0, compiledInstructions: 0, compileMs: 0, failures: 0 };
  return {
    regions: stats.regions, cachedRegions: stats.cached, blocks: stats.blocks, compiledInstructions: stats.instructions,
    compileMs: Math.round(stats.compileMs * 1000) / 1000, failures: stats.failures,
  };
}

/**
 * The JIT tier: hot guest code compiled to WebAssembly with binaryen (jit/DESIGN.md). It depends on
 * the processor only (runtime/cpu); the VMM loads it and attaches it to a processor
 * (runtime/vmm/tiering.ts: `loadJit`, `useEngine`, `runAuto`).
 * @module
 */
import type { Cpu } from "../runtime/cpu/cpu.ts";
import { loadBinaryen } from "./_binaryen.ts";
import { type JitOptions, JitEngine, warmUp } from "./engine.ts";

export { JitEngine } from "./engine.ts";
export type { JitMode, JitOptions, JitStats } from "./engine.ts";

/** Makes a JIT engine for a processor. */
export type JitEngineFactory = (cpu: Cpu, mode: "jit" | "auto", opts: JitOptions) => JitEngine;

/** Load binaryen (once per process) and return the factory of JIT engines. */
export async function jitEngineFactory(): Promise<JitEngineFactory> {
  const b = await loadBinaryen();
  warmUp(b);
  return (cpu, mode, opts) => new JitEngine(b, cpu, { ...opts, mode });
}

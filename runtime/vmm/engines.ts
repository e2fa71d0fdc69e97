/**
 * The execution engines a `Machine` can attach to its processor, and the registration point that
 * keeps binaryen out of the runtime: `loadJit()` (tiering.ts) registers the JIT's factory here once binaryen
 * has loaded (`await loadJit()`), and `Machine` asks for it. Nothing in `runtime/` imports the JIT
 * statically, so an interpreter-only program never loads binaryen.
 */
import type { BlockEngine, Cpu } from "../cpu/cpu.ts";
import type { JitOptions, JitStats } from "../../jit/engine.ts";

export type { JitOptions, JitStats };

/** interp: no block engine; jit: blocks compiled to wasm the first time they run; auto: once they are hot. */
export type EngineName = "interp" | "jit" | "auto";
export const ENGINE_NAMES: readonly EngineName[] = ["interp", "jit", "auto"];

/** A block engine with the JIT's counters. */
export interface StatsEngine extends BlockEngine {
  readonly stats: JitStats;
}
/** Makes a JIT engine for a processor (registered by `loadJit()` once binaryen is loaded). */
export type EngineFactory = (cpu: Cpu, mode: "jit" | "auto", opts: JitOptions) => StatsEngine;

let factory: EngineFactory | null = null;

/** Register the JIT's factory (tiering.ts does, in `loadJit()`). */
export function registerEngineFactory(f: EngineFactory): void {
  factory = f;
}
/** The JIT's factory, or null while binaryen is not loaded. */
export function engineFactory(): EngineFactory | null {
  return factory;
}

/** Whether `v` names an engine. */
export function isEngineName(v: unknown): v is EngineName {
  return v === "interp" || v === "jit" || v === "auto";
}

/** The variable that sets the default engine of every Machine (tests run a second time with it set to jit). */
export const ENGINE_ENV = "VMXLAB_ENGINE";

let envEngine: EngineName | undefined;

/**
 * The engine a Machine gets when its options name none: `VMXLAB_ENGINE` (interp, jit or auto) when
 * set and readable, else interp.
 * @throws RangeError when VMXLAB_ENGINE names no engine
 */
export function defaultEngine(): EngineName {
  if (envEngine !== undefined) return envEngine;
  const v = readEnv(ENGINE_ENV);
  if (v !== undefined && v !== "" && !isEngineName(v)) {
    throw new RangeError(`${ENGINE_ENV}=${v} names no engine (expected interp, jit or auto)`);
  }
  return envEngine = v === undefined || v === "" ? "interp" : v;
}

function readEnv(name: string): string | undefined {
  try {
    const deno = (globalThis as { Deno?: { permissions: { querySync?(d: { name: "env"; variable: string }): { state: string } }; env: { get(n: string): string | undefined } } }).Deno;
    if (deno !== undefined) {
      // Without env permission, do not prompt: the default is interp.
      if (deno.permissions.querySync?.({ name: "env", variable: name }).state !== "granted") return undefined;
      return deno.env.get(name);
    }
    return (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env[name];
  } catch {
    return undefined;
  }
}

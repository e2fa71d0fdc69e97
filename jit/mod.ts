/**
 * The JIT tier: hot guest code compiled to WebAssembly with binaryen (jit/DESIGN.md).
 *
 * @example
 * ```ts
 * import { Machine } from "../runtime/vmm/machine.ts";
 * import { useEngine } from "./mod.ts";
 *
 * const m = new Machine({ mode: "protected" });
 * // mov ecx,1000; l: add eax,ecx; dec ecx; jnz l; hlt
 * m.load(new Uint8Array([0xb9, 0xe8, 0x03, 0, 0, 0x01, 0xc8, 0x49, 0x75, 0xfb, 0xf4]), { format: "raw" });
 * await useEngine(m, "jit");
 * const r = m.run({ budget: 100_000 });
 * if (r.exit.reason !== "hlt" || m.vcpu.getRegs().rax !== 500500) throw new Error("wrong result");
 * ```
 */
import type { Cpu } from "../runtime/cpu/cpu.ts";
import { loadBinaryen } from "./_binaryen.ts";
import { type JitOptions, JitEngine } from "./engine.ts";

export { JitEngine } from "./engine.ts";
export type { JitMode, JitOptions, JitStats } from "./engine.ts";

/** Execution engines of the emulated processor (the hardware tier, kvm, is elsewhere). */
export type Engine = "interp" | "jit" | "auto";
export const ENGINES: readonly Engine[] = ["interp", "jit", "auto"];

/** Anything that leads to a vCPU's processor: a Machine, a Vcpu, or the Cpu itself. */
export type CpuHolder = Cpu | { cpu: Cpu } | { vcpu: { cpu: Cpu } };

function cpuOf(t: CpuHolder): Cpu {
  if ("vcpu" in t) return t.vcpu.cpu;
  if ("cpu" in t) return t.cpu;
  return t;
}

/**
 * Attach a JIT engine to a processor (binaryen is loaded on the first call), or detach it.
 * @param target a Machine, a Vcpu or a Cpu
 * @param engine "jit" compiles blocks the first time they run, "auto" once they are hot, "interp" detaches
 * @param opts engine options (threshold, callouts, validation)
 * @returns the engine (for its stats), or null for "interp"
 */
export async function useEngine(target: CpuHolder, engine: Engine, opts: JitOptions = {}): Promise<JitEngine | null> {
  const cpu = cpuOf(target);
  if (engine === "interp") {
    cpu.engine = null;
    return null;
  }
  if (engine !== "jit" && engine !== "auto") throw new RangeError(`Unknown engine: ${engine} (expected interp, jit or auto)`);
  const b = await loadBinaryen();
  const e = new JitEngine(b, cpu, { ...opts, mode: engine });
  cpu.engine = e;
  return e;
}

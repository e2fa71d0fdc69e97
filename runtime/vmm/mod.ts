/**
 * The VMM's face: what a program that runs virtual machines uses, the HTTP service among them
 * (`api/` imports nothing else of the runtime). The machine and its options, loading images, the
 * engines and tiering, a run's counts, and the names of exits and errors a report shows.
 * @module
 */
export { Machine, MachineError, type HookContext, type MachineOptions, PC_DEVICES, type RunResult } from "./machine.ts";
export { isBzImage } from "./bzimage.ts";
export { ImageError, type ImageFormat, type LoadedImage } from "./image.ts";
export { defaultEngine, type EngineName, ENGINE_NAMES, isEngineName, type JitOptions, type JitStats } from "./engines.ts";
export {
  type AutoRunOptions, JIT_LOAD_HEADROOM_MS, jitLoaded, type JitReport, jitReport, loadJit, loadJitStep, runAuto, useEngine,
} from "./tiering.ts";
export { addSlice, dropSliceEnd, emptyRun } from "./run_slices.ts";
export { type DisasmBits, disassemble } from "./disasm.ts";
export { KvmError } from "../kvm/errors.ts";
export { kvmExitName } from "../kvm/kvm_run.ts";
export type { TraceEvent } from "../kvm/trace.ts";
export { EXIT_REASON_NAMES } from "../cpu/vmcs.ts";

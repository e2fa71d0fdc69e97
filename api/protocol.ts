/**
 * Messages between the service (main thread) and its workers. The main thread sends one request
 * at a time to each worker; a worker answers each with a reply, and may send events (console bytes)
 * while a run is in progress.
 */
import type { JitReport } from "../runtime/vmm/mod.ts";
import type { Limits } from "./config.ts";
import type { FieldLocation } from "./problem.ts";

export type Mode = "real" | "protected" | "paged" | "long";
export type Format = "raw" | "elf" | "multiboot" | "rom" | "bzimage" | "auto";
export type TraceKind = "off" | "exits" | "path";
/** The engines the service runs (kvm is refused before a request reaches a worker). */
export type EngineName = "interp" | "jit" | "auto";

export const REG64 = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"] as const;
export const REG32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"] as const;
export const REG16 = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"] as const;
/** Register names a request may set (vmrun's `--reg` names). */
export const REG_NAMES = [...REG32, ...REG16, ...REG64, "eip", "ip", "rip", "eflags", "flags", "rflags"] as const;

/** A register assignment, by vmrun's names (`eax`, `ax`, `rax`, `eip`, `eflags`, …). */
export type RegAssignment = [name: string, value: number];

/** How to build a VM: the parts of a run request that shape the machine. */
export interface MachineSpec {
  image: Uint8Array;
  format: Format;
  mode: Mode;
  load?: number;
  entry?: number;
  memBytes: number;
  engine: EngineName;
  regs: RegAssignment[];
  hooks: string[];
  script?: string;
  trace: TraceKind;
  /** A bzImage's initial RAM disk and command line. */
  initrd?: Uint8Array;
  cmdline?: string;
  /** Take compiled regions from the worker's shared code cache (default true; off when tenants share the service). */
  codeCache?: boolean;
}

/** How to run it. */
export interface RunSpec {
  budget: number;
  timeoutMs: number;
  serialInput?: string;
  dumps: { addr: number; len: number }[];
}

export type WorkerRequest =
  | { op: "init"; scripts: string[]; limits: Limits; preloadJit: boolean }
  | { op: "run"; machine: MachineSpec; run: RunSpec }
  | { op: "create"; session: string; machine: MachineSpec }
  | { op: "sessionRun"; session: string; run: RunSpec }
  | { op: "getRegs"; session: string }
  | { op: "setRegs"; session: string; regs: RegAssignment[] }
  | { op: "readMemory"; session: string; addr: number; len: number }
  | { op: "writeMemory"; session: string; addr: number; data: Uint8Array }
  | { op: "disasm"; session: string; addr?: number; count: number; bits?: 16 | 32 }
  | { op: "console"; session: string; input: Uint8Array }
  | { op: "destroy"; session: string };

/** A failure in a worker, by kind; `problem.ts` maps kinds to HTTP statuses. */
export interface WorkerError {
  kind: "image" | "unsupported" | "argument" | "state" | "conflict" | "script" | "hook" | "not-found" | "engine-loading" | "internal";
  message: string;
  /** The request field that caused it. */
  field?: string;
  where?: FieldLocation;
  /** ImageError's kind (truncated, malformed, …). */
  imageKind?: string;
  /** For hook failures: the hook's name and why it failed ("exception", "timeout", "memory"). */
  hook?: string;
  cause?: string;
  /** For hook failures: the run up to the failure. */
  run?: RunReport;
}

export type WorkerReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: WorkerError };

/** Something that happened in a session while it ran. */
export interface SessionEvent {
  session: string;
  type: "console";
  data: { text: string; bytes: number };
}

export type WorkerMessage = WorkerReply | { event: SessionEvent } | { ready: true; hookSets: HookSetInfo[] } | { initError: string };

export interface HookSetInfo {
  name: string;
  description: string;
  script: string;
}

/** The registers after a run, as vmrun's JSON report has them. */
export interface RegsReport {
  eax: number; ebx: number; ecx: number; edx: number; esi: number; edi: number; esp: number; ebp: number;
  eip: number; eflags: number; cs: number; ds: number; es: number; fs: number; gs: number; ss: number;
}

/** What a run returns: vmrun's JSON report fields, plus timings, logs and the trace. */
export interface RunReport {
  exit: { reason: string; [k: string]: unknown };
  regs: RegsReport;
  instructions: number;
  exits: Record<string, number>;
  userspaceExits: Record<string, number>;
  ports: Record<string, { in?: number; out?: number }>;
  memory: Record<string, string>;
  console: string;
  consoleTruncated: boolean;
  engine: string;
  /** Under jit or auto: the JIT's counters since the machine was made (sessions: over all their runs). */
  jit?: JitReport;
  wallMs: number;
  timings: { setupMs: number; runMs: number; workerMs: number; queueMs?: number; totalMs?: number };
  logs: string[];
  trace?: { kind: "exits" | "path"; events: Record<string, unknown>[]; dropped: number };
  /** The report was cut to its caps (ports, or trace, logs and console past the answer size). */
  truncated?: boolean;
}

/**
 * What a worker answers to a `run`: the report as JSON text, `timings` last and left open, so the
 * main thread appends its own timings without parsing it (`finishReportJson`).
 */
export interface RunReply {
  json: string;
}

/** A report as JSON text with `timings` last and its closing braces left off. */
export function reportJsonHead(r: RunReport): string {
  const { timings, ...rest } = r;
  const head = JSON.stringify(rest);
  return `${head.slice(0, -1)},"timings":${JSON.stringify(timings).slice(0, -1)}`;
}

/** Close a `reportJsonHead` text, adding the main thread's timings. */
export function finishReportJson(head: string, timings: { queueMs: number; totalMs: number }): string {
  return `${head},"queueMs":${timings.queueMs},"totalMs":${timings.totalMs}}}`;
}

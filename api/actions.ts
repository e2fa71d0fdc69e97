/**
 * The VMM actions a worker performs (Firecracker's `VmmAction`s): build a machine from a request,
 * run it under the limits, read and write its registers and memory, disassemble. Everything here
 * runs inside a worker; the main thread only sends `WorkerRequest`s.
 */
import { Buffer } from "node:buffer";
import {
  addSlice, type DisasmBits, disassemble, dropSliceEnd, emptyRun, EXIT_REASON_NAMES, ImageError, isBzImage,
  JIT_LOAD_HEADROOM_MS, jitLoaded, jitReport, KvmError, kvmExitName, loadJit, loadJitStep, Machine, MachineError,
  PC_DEVICES, type RunResult, type TraceEvent,
} from "../runtime/vmm/mod.ts";
import type { Limits } from "./config.ts";
import type { HookSet } from "./hooks.ts";
import { loadQuickJs, ScriptFailure, ScriptSandbox } from "./sandbox.ts";
import { REG16, REG32, REG64 } from "./protocol.ts";
import type { MachineSpec, RegAssignment, RegsReport, RunReport, RunSpec, SessionEvent, WorkerError } from "./protocol.ts";

/** A failure to report to the main thread as a `WorkerError`. */
export class ActionError extends Error {
  constructor(readonly error: WorkerError) {
    super(error.message);
    this.name = "ActionError";
  }
}


/**
 * The instruction slice a run is cut into. The runtime checks its wall-clock deadline only inside
 * long stretches of guest code, so a guest that exits every few instructions would outlive its
 * time limit; between slices the host checks the clock and the console cap itself. The slices are
 * invisible to the guest: the budget (the VMX preemption timer) stops between instructions.
 */
const SLICE = 1_000_000;

/** The largest guest RAM a worker makes a machine for ahead of time, or keeps for reuse. */
const SPARE_MAX_MEM = 32 << 20;
/** Ready machines kept per configuration, and used ones waiting for their reset. */
const SPARE_PER_KEY = 2;
const USED_MAX = 2;
/** Guest RAM a worker keeps in ready machines, over all configurations. */
const READY_MAX_BYTES = 64 << 20;

/** A machine of this worker, and the Vm its console currently writes to. */
interface Made {
  machine: Machine;
  target: { vm: Vm | null };
  key: string;
}

/** Console bytes of the current run, capped. */
class ConsoleBuffer {
  bytes = new Uint8Array(256);
  length = 0;
  truncated = false;
  /** For sessions: bytes not yet sent as an event. */
  pendingFrom = 0;
  constructor(private readonly cap: number) {}
  push(b: number): boolean {
    if (this.length >= this.cap) {
      this.truncated = true;
      return false;
    }
    if (this.length === this.bytes.length) {
      const n = new Uint8Array(Math.min(this.cap, this.bytes.length * 2));
      n.set(this.bytes);
      this.bytes = n;
    }
    this.bytes[this.length++] = b;
    return true;
  }
  reset(): void {
    this.length = 0;
    this.pendingFrom = 0;
    this.truncated = false;
    if (this.bytes.length > 65536) this.bytes = new Uint8Array(256);
  }
  text(from = 0): string {
    return new TextDecoder().decode(this.bytes.subarray(from, this.length));
  }
}

/** A machine the worker holds: a one-shot run's, or a session's. */
interface Vm {
  machine: Machine;
  console: ConsoleBuffer;
  logs: string[];
  sandbox: ScriptSandbox | null;
  trace: { kind: "exits" | "path"; events: Record<string, unknown>[]; dropped: number } | null;
  /** Set while a run is in progress. */
  running: boolean;
  session?: string;
  /** A session's machine, to give back when the session is deleted. */
  made?: Made;
  lastEventAt: number;
  /**
   * The request asked for auto before this worker had binaryen: the machine interprets, and its
   * runs load binaryen between slices once they outlast the first, then go on under auto.
   */
  autoPending: boolean;
  /** It has run: the next run's logs start empty (the first run's keep what the script's top level logged). */
  ran: boolean;
}

/**
 * The worker's side of the service: holds session machines, a few fresh machines made ahead of
 * time, and performs the actions.
 */
export class VmHost {
  private readonly sessions = new Map<string, Vm>();
  /**
   * Ready machines by "mode/memBytes" (new, or reset after an earlier run), so a run does not pay
   * for one: a new Machine costs 0.5–2 ms, a reset ~0.3 ms, and both happen while the worker is idle.
   */
  private readonly spare = new Map<string, Made[]>();
  /** Machines of finished runs, to reset and reuse (`Machine.reset()` leaves nothing of the run). */
  private readonly used: Made[] = [];
  private lastKey: string | null = null;

  constructor(
    private readonly limits: Limits,
    private readonly hookSets: Map<string, HookSet>,
    private readonly emit: (e: SessionEvent) => void,
  ) {}

  /** Build, run and drop a machine. */
  async run(spec: MachineSpec, run: RunSpec): Promise<RunReport> {
    const t0 = performance.now();
    // Building (the script's top level included) and running share the request's time limit.
    const deadline = t0 + run.timeoutMs;
    await engineReady(spec, deadline);
    const made = this.take(spec);
    try {
      const vm = await this.build(spec, made, deadline);
      try {
        return await this.runVm(vm, run, performance.now() - t0, deadline);
      } finally {
        vm.sandbox?.dispose();
      }
    } finally {
      this.release(made);
    }
  }

  /** Build a session's machine. */
  async create(session: string, spec: MachineSpec): Promise<{ regs: RegsReport }> {
    if (this.sessions.has(session)) throw new ActionError({ kind: "internal", message: `Session ${session} exists already` });
    await engineReady(spec, Infinity);
    const made = this.take(spec);
    let vm: Vm;
    try {
      vm = await this.build(spec, made);
    } catch (e) {
      this.release(made);
      throw e;
    }
    vm.made = made;
    vm.session = session;
    this.sessions.set(session, vm);
    return { regs: regsReport(vm.machine) };
  }

  sessionRun(session: string, run: RunSpec): Promise<RunReport> {
    return this.runVm(this.vm(session), run, 0);
  }

  /** Type on a session's serial console: the bytes wait in the UART's receive FIFO for the guest. */
  console(session: string, input: Uint8Array): { pendingInput: number } {
    const m = this.vm(session).machine;
    if (!m.serial) throw new ActionError({ kind: "unsupported", message: "This machine has no serial port", field: "input" });
    m.feedSerial(input);
    return { pendingInput: m.serial.pendingInput };
  }

  getRegs(session: string): { regs: RegsReport } {
    return { regs: regsReport(this.vm(session).machine) };
  }

  setRegs(session: string, regs: RegAssignment[]): { regs: RegsReport } {
    const vm = this.vm(session);
    applyRegs(vm.machine, regs, "regs");
    return { regs: regsReport(vm.machine) };
  }

  readMemory(session: string, addr: number, len: number): Uint8Array {
    const vm = this.vm(session);
    checkRange(vm.machine, addr, len);
    return vm.machine.vm.readGuest(addr, len);
  }

  writeMemory(session: string, addr: number, data: Uint8Array): { addr: number; len: number } {
    const vm = this.vm(session);
    checkRange(vm.machine, addr, data.length);
    try {
      vm.machine.vm.writeGuest(addr, data);
    } catch (e) {
      if (e instanceof KvmError) throw new ActionError({ kind: "argument", message: e.message, field: "addr", where: "query" });
      throw e;
    }
    return { addr, len: data.length };
  }

  async disasm(session: string, addr: number | undefined, count: number, bits: 16 | 32 | undefined) {
    const m = this.vm(session).machine;
    const sregs = m.vcpu.getSregs();
    const b: DisasmBits = bits ?? (sregs.cs.db ? 32 : 16);
    // Without an address, start at CS:EIP (a linear address; the modes vmxlab sets up map it 1:1).
    const start = addr ?? (sregs.cs.base + m.vcpu.getRegs().rip) % 2 ** 32;
    const len = Math.min(count * 15, Math.max(0, m.memSize - start));
    if (start >= m.memSize) throw new ActionError({ kind: "argument", message: `Address 0x${start.toString(16)} is outside guest RAM (${m.memSize} bytes)`, field: "addr", where: "query" });
    const ins = await disassemble(m.vm.readGuest(start, len), start, b, count);
    return {
      addr: start,
      bits: b,
      instructions: ins.map((i) => ({ address: i.address, bytes: i.bytes.map((x) => x.toString(16).padStart(2, "0")).join(""), text: i.text })),
    };
  }

  destroy(session: string): void {
    const vm = this.vm(session);
    vm.sandbox?.dispose();
    this.sessions.delete(session);
    if (vm.made) this.release(vm.made);
  }

  /**
   * Reset the machines of finished runs (right after a reply, ~0.05–0.1 ms for a small guest,
   * before the next job comes) and keep them ready, within READY_MAX_BYTES of guest RAM: machines
   * of other configurations, oldest first, make room.
   */
  recycle(): void {
    for (let made = this.used.pop(); made !== undefined; made = this.used.pop()) {
      const list = this.spare.get(made.key) ?? [];
      if (list.length >= SPARE_PER_KEY) continue;
      for (const key of [...this.spare.keys()]) {
        if (this.readyBytes() + made.machine.memSize <= READY_MAX_BYTES) break;
        if (key !== made.key) this.spare.delete(key);
      }
      if (this.readyBytes() + made.machine.memSize > READY_MAX_BYTES) continue;
      made.machine.reset();
      list.push(made);
      this.spare.set(made.key, list);
    }
  }

  private readyBytes(): number {
    let n = 0;
    for (const l of this.spare.values()) for (const m of l) n += m.machine.memSize;
    return n;
  }

  /**
   * While the worker is idle: reset the machines of finished runs, then make a fresh machine for
   * the configuration used last if none is ready.
   */
  prepareSpare(): void {
    this.recycle();
    const key = this.lastKey;
    if (key === null) return;
    const list = this.spare.get(key) ?? [];
    if (list.length >= 1) return;
    const [mode, mem] = key.split("/");
    // Only small machines are kept ready: an idle worker should not hold large guest RAM.
    if (Number(mem) > SPARE_MAX_MEM || this.readyBytes() + Number(mem) > READY_MAX_BYTES) return;
    list.push(this.newMachine(mode as MachineSpec["mode"], Number(mem)));
    this.spare.set(key, list);
  }

  /** Machines ready and waiting for a reset, for tests. */
  get pooled(): { ready: number; used: number } {
    let ready = 0;
    for (const l of this.spare.values()) ready += l.length;
    return { ready, used: this.used.length };
  }

  private vm(session: string): Vm {
    const vm = this.sessions.get(session);
    if (!vm) throw new ActionError({ kind: "not-found", message: `No session ${session}`, field: "id", where: "path" });
    return vm;
  }

  private newMachine(mode: MachineSpec["mode"], memBytes: number, pc = false): Made {
    // The console sink is fixed at construction; it forwards to whichever Vm owns the machine.
    // Made with no engine: take() attaches the one a request asks for (machines are kept by mode and size only).
    const target: { vm: Vm | null } = { vm: null };
    // A Linux kernel gets the PC devices (RTC, i8042, reset port); such machines are not pooled.
    const machine = new Machine({
      mode, memSize: memBytes, engine: "interp", console: (b) => this.onConsole(target.vm, b),
      reusable: !pc && memBytes <= SPARE_MAX_MEM, devices: pc ? { ...PC_DEVICES } : undefined,
    });
    return { machine, target, key: pc ? `pc/${mode}/${memBytes}` : `${mode}/${memBytes}` };
  }

  /**
   * A machine for `spec` with its engine attached: a ready one, a used one reset now, or a new
   * one. A reused machine keeps the engine of its last run through reset(), so the engine is set
   * on every take (a fresh JitEngine, or none).
   */
  private take(spec: MachineSpec): Made {
    const made = this.takeMachine(spec);
    try {
      // auto does not wait for binaryen: it interprets until runVm has loaded it (Vm.autoPending).
      made.machine.setEngine(spec.engine === "auto" && !jitLoaded() ? "interp" : spec.engine, { codeCache: spec.codeCache ?? true });
    } catch (e) {
      this.release(made);
      if (e instanceof MachineError) throw new ActionError({ kind: "unsupported", message: e.message, field: "engine" });
      throw e;
    }
    return made;
  }

  private takeMachine(spec: MachineSpec): Made {
    if (spec.format === "bzimage" || (spec.format === "auto" && isBzImage(spec.image))) {
      try {
        return this.newMachine(spec.mode === "paged" ? "protected" : spec.mode, spec.memBytes, true);
      } catch (e) {
        if (e instanceof MachineError) throw new ActionError({ kind: "argument", message: e.message, field: "mem" });
        throw e;
      }
    }
    const key = `${spec.mode}/${spec.memBytes}`;
    this.lastKey = key;
    const ready = this.spare.get(key)?.pop();
    if (ready) return ready;
    const i = this.used.findIndex((m) => m.key === key);
    if (i >= 0) {
      const [made] = this.used.splice(i, 1);
      try {
        made.machine.reset();
        return made;
      } catch { /* a machine that cannot be reset is dropped; make a new one */ }
    }
    try {
      return this.newMachine(spec.mode, spec.memBytes);
    } catch (e) {
      if (e instanceof MachineError && e.kind === "mode") throw new ActionError({ kind: "unsupported", message: e.message, field: "mode" });
      if (e instanceof MachineError) throw new ActionError({ kind: "argument", message: e.message, field: "mem" });
      throw e;
    }
  }

  /** A run or session is done with its machine: keep it for a reset if it can be reused. */
  private release(made: Made): void {
    made.target.vm = null;
    if (this.used.length < USED_MAX && made.machine.resettable) this.used.push(made);
  }

  private async build(spec: MachineSpec, made: Made, deadline = Infinity): Promise<Vm> {
    const { machine } = made;
    const vm: Vm = {
      machine, console: new ConsoleBuffer(this.limits.maxConsoleBytes), logs: [], sandbox: null, trace: null, running: false, lastEventAt: 0, ran: false,
      autoPending: spec.engine === "auto" && machine.engine !== "auto",
    };
    made.target.vm = vm;
    try {
      machine.load(spec.image, { format: spec.format, loadAddr: spec.load, entry: spec.entry, initrd: spec.initrd, cmdline: spec.cmdline });
    } catch (e) {
      if (e instanceof ImageError) {
        const field = e.kind === "placement" ? (/^Entry point/.test(e.message) && spec.entry !== undefined ? "entry" : spec.load !== undefined ? "load" : "image") : "image";
        throw new ActionError({ kind: "image", message: e.message, field, imageKind: e.kind });
      }
      if (e instanceof MachineError || e instanceof KvmError) throw new ActionError({ kind: "image", message: e.message, field: "image" });
      throw e;
    }
    applyRegs(machine, spec.regs, "regs");
    const env = { log: (line: string) => this.log(vm, line) };
    for (const name of spec.hooks) {
      const set = this.hookSets.get(name);
      if (!set) throw new ActionError({ kind: "argument", message: `Unknown hook set "${name}"`, field: `hooks.${spec.hooks.indexOf(name)}` });
      try {
        set.install(machine, env);
      } catch (e) {
        const kind = e instanceof MachineError && e.kind === "conflict" ? "conflict" : "internal";
        throw new ActionError({ kind, message: `Hook set "${name}" cannot be installed: ${(e as Error).message}`, field: `hooks.${spec.hooks.indexOf(name)}` });
      }
    }
    if (spec.script !== undefined) {
      const qjs = await loadQuickJs();
      vm.sandbox = new ScriptSandbox(qjs, machine, this.limits.hookScript, env.log);
      try {
        vm.sandbox.setup(spec.script, deadline);
      } catch (e) {
        vm.sandbox.dispose();
        vm.sandbox = null;
        if (e instanceof ScriptFailure) throw new ActionError({ kind: "script", message: e.message, field: "script", cause: e.reason });
        if (e instanceof MachineError) throw new ActionError({ kind: e.kind === "conflict" ? "conflict" : "script", message: e.message, field: "script" });
        throw e;
      }
    }
    if (spec.trace === "path") {
      const trace = vm.trace = { kind: "path" as const, events: [] as Record<string, unknown>[], dropped: 0 };
      machine.vm.setTrace((e: TraceEvent) => {
        if (trace.events.length < this.limits.maxTraceEvents) trace.events.push(e.args ? { stage: e.stage, args: e.args } : { stage: e.stage });
        else trace.dropped++;
      });
    } else if (spec.trace === "exits") {
      const trace = vm.trace = { kind: "exits" as const, events: [] as Record<string, unknown>[], dropped: 0 };
      for (const r of ["io", "hlt", "mmio", "shutdown", "hypercall", "exception", "debug", "internal_error", "x86_rdmsr", "x86_wrmsr"]) {
        machine.onExit(r, (x) => {
          if (trace.events.length >= this.limits.maxTraceEvents) {
            trace.dropped++;
            return;
          }
          const ev: Record<string, unknown> = { ...x };
          for (const k of Object.keys(ev)) if (ev[k] instanceof Uint8Array) ev[k] = [...(ev[k] as Uint8Array)];
          trace.events.push(ev);
        }, "trace");
      }
    }
    return vm;
  }

  private log(vm: Vm, line: string): void {
    if (vm.logs.length < this.limits.hookScript.maxLogLines) vm.logs.push(line.length > 4096 ? line.slice(0, 4096) + "…" : line);
  }

  private onConsole(vm: Vm | null, b: number): void {
    if (vm === null) return;
    if (!vm.console.push(b)) {
      // Over the cap: make the next KVM_RUN return at once; the slice loop ends the run.
      vm.machine.vcpu.kvmRun.immediateExit = true;
      return;
    }
    if (vm.session !== undefined && (b === 10 || vm.console.length - vm.console.pendingFrom >= 4096)) {
      const now = performance.now();
      if (now - vm.lastEventAt >= 20 || vm.console.length - vm.console.pendingFrom >= 4096) this.flushConsole(vm, now);
    }
  }

  private flushConsole(vm: Vm, now = performance.now()): void {
    const c = vm.console;
    if (vm.session === undefined || c.length === c.pendingFrom) return;
    this.emit({ session: vm.session, type: "console", data: { text: c.text(c.pendingFrom), bytes: c.length - c.pendingFrom } });
    c.pendingFrom = c.length;
    vm.lastEventAt = now;
  }

  /**
   * Between two slices of a run that asked for auto before binaryen was here (and has time left for
   * loading it: JIT_LOAD_HEADROOM_MS): a step of loading it, and auto attached once it has loaded.
   * If it cannot load, the run goes on interpreted and its logs say why.
   */
  private async tierUp(vm: Vm): Promise<void> {
    try {
      if (await loadJitStep()) this.attachAuto(vm);
    } catch (e) {
      vm.autoPending = false;
      vm.logs.push(`binaryen could not be loaded (${e instanceof Error ? e.message : String(e)}): the run went on interpreted`);
    }
  }

  private attachAuto(vm: Vm): void {
    vm.machine.setEngine("auto");
    vm.autoPending = false;
  }

  private async runVm(vm: Vm, spec: RunSpec, setupMs: number, runDeadline?: number): Promise<RunReport> {
    const m = vm.machine;
    if (vm.autoPending && jitLoaded()) this.attachAuto(vm);
    if (spec.serialInput !== undefined) {
      if (!m.serial) throw new ActionError({ kind: "argument", message: "This machine has no serial port", field: "serialInput" });
      m.feedSerial(spec.serialInput);
    }
    vm.console.reset();
    if (vm.ran) vm.logs = [];
    vm.ran = true;
    if (vm.trace) {
      vm.trace.events = [];
      vm.trace.dropped = 0;
    }
    vm.running = true;
    const t0 = performance.now();
    const deadline = runDeadline ?? t0 + spec.timeoutMs;
    vm.sandbox?.beginRun(deadline);
    const total = emptyRun();
    let hookFailure: { hook: string; cause: string; message: string } | null = null;
    let sliceStart = countsOf(m);
    try {
      let left = spec.budget;
      for (;;) {
        const slice = Math.min(left, SLICE);
        const now = performance.now();
        sliceStart = countsOf(m);
        const r = m.run({ budget: slice, timeoutMs: Math.max(0, deadline - now) });
        m.consoleBytes.length = 0; // the console is collected by the sink; keep the machine's copy small
        addSlice(total, r);
        left -= r.instructions;
        if (r.exit.reason === "budget" && left > 0) {
          // A slice's end is not an exit the caller asked for.
          dropSliceEnd(total);
          if (vm.console.truncated) {
            total.exit = { reason: "stopped", detail: `Console output limit reached (${this.limits.maxConsoleBytes} bytes)` };
            break;
          }
          if (performance.now() >= deadline) {
            total.exit = { reason: "timeout" };
            break;
          }
          if (vm.autoPending && deadline - performance.now() >= JIT_LOAD_HEADROOM_MS) await this.tierUp(vm);
          continue;
        }
        total.exit = r.exit;
        if (r.exit.reason === "timeout" && vm.console.truncated) {
          total.exit = { reason: "stopped", detail: `Console output limit reached (${this.limits.maxConsoleBytes} bytes)` };
        }
        break;
      }
    } catch (e) {
      if (!(e instanceof MachineError && e.kind === "hook")) throw e;
      // The slice that failed returned no result: its share of the counts, from the vCPU's counters.
      addSlice(total, sinceCounts(vm.machine, sliceStart));
      // MachineError's message names the hook and the exit; a script failure says why it failed.
      const m = /^Hook "([^"]*)" threw on (.*?): /.exec(e.message);
      const hook = e.cause instanceof ScriptFailure && e.cause.hook ? e.cause.hook : (m?.[1] ?? "unknown");
      const cause = e.cause instanceof ScriptFailure ? e.cause.reason : "exception";
      const message = e.cause instanceof ScriptFailure && m ? `${e.cause.message} (on ${m[2]})` : e.message;
      hookFailure = { hook, cause, message };
      total.exit = { reason: "stopped", detail: message };
    } finally {
      vm.running = false;
      m.vcpu.kvmRun.immediateExit = false;
      m.consoleBytes.length = 0;
    }
    total.wallMs = performance.now() - t0;
    this.flushConsole(vm);
    const report = buildReport(vm, total, spec, setupMs, this.limits.maxReportPorts);
    if (hookFailure) {
      report.exit = { reason: "hook_error", hook: hookFailure.hook, cause: hookFailure.cause, message: hookFailure.message };
      capReport(report, this.limits.maxAnswerBytes);
      throw new ActionError({ kind: "hook", message: hookFailure.message, hook: hookFailure.hook, cause: hookFailure.cause, field: vm.sandbox && hookFailure.hook.startsWith("script ") ? "script" : undefined, run: report });
    }
    return report;
  }
}

/**
 * Load binaryen in this worker when `spec` asks for jit (once; later calls return at once). auto
 * does not wait for it: its runs load it between slices if they go on (VmHost.tierUp).
 */
async function engineReady(spec: MachineSpec, deadline: number): Promise<void> {
  if (spec.engine !== "jit") return;
  // Loading binaryen holds the worker for 0.7–2.5 s, which a run's time limit cannot preempt: a
  // run with less time than that left is refused (503, retry) while the worker loads it.
  if (!jitLoaded() && deadline - performance.now() < JIT_LOAD_HEADROOM_MS) {
    loadJit().catch(() => {});
    throw new ActionError({ kind: "engine-loading", message: `This worker is loading the JIT (binaryen, about 1 s); retry, or give the run a timeoutMs of ${JIT_LOAD_HEADROOM_MS} ms or more` });
  }
  try {
    await loadJit();
  } catch (e) {
    throw new ActionError({ kind: "unsupported", message: `Engine "${spec.engine}" cannot be loaded in this worker: ${(e as Error)?.message ?? String(e)}`, field: "engine" });
  }
}

/** The vCPU's counters (retired instructions, VM exits, userspace exits), to take a difference later. */
interface Counts {
  instructions: number;
  vmx: Float64Array;
  user: Map<number, number>;
}
function countsOf(m: Machine): Counts {
  const v = m.vcpu;
  return { instructions: v.instructions, vmx: Float64Array.from(v.vmxExitCounts), user: new Map(v.userExitCounts) };
}
/** What ran since `c`, as a RunResult's counts (Machine.run's names). */
function sinceCounts(m: Machine, c: Counts): Pick<RunResult, "instructions" | "exits" | "userspaceExits"> {
  const v = m.vcpu;
  const exits: Record<string, number> = {};
  v.vmxExitCounts.forEach((n, r) => {
    const d = n - c.vmx[r];
    if (d > 0) exits[(EXIT_REASON_NAMES[r] ?? `reason_${r}`).toLowerCase()] = d;
  });
  const userspaceExits: Record<string, number> = {};
  for (const [r, n] of v.userExitCounts) {
    const d = n - (c.user.get(r) ?? 0);
    if (d > 0) userspaceExits[kvmExitName(r)] = d;
  }
  return { instructions: v.instructions - c.instructions, exits, userspaceExits };
}

function checkRange(m: Machine, addr: number, len: number): void {
  if (addr + len > m.memSize) {
    throw new ActionError({ kind: "argument", message: `Range 0x${addr.toString(16)}+${len} is outside guest RAM (${m.memSize} bytes)`, field: addr >= m.memSize ? "addr" : "len", where: "query" });
  }
}

/** The first `max` ports of a report's port map. */
function capPorts(ports: RunReport["ports"], max: number): RunReport["ports"] {
  const keys = Object.keys(ports);
  if (keys.length <= max) return ports;
  const out: RunReport["ports"] = {};
  for (const k of keys.slice(0, max)) out[k] = ports[k];
  return out;
}

/** Set registers by vmrun's names; the 32- and 16-bit names change only their part. */
export function applyRegs(m: Machine, regs: RegAssignment[], field: string): void {
  if (regs.length === 0) return;
  const vcpu = m.vcpu;
  const r = vcpu.getRegs() as unknown as Record<string, number>;
  for (const [name, value] of regs) {
    const r64 = REG64 as readonly string[], r32 = REG32 as readonly string[], r16 = REG16 as readonly string[];
    let i = r64.indexOf(name);
    if (i >= 0) r[REG64[i]] = value;
    else if ((i = r32.indexOf(name)) >= 0) r[REG64[i]] = value >>> 0;
    else if ((i = r16.indexOf(name)) >= 0) r[REG64[i]] = (r[REG64[i]] - (r[REG64[i]] % 65536)) + (value & 0xffff);
    else if (name === "eip" || name === "rip" || name === "ip") r.rip = name === "ip" ? value & 0xffff : value;
    else if (name === "eflags" || name === "rflags" || name === "flags") r.rflags = value;
    else throw new ActionError({ kind: "argument", message: `Unknown register ${name}`, field: `${field}.${name}` });
  }
  try {
    vcpu.setRegs(r);
  } catch (e) {
    if (e instanceof KvmError || e instanceof RangeError) throw new ActionError({ kind: "state", message: e.message, field });
    throw e;
  }
}

/** The registers as vmrun's report has them (32-bit values and segment selectors). */
export function regsReport(m: Machine): RegsReport {
  const regs = m.vcpu.getRegs();
  const s = m.vcpu.getSregs();
  const u32 = (v: number) => v % 2 ** 32;
  return {
    eax: u32(regs.rax), ebx: u32(regs.rbx), ecx: u32(regs.rcx), edx: u32(regs.rdx), esi: u32(regs.rsi),
    edi: u32(regs.rdi), esp: u32(regs.rsp), ebp: u32(regs.rbp), eip: u32(regs.rip), eflags: u32(regs.rflags),
    cs: s.cs.selector, ds: s.ds.selector, es: s.es.selector, fs: s.fs.selector, gs: s.gs.selector, ss: s.ss.selector,
  };
}

/**
 * Cut a report to `cap` bytes of JSON: trace events first, then log lines, then console text
 * (the rest of a report is small and bounded). Returns its JSON, and sets `truncated` if it cut.
 */
export function capReport(r: RunReport, cap: number): string {
  let json = JSON.stringify(r);
  for (let round = 0; json.length > cap && round < 40; round++) {
    r.truncated = true;
    const over = json.length - cap;
    if (r.trace && r.trace.events.length > 0) {
      const keep = Math.floor(r.trace.events.length / 2);
      r.trace.dropped += r.trace.events.length - keep;
      r.trace.events.length = keep;
    } else if (r.logs.length > 0) {
      r.logs.length = Math.floor(r.logs.length / 2);
    } else if (r.console.length > 0) {
      r.console = r.console.slice(0, Math.max(0, r.console.length - over - 1024));
      r.consoleTruncated = true;
    } else {
      break;
    }
    json = JSON.stringify(r);
  }
  return json;
}

function buildReport(vm: Vm, r: RunResult, spec: RunSpec, setupMs: number, maxPorts: number): RunReport {
  const m = vm.machine;
  const exit: Record<string, unknown> = { ...r.exit };
  for (const k of Object.keys(exit)) if (exit[k] instanceof Uint8Array) exit[k] = [...(exit[k] as Uint8Array)];
  const memory: Record<string, string> = {};
  for (const { addr, len } of spec.dumps) {
    const n = Math.max(0, Math.min(len, m.memSize - addr));
    memory[`0x${addr.toString(16)}`] = Buffer.from(m.vm.readGuest(addr, n)).toString("hex");
  }
  const round = (x: number) => Math.round(x * 1000) / 1000;
  const report: RunReport = {
    exit: exit as RunReport["exit"],
    regs: regsReport(m),
    instructions: r.instructions,
    exits: r.exits,
    userspaceExits: r.userspaceExits,
    ports: capPorts(m.portCounts(), maxPorts),
    memory,
    console: vm.console.text(),
    consoleTruncated: vm.console.truncated,
    engine: vm.autoPending ? "auto" : m.engine,
    wallMs: round(r.wallMs),
    timings: { setupMs: round(setupMs), runMs: round(r.wallMs), workerMs: 0 },
    logs: vm.logs,
  };
  // auto whose run ended before binaryen was needed has no engine yet: it compiled nothing.
  if (vm.autoPending || m.jitStats !== null) report.jit = jitReport(m.jitStats);
  if (vm.trace) report.trace = { kind: vm.trace.kind, events: vm.trace.events, dropped: vm.trace.dropped };
  if (Object.keys(report.ports).length >= maxPorts && Object.keys(m.portCounts()).length > maxPorts) report.truncated = true;
  return report;
}

/**
 * Request hook scripts: JavaScript a request carries, run in QuickJS compiled to WebAssembly
 * (`quickjs-emscripten`). The script sees no host globals — no files, network, environment or
 * process — only `vm` (register hooks; read and write registers and memory from inside a hook) and
 * `console.log`. Each hook call has a deadline, all calls of a run share one, and the QuickJS heap
 * has a cap; the interrupt handler stops a script even while it spins.
 *
 * What a script can do:
 * ```js
 * vm.onIo({ port: 0x60, direction: "in" }, (io) => 0x41);       // IN AL,0x60 reads 'A'
 * vm.onIo({ port: [0x500, 0x50f] }, (io) => console.log(io.port, io.value));
 * vm.onHypercall(1, ([a, b]) => a + b);                          // VMCALL with EAX=1
 * vm.onExit("hlt", (exit) => { vm.setRegs({ rax: 1 }); return "resume"; });
 * vm.onMmio({ base: 0xfee00000, size: 0x1000 }, { read: (addr, size) => 0, write: (addr, size, value) => {} });
 * // inside a hook: vm.regs(), vm.setRegs({...}), vm.read(addr, len) → number[], vm.write(addr, bytes),
 * // vm.instructions(), vm.stop("why")
 * ```
 */
import { newQuickJSWASMModuleFromVariant, type QuickJSContext, type QuickJSHandle, type QuickJSRuntime, type QuickJSSyncVariant, type QuickJSWASMModule } from "quickjs-emscripten-core";
import * as releaseSync from "@jitl/quickjs-wasmfile-release-sync";
import { type HookContext, type Machine, MachineError } from "../runtime/vmm/mod.ts";
import type { Limits } from "./config.ts";

/** Why a script failed: it threw, ran past a deadline, or ran out of memory. */
export type ScriptFailureCause = "exception" | "timeout" | "memory";

/** A request script failed while being set up or inside a hook. */
export class ScriptFailure extends Error {
  constructor(readonly reason: ScriptFailureCause, message: string, readonly hook?: string) {
    super(message);
    this.name = "ScriptFailure";
  }
}

let quickjs: Promise<QuickJSWASMModule> | undefined;

/** Load QuickJS once per thread (about 50 ms). */
export function loadQuickJs(): Promise<QuickJSWASMModule> {
  quickjs ??= newQuickJSWASMModuleFromVariant((releaseSync as unknown as { default: QuickJSSyncVariant }).default);
  quickjs.catch(() => { quickjs = undefined; });
  return quickjs;
}

/** The QuickJS instances that aborted (their state is undefined from then on). */
const aborted = new WeakSet<QuickJSWASMModule>();
/** QuickJS instances given up after an abort, for tests. */
export let quickJsAborts = 0;

/**
 * QuickJS aborted (an emscripten abort: a failed assertion, such as JS_FreeRuntime's on objects an
 * exception path leaked, issue 16 item 4): nothing more runs on this instance. The next sandbox
 * gets a fresh one, and this one's memory goes once the sandboxes still holding it are disposed.
 */
function abandon(qjs: QuickJSWASMModule): void {
  if (aborted.has(qjs)) return;
  aborted.add(qjs);
  quickJsAborts++;
  quickjs = undefined;
}

/** Whether `e` is QuickJS's WebAssembly giving up (an abort or a trap), not a script's exception. */
function isAbort(e: unknown): boolean {
  // V8's own stack running out inside QuickJS's WebAssembly leaves its C state half-way too.
  return e instanceof WebAssembly.RuntimeError || (e instanceof Error && /^Aborted\(/.test(e.message)) ||
    (e instanceof RangeError && /call stack/i.test(e.message));
}

/** Characters kept of a thrown value's name, message and stack each. */
const MAX_ERROR_CHARS = 2048;
/** Characters kept of one console.log line. */
const MAX_LOG_CHARS = 4096;
/** Largest hook result, as JSON. */
const MAX_RESULT_CHARS = 65536;
/**
 * Time given to reading a thrown value (`__describe`, inside QuickJS): a value whose reading runs
 * longer (a Proxy whose traps spin) is reported as unreadable.
 */
const DESCRIBE_MS = 20;

/** What a host call past the deadline throws (the prelude turns it into the interrupt). */
const EXPIRED = "vmxlab: deadline passed";

/** The script's view of the world, defined inside QuickJS over one host function. */
const PRELUDE = `
"use strict";
(() => {
  const hostCall = globalThis.__host;
  delete globalThis.__host;
  // Past its deadline a host call fails with a token; waiting here, out of the script's reach (no
  // catch can stop it), brings QuickJS's interrupt check within microseconds.
  const host = (op, arg) => {
    try {
      return hostCall(op, arg);
    } catch (e) {
      if (e === ${JSON.stringify(EXPIRED)}) for (;;) {}
      throw e;
    }
  };
  const handlers = [];
  const register = (kind, spec, fns) => {
    const id = handlers.length;
    handlers.push(fns);
    host("register", JSON.stringify({ kind, spec, id }));
  };
  const fn = (f, what) => { if (typeof f !== "function") throw new TypeError(what + " must be a function"); return f; };
  const vm = {
    onIo(spec, handler) { register("io", spec, { call: fn(handler, "IO handler") }); },
    onHypercall(nr, handler) { register("hypercall", nr, { call: fn(handler, "Hypercall handler") }); },
    onExit(reason, handler) { register("exit", reason, { call: fn(handler, "Exit handler") }); },
    onMmio(spec, h) {
      if (!h || typeof h !== "object") throw new TypeError("MMIO handlers must be an object { read, write }");
      register("mmio", spec, { read: h.read && fn(h.read, "MMIO read"), write: h.write && fn(h.write, "MMIO write") });
    },
    regs() { return JSON.parse(host("regs", "")); },
    setRegs(r) { host("setRegs", JSON.stringify(r)); },
    read(addr, len) { return JSON.parse(host("read", JSON.stringify([addr, len]))); },
    write(addr, bytes) { host("write", JSON.stringify([addr, Array.from(bytes)])); },
    instructions() { return Number(host("instructions", "")); },
    stop(detail) { host("stop", detail === undefined ? "" : String(detail)); },
  };
  const clip = (s, n) => s.length > n ? s.slice(0, n) + "…" : s;
  const show = (v) => typeof v === "string" ? v : (() => { try { return JSON.stringify(v); } catch { return String(v); } })();
  const log = (...args) => host("log", clip(args.map(show).join(" "), ${MAX_LOG_CHARS}));
  // A thrown value as plain data: own data properties only, looked up the prototype chain by
  // descriptor, so no getter, toJSON, toString or Symbol.toPrimitive of the script's runs. Proxy
  // traps still run, here, under the host's deadline. Each field is cut to a size.
  const dataProp = (o, k) => {
    for (let p = o, depth = 0; p !== null && depth < 32; p = Object.getPrototypeOf(p), depth++) {
      const d = Object.getOwnPropertyDescriptor(p, k);
      if (d) return "value" in d && typeof d.value === "string" ? clip(d.value, ${MAX_ERROR_CHARS}) : undefined;
    }
    return undefined;
  };
  const describe = (e) => {
    if (e === null || (typeof e !== "object" && typeof e !== "function")) {
      return JSON.stringify({ message: clip(typeof e === "symbol" ? "a symbol" : String(e), ${MAX_ERROR_CHARS}) });
    }
    let name, message, stack;
    try { name = dataProp(e, "name"); } catch { /* a Proxy trap threw */ }
    try { message = dataProp(e, "message"); } catch { /* ditto */ }
    try { stack = dataProp(e, "stack"); } catch { /* ditto */ }
    return JSON.stringify({ name, message: message ?? (typeof e === "function" ? "a function" : "an object"), stack });
  };
  Object.freeze(vm);
  Object.defineProperty(globalThis, "vm", { value: vm });
  Object.defineProperty(globalThis, "console", { value: Object.freeze({ log, info: log, warn: log, error: log }) });
  Object.defineProperty(globalThis, "__dispatch", {
    value: (id, which, args) => {
      const f = handlers[id][which];
      if (typeof f !== "function") return undefined;
      const r = f(...JSON.parse(args));
      if (r === undefined) return undefined;
      const s = JSON.stringify(r);
      if (typeof s === "string" && s.length > ${MAX_RESULT_CHARS}) throw new RangeError("A hook's result is over ${MAX_RESULT_CHARS} characters as JSON");
      return s;
    },
  });
  Object.defineProperty(globalThis, "__describe", { value: describe });
})();
`;

/** The script's registration message. */
interface Registration {
  kind: "io" | "hypercall" | "exit" | "mmio";
  spec: unknown;
  id: number;
}

/**
 * One request script bound to one machine. `setup()` runs the script (which registers hooks on the
 * machine); `beginRun()` starts the per-run time budget; `dispose()` frees QuickJS.
 */
export class ScriptSandbox {
  private readonly rt: QuickJSRuntime;
  private readonly ctx: QuickJSContext;
  private readonly dispatch: QuickJSHandle;
  private readonly describe: QuickJSHandle;
  private deadline = Infinity;
  /** The interrupt handler stopped the script (its deadline passed). */
  private interrupted = false;
  private runLeftMs: number;
  /** The run's own deadline (its timeoutMs): no hook call outlives it. */
  private runDeadline = Infinity;
  private hookCtx: HookContext | null = null;
  private settingUp = false;
  private stopCalled = false;
  /** A VMM error a host call raised (a hook conflict): reported as itself, not as a script exception. */
  private hostError: Error | null = null;
  private disposed = false;

  constructor(
    private readonly qjs: QuickJSWASMModule,
    private readonly machine: Machine,
    private readonly limits: Limits["hookScript"],
    private readonly log: (line: string) => void,
  ) {
    this.runLeftMs = limits.runMs;
    this.rt = qjs.newRuntime();
    this.rt.setMemoryLimit(limits.memoryBytes);
    // QuickJS's own stack check must trip before V8's stack runs out inside its WebAssembly: with
    // 256 KiB, JSON.stringify of a 200,000-deep array overflowed V8's stack and QuickJS aborted on
    // the objects left behind (17 MB lost per request); with 64 KiB it throws InternalError.
    this.rt.setMaxStackSize(64 * 1024);
    this.rt.setInterruptHandler(() => {
      if (performance.now() <= this.deadline) return false;
      this.interrupted = true;
      return true;
    });
    this.ctx = this.rt.newContext();
    const host = this.ctx.newFunction("__host", (opH, argH) => {
      // Past the deadline every host call fails at once, so a loop of host calls (whose time
      // QuickJS does not count towards its interrupt check) reaches the interrupt soon.
      if (performance.now() > this.deadline) {
        this.interrupted = true;
        return { error: this.ctx.newString(EXPIRED) };
      }
      const op = this.ctx.getString(opH);
      const arg = this.ctx.getString(argH);
      try {
        const r = this.host(op, arg);
        return r === undefined ? this.ctx.undefined : this.ctx.newString(r);
      } catch (e) {
        if (e instanceof MachineError) this.hostError = e;
        return { error: this.ctx.newError((e as Error).message) };
      }
    });
    this.ctx.setProp(this.ctx.global, "__host", host);
    host.dispose();
    this.evaluate(PRELUDE, "prelude.js", this.limits.runMs);
    this.dispatch = this.ctx.getProp(this.ctx.global, "__dispatch");
    this.describe = this.ctx.getProp(this.ctx.global, "__describe");
  }

  /**
   * Run the script's top level, which registers its hooks.
   * @throws ScriptFailure when it throws, times out or runs out of memory; MachineError when a hook conflicts
   */
  setup(source: string, deadline = Infinity): void {
    this.settingUp = true;
    try {
      // The top level gets the run's whole hook time (it may build tables the hooks use), within
      // the request's own deadline.
      this.evaluate(source, "hook.js", Math.max(0, Math.min(this.limits.runMs, deadline - performance.now())));
    } finally {
      this.settingUp = false;
    }
  }

  /** Give the next run its own time budget, ending at the run's deadline at the latest. */
  beginRun(deadline = Infinity): void {
    this.runLeftMs = this.limits.runMs;
    this.runDeadline = deadline;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (aborted.has(this.qjs)) return;
    try {
      this.dispatch.dispose();
      this.describe.dispose();
      this.ctx.dispose();
      this.rt.dispose();
    } catch (e) {
      if (!isAbort(e)) throw e;
      abandon(this.qjs);
    }
  }

  /** Run `f` on QuickJS; an abort gives the instance up and is the script's failure, not the host's. */
  private guard<T>(hook: string | undefined, f: () => T): T {
    if (aborted.has(this.qjs)) throw new ScriptFailure("exception", `${hook ? `Hook "${hook}"` : "Script"} cannot run: QuickJS stopped after an internal error`, hook);
    try {
      return f();
    } catch (e) {
      if (!isAbort(e)) throw e;
      abandon(this.qjs);
      throw new ScriptFailure("exception", `${hook ? `Hook "${hook}"` : "Script"} stopped QuickJS: ${(e as Error).message.slice(0, 200)}`, hook);
    }
  }

  private evaluate(source: string, file: string, ms: number): void {
    this.deadline = performance.now() + ms;
    this.hostError = null;
    this.interrupted = false;
    this.guard(undefined, () => {
      let r;
      try {
        r = this.ctx.evalCode(source, file, { type: "global" });
      } finally {
        this.deadline = Infinity;
      }
      if (r.error) {
        const f = this.failure(r.error, undefined, ms);
        if (this.hostError) throw this.hostError;
        throw f;
      }
      r.value.dispose();
    });
  }

  /**
   * Why the script failed, from what it threw. The value is never read by the host: QuickJS's own
   * dump would call its getters and toJSON with no deadline (issue 16). `__describe` reads it as
   * plain data inside QuickJS, under DESCRIBE_MS of its own.
   */
  private failure(errH: QuickJSHandle, hook: string | undefined, ms: number): ScriptFailure {
    const where = hook ? `Hook "${hook}"` : "Script";
    // The interrupt is uncatchable in QuickJS: a script stopped at its deadline failed with it.
    if (this.interrupted) {
      errH.dispose();
      return new ScriptFailure("timeout", `${where} ran past its deadline (${Math.round(ms)} ms)`, hook);
    }
    const err = this.read(errH);
    errH.dispose();
    if (err === "memory" || (err === "unreadable" && this.nearMemoryLimit())) {
      return new ScriptFailure("memory", `${where} ran out of memory (${this.limits.memoryBytes} bytes)`, hook);
    }
    if (err === "unreadable") return new ScriptFailure("exception", `${where} threw a value that could not be read within ${DESCRIBE_MS} ms`, hook);
    const name = err.name ?? "Error";
    const message = err.message ?? "";
    if (name === "InternalError" && message === "out of memory") {
      return new ScriptFailure("memory", `${where} ran out of memory (${this.limits.memoryBytes} bytes)`, hook);
    }
    const at = err.stack ? ` (${err.stack.trim().split("\n")[0].trim()})` : "";
    return new ScriptFailure("exception", `${where} threw ${name}: ${message}${at}`, hook);
  }

  /** A thrown value's name, message and stack, read by `__describe` inside QuickJS under a deadline. */
  private read(errH: QuickJSHandle): { name?: string; message?: string; stack?: string } | "memory" | "unreadable" {
    // QuickJS throws null when it cannot even allocate the error object.
    if (this.ctx.typeof(errH) === "object" && this.ctx.sameValue(errH, this.ctx.null)) return this.nearMemoryLimit() ? "memory" : { message: "null" };
    this.deadline = performance.now() + DESCRIBE_MS;
    this.interrupted = false;
    let r;
    try {
      r = this.ctx.callFunction(this.describe, this.ctx.undefined, errH);
    } finally {
      this.deadline = Infinity;
    }
    if (r.error) {
      r.error.dispose();
      return "unreadable";
    }
    const text = this.ctx.typeof(r.value) === "string" ? this.ctx.getString(r.value) : "{}";
    r.value.dispose();
    try {
      const v = JSON.parse(text) as Record<string, unknown>;
      const str = (x: unknown) => typeof x === "string" ? x : undefined;
      return { name: str(v.name), message: str(v.message), stack: str(v.stack) };
    } catch {
      return "unreadable";
    }
  }

  private nearMemoryLimit(): boolean {
    try {
      const h = this.rt.computeMemoryUsage();
      const u = this.ctx.dump(h) as { memory_used_size?: number };
      h.dispose();
      return (u.memory_used_size ?? 0) >= this.limits.memoryBytes * 0.9;
    } catch {
      return true;
    }
  }

  /** Call handler `id` (its `which` function) with JSON-able arguments, under the deadlines. */
  private call(id: number, which: string, hook: string, args: unknown[], hctx: HookContext): unknown {
    if (this.runLeftMs <= 0) throw new ScriptFailure("timeout", `Hook "${hook}" has no time left: the run's hook time (${this.limits.runMs} ms) is used up`, hook);
    const t0 = performance.now();
    if (t0 >= this.runDeadline) throw new ScriptFailure("timeout", `Hook "${hook}" has no time left: the run's time limit has passed`, hook);
    const ms = Math.min(this.limits.callMs, this.runLeftMs, this.runDeadline - t0);
    this.deadline = t0 + ms;
    this.interrupted = false;
    this.hookCtx = hctx;
    return this.guard(hook, () => {
      const idH = this.ctx.newNumber(id);
      const whichH = this.ctx.newString(which);
      const argsH = this.ctx.newString(JSON.stringify(args));
      let r;
      try {
        r = this.ctx.callFunction(this.dispatch, this.ctx.undefined, idH, whichH, argsH);
      } finally {
        this.deadline = Infinity;
        this.hookCtx = null;
        this.runLeftMs -= performance.now() - t0;
        idH.dispose();
        whichH.dispose();
        argsH.dispose();
      }
      if (r.error) throw this.failure(r.error, hook, ms);
      const s = this.ctx.typeof(r.value) === "string" ? this.ctx.getString(r.value) : undefined;
      r.value.dispose();
      return s === undefined ? undefined : JSON.parse(s);
    });
  }

  /** The host side of `__host(op, arg)`. */
  private host(op: string, arg: string): string | undefined {
    const m = this.machine;
    switch (op) {
      case "register":
        if (!this.settingUp) throw new Error("Hooks can only be registered while the script is set up");
        this.register(JSON.parse(arg) as Registration);
        return undefined;
      case "log":
        this.log(arg);
        return undefined;
      case "instructions":
        return String(m.vcpu.instructions);
      case "regs":
        return JSON.stringify(m.vcpu.getRegs());
      case "setRegs": {
        const r = JSON.parse(arg) as Record<string, unknown>;
        if (!r || typeof r !== "object") throw new TypeError("setRegs expects an object");
        const known = new Set(Object.keys(m.vcpu.getRegs()));
        for (const [k, v] of Object.entries(r)) {
          if (!known.has(k)) throw new TypeError(`Unknown register ${k}`);
          if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new TypeError(`Invalid value for ${k}: ${v}`);
        }
        m.vcpu.setRegs(r as Record<string, number>);
        return undefined;
      }
      case "read": {
        const [addr, len] = JSON.parse(arg) as [number, number];
        if (!Number.isSafeInteger(addr) || addr < 0 || !Number.isSafeInteger(len) || len < 0 || len > 65536) {
          throw new RangeError(`Invalid read: address ${addr}, length ${len} (at most 65536 bytes)`);
        }
        return JSON.stringify([...m.vm.readGuest(addr, len)]);
      }
      case "write": {
        const [addr, bytes] = JSON.parse(arg) as [number, number[]];
        if (!Number.isSafeInteger(addr) || addr < 0 || !Array.isArray(bytes) || bytes.length > 65536) {
          throw new RangeError(`Invalid write: address ${addr} (at most 65536 bytes)`);
        }
        if (addr + bytes.length > m.memSize) throw new RangeError(`Invalid write: 0x${addr.toString(16)}+${bytes.length} is outside guest RAM`);
        m.vm.writeGuest(addr, Uint8Array.from(bytes));
        return undefined;
      }
      case "stop":
        if (!this.hookCtx) throw new Error("vm.stop() only works inside a hook");
        this.hookCtx.stop(arg === "" ? "stopped by the request script" : arg);
        this.stopCalled = true;
        return undefined;
    }
    throw new Error(`Unknown host call ${op}`);
  }

  private register(reg: Registration): void {
    const m = this.machine;
    const { kind, spec, id } = reg;
    const num = (v: unknown, what: string): number => {
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new TypeError(`Invalid ${what}: ${JSON.stringify(v)}`);
      return v;
    };
    if (kind === "io") {
      const s = spec as { port?: unknown; direction?: unknown; sizes?: unknown } | null;
      if (!s || typeof s !== "object") throw new TypeError("vm.onIo expects { port, direction?, sizes? }");
      const port = Array.isArray(s.port) ? [num(s.port[0], "port"), num(s.port[1], "port")] as [number, number] : num(s.port, "port");
      const name = `script io ${Array.isArray(port) ? port.map((p) => "0x" + p.toString(16)).join("-") : "0x" + port.toString(16)}`;
      m.onIo({
        port,
        direction: (s.direction ?? "both") as "in" | "out" | "both",
        sizes: s.sizes as (1 | 2 | 4)[] | undefined,
        name,
        handler: (io, ctx) => {
          const r = this.call(id, "call", name, [io], ctx);
          if (io.direction === "in") {
            if (r === undefined || r === null) return undefined;
            if (typeof r !== "number") throw new ScriptFailure("exception", `Hook "${name}" returned ${JSON.stringify(r)} for an IN (expected a number)`, name);
            return r;
          }
        },
      });
    } else if (kind === "hypercall") {
      const nr = num(spec, "hypercall number");
      const name = `script hypercall ${nr}`;
      m.onHypercall(nr, (args, ctx) => {
        const r = this.call(id, "call", name, [args], ctx);
        if (r === undefined || r === null) return undefined;
        if (typeof r !== "number") throw new ScriptFailure("exception", `Hook "${name}" returned ${JSON.stringify(r)} (expected a number)`, name);
        return r;
      }, name);
    } else if (kind === "exit") {
      if (typeof spec !== "string" && typeof spec !== "number") throw new TypeError(`Invalid exit reason: ${JSON.stringify(spec)}`);
      const name = `script exit ${spec}`;
      m.onExit(spec, (exit, ctx) => {
        const plain: Record<string, unknown> = { ...exit };
        for (const k of Object.keys(plain)) if (plain[k] instanceof Uint8Array) plain[k] = [...(plain[k] as Uint8Array)];
        this.stopCalled = false;
        const r = this.call(id, "call", name, [plain], ctx);
        // vm.stop() ends the run at this exit: Machine honours a stop when the hook handled the exit.
        return r === "resume" || this.stopCalled ? "resume" : undefined;
      }, name);
    } else if (kind === "mmio") {
      const s = spec as { base?: unknown; size?: unknown } | null;
      if (!s || typeof s !== "object") throw new TypeError("vm.onMmio expects { base, size }");
      const base = num(s.base, "MMIO base");
      const name = `script mmio 0x${base.toString(16)}`;
      m.onMmio({
        base, size: num(s.size, "MMIO size"), name,
        read: (addr, size, ctx) => {
          const r = this.call(id, "read", name, [addr, size], ctx);
          return typeof r === "number" ? r : -1;
        },
        write: (addr, size, value, ctx) => void this.call(id, "write", name, [addr, size, value], ctx),
      });
    } else {
      throw new TypeError(`Unknown hook kind ${String(kind)}`);
    }
  }
}

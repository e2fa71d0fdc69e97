/**
 * vmrun: run a guest image from the command line.
 *
 *   npm run vmrun -- [options] IMAGE
 *   node_modules/.bin/deno run -A scripts/vmrun.ts [options] IMAGE
 *   node_modules/.bin/bun scripts/vmrun.ts [options] IMAGE
 *
 * stdout carries the guest's console bytes (port 0xE9 and the UART); with --json the last line is
 * a JSON report. Exit status: 0 after HLT, 3 when the budget ran out, 1 on shutdown, internal
 * error or any other end, 2 on a usage or image error, 4 when --engine lockstep finds a difference.
 */
import { readFileSync, writeSync } from "node:fs";
import { parseArgs } from "node:util";
import { Machine, MachineError, PC_DEVICES, type RunResult } from "../runtime/vmm/machine.ts";
import { ConsoleWatch, runSliced, SerialInput } from "../runtime/vmm/serial_console.ts";
import { Terminal } from "./_terminal.ts";
import { parseAddress, parseSize } from "../runtime/vmm/loader.ts";
import { ImageError } from "../runtime/vmm/image.ts";
import { bootModeFor } from "../runtime/vmm/boot_setup.ts";
import { KvmError } from "../runtime/kvm/kvm_main.ts";
import { Seg } from "../runtime/cpu/state.ts";
import { jitReport, loadJit, loadJitStep, runAuto } from "../runtime/vmm/tiering.ts";

export const USAGE = `Usage: vmrun [options] IMAGE
       vmrun --kernel BZIMAGE [--initrd FILE] [--append CMDLINE] [options]

Run an x86 guest image on vmxlab's emulated VMX processor, or boot a Linux kernel with its console
on the terminal (as qemu -nographic: raw mode, Ctrl-A X quits, Ctrl-A Ctrl-A sends Ctrl-A).

Options:
  --mode real|protected|paged|long   CPU mode at entry (default: protected for multiboot kernels and ELF
                                     images entered at or above 1 MiB, real otherwise)
  --format raw|elf|multiboot|rom|auto
                                     image format (default auto)
  --load ADDR                        load address of a raw image (default 0x1000 in real mode, 0x100000 otherwise)
  --entry ADDR                       entry point (default: the load address, or the ELF/multiboot entry)
  --mem SIZE                         guest RAM, with K/M/G suffixes (default 16M)
  --engine interp|jit|auto|lockstep|kvm
                                     execution engine (default interp, or $VMXLAB_ENGINE): jit compiles
                                     code to wasm the first time it runs, auto once it is hot; lockstep runs
                                     the interpreter and the JIT side by side and stops at the first block
                                     after which their states differ, printing both states and the block
                                     (exit status 4); kvm (the hardware tier) is not implemented
  --reg NAME=VALUE                   set a register before the run (repeatable): eax..edi, esp, ebp, eip,
                                     eflags, the 16-bit names (ax, sp, ...) and the 64-bit names (rax, ...)
  --budget N                         stop after N instructions (exit status 3)
  --timeout MS                       stop after MS milliseconds of wall time
  --dump ADDR:LEN                    include guest memory in the JSON report (repeatable)
  --serial-input TEXT                bytes for the UART's receive FIFO; with --kernel, fed a line at a
                                     time as the guest reads it (@FILE reads them from FILE), and the run
                                     ends once every line is answered
  --kernel FILE                      boot a Linux bzImage (32-bit boot protocol) in protected mode with
                                     the PC devices (RTC, i8042, reset port) and the UART on IRQ4
  --initrd FILE                      the initial RAM disk for --kernel
  --append CMDLINE                   the kernel command line (default "console=ttyS0")
  --prompt TEXT                      with --kernel and --serial-input: feed each line once TEXT (the
                                     shell's prompt) has appeared; --json reports when it first did
  --rtc DATE                         the RTC's date at boot: ISO 8601 (default 2026-01-01T00:00:00Z) or "now"
  --trace exits|path|insn            trace to stderr, one JSON object a line
  --json                             end stdout with a JSON report
  --gdb PORT                         serve the GDB remote protocol on 127.0.0.1:PORT (0: a free port,
                                     printed on stderr); gdb: target remote :PORT
  --gdb-wait                         with --gdb: hold the guest until gdb connects and continues
  --help                             show this help

Examples:
  vmrun tests/guests/hello16.bin --reg eax=2 --reg ebx=2
  vmrun --mode protected --json tests/guests/pm_fib.bin
  vmrun --mode protected --budget 1000000 tests/guests/cguest_O2.elf
  vmrun --kernel tests/guests/linux/bzImage --initrd tests/guests/linux/initramfs.cpio.gz
  vmrun --gdb 1234 --gdb-wait tests/guests/gdb_demo.elf   # then: gdb tests/guests/gdb_demo.elf -ex 'directory tests/guests' -ex 'target remote :1234'
`;

/** A usage error: exit status 2 with a one-line message. */
class UsageError extends Error {}

const REG64 = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"];
const REG32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const REG16 = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"];

interface Options {
  image: string;
  /** Unset: the image's (bootModeFor: protected for multiboot and ELF entered above 1 MiB, else real). */
  mode?: "real" | "protected" | "paged" | "long";
  format: "raw" | "elf" | "multiboot" | "rom" | "auto";
  load?: number;
  entry?: number;
  mem: number;
  /** Unset: the Machine default (interp, or VMXLAB_ENGINE). */
  engine?: "interp" | "jit" | "auto" | "lockstep" | "kvm";
  regs: [string, number][];
  budget?: number;
  timeout?: number;
  dumps: [number, number][];
  trace?: "exits" | "path" | "insn";
  json: boolean;
  serialInput?: string;
  kernel?: string;
  initrd?: string;
  append?: string;
  prompt?: string;
  rtc?: number;
  gdb?: number;
  gdbWait: boolean;
}

function oneOf<T extends string>(name: string, v: string | undefined, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`Invalid --${name}: ${v} (expected ${allowed.join(", ")})`);
  return v as T;
}
function num(name: string, v: string): number {
  try {
    return parseAddress(v);
  } catch {
    throw new UsageError(`Invalid --${name}: ${v} (expected a decimal or 0x-hex number)`);
  }
}

export function parseCli(argv: string[]): Options | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        mode: { type: "string" }, format: { type: "string" }, load: { type: "string" }, entry: { type: "string" },
        mem: { type: "string" }, engine: { type: "string" }, reg: { type: "string", multiple: true },
        budget: { type: "string" }, timeout: { type: "string" }, dump: { type: "string", multiple: true },
        trace: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean" },
        "serial-input": { type: "string" }, kernel: { type: "string" }, initrd: { type: "string" },
        append: { type: "string" }, prompt: { type: "string" }, rtc: { type: "string" },
        gdb: { type: "string" }, "gdb-wait": { type: "boolean" },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message.split("\n")[0]);
  }
  const v = parsed.values;
  if (v.help) return "help";
  const kernel = v.kernel;
  if (kernel !== undefined) {
    if (parsed.positionals.length !== 0) throw new UsageError(`--kernel boots a kernel: no IMAGE as well (got ${parsed.positionals.join(" ")})`);
    for (const o of ["mode", "format", "load", "entry", "reg"] as const) {
      if (v[o] !== undefined) throw new UsageError(`--${o} does not go with --kernel (the boot protocol sets the CPU up)`);
    }
    if (v.engine === "lockstep") throw new UsageError("--engine lockstep does not go with --kernel");
  } else {
    for (const o of ["initrd", "append", "prompt", "rtc"] as const) {
      if (v[o] !== undefined) throw new UsageError(`--${o} goes with --kernel`);
    }
    if (parsed.positionals.length !== 1) {
      throw new UsageError(parsed.positionals.length === 0 ? "Missing IMAGE (see --help)" : `Expected one IMAGE, got ${parsed.positionals.length}`);
    }
  }
  let rtc: number | undefined;
  if (v.rtc !== undefined) {
    const ms = v.rtc === "now" ? Date.now() : Date.parse(v.rtc);
    if (!Number.isFinite(ms)) throw new UsageError(`Invalid --rtc: ${v.rtc} (expected an ISO 8601 date such as 2026-01-01T00:00:00Z, or "now")`);
    rtc = Math.floor(ms / 1000);
  }
  let mem: number;
  try {
    mem = v.mem === undefined ? (kernel !== undefined ? 128 << 20 : 16 << 20) : parseSize(v.mem);
  } catch (e) {
    throw new UsageError(`Invalid --mem: ${(e as Error).message}`);
  }
  const regs: [string, number][] = (v.reg ?? []).map((r) => {
    const m = /^([a-z0-9]+)=(.+)$/i.exec(r);
    if (!m) throw new UsageError(`Invalid --reg: ${r} (expected NAME=VALUE)`);
    const name = m[1].toLowerCase();
    if (![...REG64, ...REG32, ...REG16, "eip", "rip", "ip", "eflags", "rflags", "flags"].includes(name)) {
      throw new UsageError(`Invalid --reg: unknown register ${m[1]}`);
    }
    return [name, num("reg", m[2])];
  });
  const dumps: [number, number][] = (v.dump ?? []).map((d) => {
    const m = /^([^:]+):(.+)$/.exec(d);
    if (!m) throw new UsageError(`Invalid --dump: ${d} (expected ADDR:LEN)`);
    const len = num("dump", m[2]);
    if (len > 1 << 20) throw new UsageError(`Invalid --dump: ${d} (at most 1 MiB)`);
    return [num("dump", m[1]), len];
  });
  const intOpt = (name: string, s: string | undefined) => {
    if (s === undefined) return undefined;
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new UsageError(`Invalid --${name}: ${s} (expected a whole number)`);
    return Number(s);
  };
  return {
    image: kernel ?? parsed.positionals[0],
    mode: kernel !== undefined ? "protected" : v.mode === undefined ? undefined : oneOf("mode", v.mode, ["real", "protected", "paged", "long"] as const, "real"),
    format: oneOf("format", v.format, ["raw", "elf", "multiboot", "rom", "auto"] as const, "auto"),
    load: v.load === undefined ? undefined : num("load", v.load),
    entry: v.entry === undefined ? undefined : num("entry", v.entry),
    mem,
    engine: v.engine === undefined ? undefined : oneOf("engine", v.engine, ["interp", "jit", "auto", "lockstep", "kvm"] as const, "interp"),
    regs,
    budget: intOpt("budget", v.budget),
    timeout: intOpt("timeout", v.timeout),
    dumps,
    trace: v.trace === undefined ? undefined : oneOf("trace", v.trace, ["exits", "path", "insn"] as const, "exits"),
    json: v.json ?? false,
    serialInput: v["serial-input"],
    kernel, initrd: v.initrd, append: v.append, prompt: v.prompt, rtc,
    gdb: gdbPort(v.gdb, v["gdb-wait"] ?? false, v.engine, v.trace, v.budget !== undefined || v.timeout !== undefined),
    gdbWait: v["gdb-wait"] ?? false,
  };
}

function gdbPort(port: string | undefined, wait: boolean, engine: string | undefined, trace: string | undefined, limits: boolean): number | undefined {
  if (port === undefined) {
    if (wait) throw new UsageError("--gdb-wait needs --gdb PORT");
    return undefined;
  }
  if (!/^\d+$/.test(port) || Number(port) > 65535) throw new UsageError(`Invalid --gdb: ${port} (expected a TCP port, 0 for any free one)`);
  if (engine === "lockstep" || engine === "kvm") throw new UsageError(`--gdb works with --engine interp, jit or auto, not ${engine}`);
  if (trace === "insn") throw new UsageError("--gdb and --trace insn both need the processor's per-instruction hook: use one");
  if (limits) throw new UsageError("--gdb takes no --budget or --timeout: the debugger decides how long the guest runs");
  return Number(port);
}

function applyReg(m: Machine, name: string, value: number): void {
  const vcpu = m.vcpu;
  const r = vcpu.getRegs() as unknown as Record<string, number>;
  let i = REG64.indexOf(name);
  if (i >= 0) { r[REG64[i]] = value; vcpu.setRegs(r); return; }
  i = REG32.indexOf(name);
  if (i >= 0) { r[REG64[i]] = value >>> 0; vcpu.setRegs(r); return; }
  i = REG16.indexOf(name);
  if (i >= 0) { r[REG64[i]] = (r[REG64[i]] & 0xffff0000) + (value & 0xffff); vcpu.setRegs(r); return; }
  if (name === "eip" || name === "rip" || name === "ip") { vcpu.setRegs({ rip: value }); return; }
  vcpu.setRegs({ rflags: value });
}

const out = (s: string) => writeSync(1, s);
const err = (s: string) => writeSync(2, s);

/** Run vmrun with `argv`; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  let opts: Options | "help";
  try {
    opts = parseCli(argv);
  } catch (e) {
    if (e instanceof UsageError) { err(`vmrun: ${e.message}\n`); return 2; }
    throw e;
  }
  if (opts === "help") { out(USAGE); return 0; }
  if (opts.engine === "kvm") {
    err(`vmrun: Engine "kvm" (the hardware tier over /dev/kvm) is not built yet: use --engine interp, jit or auto\n`);
    return 2;
  }
  if (opts.mode === "long") {
    err("vmrun: Long mode is not supported: vmxlab runs 16- and 32-bit guests (use real, protected or paged)\n");
    return 2;
  }
  if (opts.kernel !== undefined) return await runKernel(opts);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(opts.image));
  } catch (e) {
    err(`vmrun: Cannot read image ${opts.image}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
    return 2;
  }
  const mode = opts.mode ?? bootModeFor(bytes, opts.format);
  // jit and lockstep need binaryen (loaded here, only for them): then Machines attach the JIT as
  // they are built. auto starts interpreting and loads it only if the run goes on (runAuto).
  const engine = opts.engine === "lockstep" || opts.engine === "auto" ? "interp" : opts.engine;
  if (opts.engine === "jit" || opts.engine === "lockstep") await loadJit();
  const consoleBuf: number[] = [];
  const flush = () => { if (consoleBuf.length) { writeSync(1, new Uint8Array(consoleBuf)); consoleBuf.length = 0; } };
  const build = (consoleFn: ((b: number) => void) | undefined, traced: boolean): Machine => {
    const mm = new Machine({
      memSize: opts.mem,
      mode,
      engine,
      console: consoleFn,
      trace: traced && opts.trace === "path" ? (e) => err(JSON.stringify(e) + "\n") : undefined,
    });
    mm.load(bytes, { format: opts.format, loadAddr: opts.load, entry: opts.entry });
    for (const [name, value] of opts.regs) applyReg(mm, name, value);
    if (opts.serialInput !== undefined) mm.feedSerial(opts.serialInput);
    return mm;
  };
  const printConsole = (b: number) => { consoleBuf.push(b); if (b === 10 || consoleBuf.length >= 4096) flush(); };
  let m: Machine;
  try {
    m = build(printConsole, true);
  } catch (e) {
    if (e instanceof ImageError || e instanceof MachineError || e instanceof KvmError || e instanceof RangeError) {
      err(`vmrun: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (opts.trace === "exits") {
    m.onExit("io", (x) => {
      if (x.reason === "io") err(JSON.stringify({ exit: "io", port: x.port, size: x.size, direction: x.direction, count: x.count, data: [...x.data] }) + "\n");
    }, "trace");
    for (const r of ["hlt", "mmio", "shutdown", "hypercall", "exception", "debug", "internal_error", "budget"]) {
      // Byte arrays (an MMIO exit's data) as JSON arrays, as the IO line above has them.
      m.onExit(r, (x) => void err(JSON.stringify({ exit: r, ...x }, (_k, v) => v instanceof Uint8Array ? [...v] : v) + "\n"), "trace");
    }
  }
  // --trace insn interprets every instruction, whatever the engine.
  if (opts.trace === "insn") {
    const { loadDisassembler, disassembleSync } = await import("../runtime/vmm/disasm.ts");
    await loadDisassembler();
    m.vcpu.cpu.onInsn = (cpu, ins, eip) => {
      const bits = cpu.code32 ? 32 : 16;
      const d = disassembleSync(new Uint8Array(ins.bytes), eip, bits, 1)[0];
      err(JSON.stringify({ cs: cpu.getSegSel(Seg.CS), eip, bytes: ins.bytes.map((b) => b.toString(16).padStart(2, "0")).join(" "), text: d?.text ?? "(bad)" }) + "\n");
    };
  }
  let result: RunResult;
  let status = 0;
  try {
    if (opts.engine === "lockstep") {
      // A (this machine, console printed) interprets, B (built alike, console dropped) gets the JIT from runLockstep.
      const { runLockstep, formatDifference } = await import("../runtime/vmm/lockstep.ts");
      let firstPair = true;
      const pair = () => {
        const a = firstPair ? m : build(undefined, false); // a replay: the console was printed already
        firstPair = false;
        m = a;
        return { a, b: build(() => {}, false) };
      };
      const out = await runLockstep(pair, { budget: opts.budget });
      result = out.result;
      if (out.difference !== null) {
        const { loadDisassembler, disassembleSync } = await import("../runtime/vmm/disasm.ts");
        await loadDisassembler();
        flush();
        err(formatDifference(out.difference, (b, eip, bits) => disassembleSync(b, eip, bits).map((d) => `0x${d.address.toString(16)}: ${d.text}`)));
        status = 4;
      }
    } else if (opts.gdb !== undefined) {
      result = await runGdb(m, opts.gdb, opts.gdbWait, opts.engine === "auto");
    } else if (opts.engine === "auto") {
      result = await runAuto(m, { budget: opts.budget, timeoutMs: opts.timeout });
    } else {
      result = m.run({ budget: opts.budget, timeoutMs: opts.timeout });
    }
  } catch (e) {
    flush();
    if (e instanceof MachineError) {
      err(`vmrun: ${e.message}\n`);
      if (opts.json) out(JSON.stringify(report(m, opts, { exit: { reason: "hook_error", message: e.message } as never, instructions: m.vcpu.instructions, exits: {}, userspaceExits: {}, wallMs: 0 })) + "\n");
      return 1;
    }
    throw e;
  }
  flush();
  if (opts.json) {
    const c = m.consoleBytes;
    if (c.length && c[c.length - 1] !== 10) out("\n");
    out(JSON.stringify(report(m, opts, result)) + "\n");
  } else if (result.exit.reason !== "hlt" && status === 0) {
    err(`vmrun: ${summary(result)}\n`);
  }
  if (status !== 0) return status;
  switch (result.exit.reason) {
    case "hlt": return 0;
    case "budget": return 3;
    default: return 1;
  }
}

/**
 * `--kernel`: boot a bzImage with the PC devices, the console on the terminal (or scripted with
 * --serial-input), in slices so that the terminal, binaryen (auto) and the wall clock get their turn.
 */
async function runKernel(opts: Options): Promise<number> {
  const readOpt = (what: string, path: string): Uint8Array => {
    try {
      return new Uint8Array(readFileSync(path));
    } catch (e) {
      throw new UsageError(`Cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  let m: Machine;
  let script: string | undefined;
  const consoleBuf: number[] = [];
  const flush = () => { if (consoleBuf.length) { writeSync(1, new Uint8Array(consoleBuf)); consoleBuf.length = 0; } };
  try {
    const kernel = readOpt("kernel", opts.kernel!);
    const initrd = opts.initrd === undefined ? undefined : readOpt("initrd", opts.initrd);
    if (opts.serialInput !== undefined) {
      script = opts.serialInput.startsWith("@") ? new TextDecoder().decode(readOpt("serial input", opts.serialInput.slice(1))) : opts.serialInput;
    }
    if (opts.engine === "jit") await loadJit();
    m = new Machine({
      memSize: opts.mem, mode: "protected", engine: opts.engine === "jit" ? "jit" : "interp",
      devices: { ...PC_DEVICES }, rtcStart: opts.rtc,
      // A line, or a prompt's closing space, goes out at once: the terminal (and a benchmark waiting
      // for the prompt) sees it when the guest writes it, not at the end of the slice.
      console: (b) => { consoleBuf.push(b); if (b === 10 || b === 32 || consoleBuf.length >= 4096) flush(); },
      trace: opts.trace === "path" ? (e) => err(JSON.stringify(e) + "\n") : undefined,
    });
    m.load(kernel, { format: "bzimage", initrd, cmdline: opts.append ?? "console=ttyS0" });
  } catch (e) {
    if (e instanceof UsageError || e instanceof ImageError || e instanceof MachineError || e instanceof KvmError || e instanceof RangeError) {
      err(`vmrun: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const prompt = opts.prompt === undefined ? null : new ConsoleWatch(m, opts.prompt);
  let auto = opts.engine === "auto";
  let result: RunResult;
  const term = script === undefined ? new Terminal() : null;
  try {
    if (script !== undefined) new SerialInput(m, script, { prompt: opts.prompt, stopWhenDone: true });
    result = await runSliced(m, {
      budget: opts.budget, timeoutMs: opts.timeout, realtime: term !== null,
      between: async (waitMs) => {
        flush();
        if (auto && (await loadJitStep())) { m.setEngine("auto"); auto = false; }
        if (term === null) return;
        await term.wait(waitMs);
        const input = term.take();
        if (input.bytes.length) m.feedSerial(input.bytes);
        if (input.quit) return "quit";
      },
    });
  } catch (e) {
    flush();
    term?.close();
    if (e instanceof MachineError) {
      err(`vmrun: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    term?.close();
  }
  flush();
  const ended = result.exit.reason === "stopped" && (result.exit.detail === "quit" || result.exit.detail === "serial input done");
  if (opts.json) {
    const c = m.consoleBytes;
    if (c.length && c[c.length - 1] !== 10) out("\n");
    const rep = report(m, { ...opts, engine: opts.engine === "auto" ? "auto" : opts.engine }, result);
    delete rep.console;
    if (prompt !== null) rep.prompt = { text: prompt.text, instructions: prompt.instructions, wallMs: prompt.wallMs === null ? null : Math.round(prompt.wallMs) };
    out(JSON.stringify(rep) + "\n");
  } else if (!ended && result.exit.reason !== "hlt" && result.exit.reason !== "reset") {
    err(`\r\nvmrun: ${summary(result)}\n`);
  }
  if (ended || result.exit.reason === "hlt" || result.exit.reason === "reset") return 0;
  return result.exit.reason === "budget" ? 3 : 1;
}

/** The run under the GDB stub: until gdb kills the guest, or the guest ends with gdb gone or detached. */
async function runGdb(m: Machine, port: number, wait: boolean, auto: boolean): Promise<RunResult> {
  if (auto) {
    await loadJit();
    m.setEngine("auto");
  }
  const { GdbStub } = await import("../runtime/vmm/gdbstub.ts");
  const stub = new GdbStub(m, { wait, log: (line) => err(`vmrun: ${line}\n`) });
  let addr;
  try {
    addr = await stub.listen(port);
  } catch (e) {
    stub.close();
    throw new MachineError("argument", `Cannot listen for gdb on 127.0.0.1:${port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  err(`vmrun: gdb stub listening on ${addr.host}:${addr.port}${wait ? " (the guest waits for gdb)" : ""}\n`);
  return await stub.finished;
}

function summary(r: RunResult): string {
  const e = r.exit;
  switch (e.reason) {
    case "shutdown": {
      const names = e.vectors.map((v) => ["#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "", "#TS", "#NP", "#SS", "#GP", "#PF"][v] ?? `vector ${v}`);
      return `Guest shut down (triple fault after ${names.join(", ")}) at eip 0x${e.rip.toString(16)}, bytes ${e.bytes.map((b) => b.toString(16).padStart(2, "0")).join(" ")}`;
    }
    case "budget": return `Instruction budget ran out after ${r.instructions} instructions`;
    case "timeout": return `Wall-time limit reached after ${r.instructions} instructions`;
    case "mmio": return `Unhandled MMIO ${e.isWrite ? "write" : "read"} at guest-physical 0x${e.physAddr.toString(16)}`;
    default: return `Run ended: ${JSON.stringify(e)}`;
  }
}

/** The JSON report, as KVM_GET_REGS/KVM_GET_SREGS would show the state after the exit. */
export function report(m: Machine, opts: Options, r: RunResult): Record<string, unknown> {
  const regs = m.vcpu.getRegs();
  const sregs = m.vcpu.getSregs();
  const u32 = (v: number) => v % 2 ** 32;
  const exit: Record<string, unknown> = { ...r.exit };
  for (const k of Object.keys(exit)) if (exit[k] instanceof Uint8Array) exit[k] = [...(exit[k] as Uint8Array)];
  const memory: Record<string, string> = {};
  for (const [addr, len] of opts.dumps) {
    memory[`0x${addr.toString(16)}`] = [...m.vm.readGuest(addr, len)].map((b) => b.toString(16).padStart(2, "0")).join("");
  }
  // What the JIT compiled, as in the service's report (auto that ended before it needed binaryen: nothing).
  const jit = m.jitStats !== null || opts.engine === "auto" ? { jit: jitReport(m.jitStats) } : {};
  return {
    exit,
    regs: {
      eax: u32(regs.rax), ebx: u32(regs.rbx), ecx: u32(regs.rcx), edx: u32(regs.rdx), esi: u32(regs.rsi),
      edi: u32(regs.rdi), esp: u32(regs.rsp), ebp: u32(regs.rbp), eip: u32(regs.rip), eflags: regs.rflags,
      cs: sregs.cs.selector, ds: sregs.ds.selector, es: sregs.es.selector, fs: sregs.fs.selector,
      gs: sregs.gs.selector, ss: sregs.ss.selector,
    },
    instructions: r.instructions,
    exits: r.exits,
    userspaceExits: r.userspaceExits,
    ports: m.portCounts(),
    memory,
    console: m.console,
    engine: opts.engine === "lockstep" || opts.engine === "auto" ? opts.engine : m.engine,
    ...jit,
    wallMs: Math.round(r.wallMs * 1000) / 1000,
  };
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
}

/**
 * A GDB stub for a `Machine` (QEMU's `-s -S`): the GDB remote serial protocol over TCP, so that
 * `gdb` (`target remote :1234`) can stop, inspect and step the guest.
 *
 * - Registers: the i386 core set (`g`/`G`/`p`/`P`, described by `qXfer:features:read:target.xml`);
 *   the x87 registers are read from and written to the FPU area of the vCPU's state block.
 * - Memory (`m`/`M`/`X`): guest-virtual, through the guest's 32-bit page tables when CR0.PG is set
 *   (the walk is the debugger's: no accessed or dirty bits set, no fault raised; an unmapped page
 *   answers E14), guest-physical otherwise. Writes drop decoded and compiled code on the page.
 * - Breakpoints (`Z0`/`Z1`) never write guest memory: while any breakpoint or watchpoint is set, the
 *   processor's `onInsn` hook compares each instruction's EIP with them and stops the run before it
 *   (a #DB VM exit, KVM_EXIT_DEBUG). `onInsn` keeps the JIT out, so with breakpoints set the guest is
 *   interpreted, under every engine; with none, `continue` runs under the Machine's engine at full speed.
 * - Write watchpoints (`Z2`) compare the watched bytes before each instruction and after each run,
 *   and stop after the instruction that changed them (as a data breakpoint in DR7 does; a write of
 *   the value already there is not seen). Read and access watchpoints (`Z3`/`Z4`) are refused (empty
 *   reply), which GDB reports when they are inserted.
 * - Single step (`s`): one instruction, by an instruction budget of 1 (the VMX preemption timer).
 *   Continue (`c`) runs in slices of the budget so that a Ctrl-C (0x03) is seen between them.
 * - `?`, `k` (kill: the session ends), `D` (detach: the guest runs on, free), `qSupported`,
 *   `QStartNoAckMode`, the thread queries of a one-thread target.
 * - Stop replies: `T05` (breakpoint with `swbreak`, watchpoint with `watch:ADDR`, step), `T02`
 *   (Ctrl-C), `T0b` (the guest shut down or an exit nobody handles: its state stays inspectable),
 *   `W00` when the guest halts (HLT), its end.
 *
 * @example
 * ```ts ignore
 * import { Machine } from "./machine.ts";
 * import { GdbStub } from "./gdbstub.ts";
 *
 * const m = new Machine({ mode: "protected" });
 * m.load(Deno.readFileSync("tests/guests/gdb_demo.elf"));
 * const stub = new GdbStub(m, { wait: true });
 * const { port } = await stub.listen(1234); // then: gdb tests/guests/gdb_demo.elf -ex "target remote :1234"
 * const result = await stub.finished;       // the run, when gdb kills it or the guest ends
 * ```
 */
import { createServer, type Server, type Socket } from "node:net";
import { setImmediate } from "node:timers";
import type { Machine, RunExit, RunResult } from "./machine.ts";
import { MachineError } from "./machine.ts";
import { addSlice, dropSliceEnd, emptyRun } from "./run_slices.ts";
import { framePacket, fromHex, G_BYTES, hexLe32, I386_REGS, PacketReader, regOffset, targetXml, toHex } from "./gdb_protocol.ts";
import { debugStopBeforeInsn } from "../cpu/debug_stop.ts";
import * as stateMod from "../cpu/state.ts";

// Module-local bindings of the constant tables (DESIGN-NOTES.md, tests/v8_rules_test.ts).
const { Seg, St } = stateMod;

export interface GdbStubOptions {
  /** Hold the guest until GDB connects and resumes it (QEMU's -S); default false: it runs at once. */
  wait?: boolean;
  /** Instructions per slice of a continue (default 250,000): Ctrl-C is seen between slices. */
  slice?: number;
  /** Where protocol and session messages go (default: nowhere). */
  log?: (line: string) => void;
}

/** SIGTRAP, SIGINT and SIGSEGV, as GDB numbers signals. */
const SIGTRAP = 5, SIGINT = 2, SIGSEGV = 11;

interface Watch {
  addr: number;
  len: number;
  /** Guest-physical address of each byte (-1: unmapped), taken when the watchpoint was set. */
  gpas: number[];
  last: Uint8Array;
}

export class GdbStub {
  private server: Server | null = null;
  private conn: Socket | null = null;
  private readonly reader = new PacketReader();
  private noAck = false;
  private lastSent = "";
  private readonly breakpoints = new Set<number>();
  private readonly watches: Watch[] = [];
  private state: "stopped" | "running" | "ended" = "stopped";
  /** GDB waits for a stop reply (after c, s, or a Ctrl-C while running). */
  private replyPending = false;
  private interruptRequested = false;
  private detached = false;
  private lastStop = `S${hex2(SIGTRAP)}`;
  /** What the run loop noticed at its stop: a breakpoint, a watchpoint. */
  private hit: { kind: "break" } | { kind: "watch"; addr: number } | null = null;
  private readonly total: RunResult = emptyRun();
  private lastExit: RunExit = { reason: "stopped", detail: "not run" };
  private resolveFinished!: (r: RunResult) => void;
  private readonly log: (line: string) => void;
  private readonly slice: number;
  /** Resolves with the whole run's result when the session is over: GDB killed the guest, or the guest ended with no debugger attached (or after GDB detached or left). */
  readonly finished: Promise<RunResult>;

  constructor(readonly machine: Machine, opts: GdbStubOptions = {}) {
    this.log = opts.log ?? (() => {});
    this.slice = opts.slice ?? 250_000;
    this.finished = new Promise((r) => (this.resolveFinished = r));
    if (machine.vcpu.cpu.onInsn !== null) {
      throw new MachineError("conflict", "Cannot attach a GDB stub: the processor's onInsn hook is taken (by --trace insn or a script)");
    }
    if (!opts.wait) setImmediate(() => { if (this.state === "stopped" && this.conn === null) void this.resume(false); });
  }

  /**
   * Listen for GDB on `host:port` (default 127.0.0.1; port 0 picks a free one). One client at a time.
   * @returns the address listened on
   */
  listen(port: number, host = "127.0.0.1"): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const server = createServer((sock) => this.accept(sock));
      server.once("error", reject);
      server.listen(port, host, () => {
        this.server = server;
        const a = server.address();
        resolve({ host, port: typeof a === "object" && a !== null ? a.port : port });
      });
    });
  }

  /** Stop listening and drop the client; the guest keeps its state. */
  close(): void {
    this.conn?.destroy();
    this.conn = null;
    this.server?.close();
    this.server = null;
    this.setHooks(false);
  }

  private accept(sock: Socket): void {
    if (this.conn !== null) {
      this.log("gdb: a second client was refused");
      sock.destroy();
      return;
    }
    this.log(`gdb: client connected from ${sock.remoteAddress}:${sock.remotePort}`);
    this.conn = sock;
    this.noAck = false;
    this.detached = false;
    sock.setNoDelay(true);
    // QEMU stops the guest when GDB attaches; GDB then asks why with `?`.
    if (this.state === "running") this.interruptRequested = true;
    sock.on("data", (d: Uint8Array) => {
      for (const input of this.reader.push(d)) this.onInput(input);
    });
    sock.on("error", (e) => this.log(`gdb: connection error: ${e.message}`));
    sock.on("close", () => {
      if (this.conn !== sock) return;
      this.conn = null;
      this.log("gdb: client disconnected");
      // As QEMU does, a client that leaves without `k` lets the guest run on.
      this.detach();
    });
  }

  private onInput(input: ReturnType<PacketReader["push"]>[number]): void {
    switch (input.kind) {
      case "ack":
        if (!input.ok && this.lastSent) this.write(this.lastSent);
        return;
      case "bad":
        if (!this.noAck) this.write("-");
        return;
      case "interrupt":
        if (this.state === "running") this.interruptRequested = true;
        return;
      case "packet":
        if (!this.noAck) this.write("+");
        this.handle(input.data);
    }
  }

  private write(s: string): void {
    this.conn?.write(s);
  }
  private reply(data: string): void {
    const p = framePacket(data);
    this.lastSent = p;
    this.write(p);
  }

  // -------------------------------------------------------------------------------------------
  // Packets
  // -------------------------------------------------------------------------------------------
  private handle(p: string): void {
    if (this.state === "running") {
      // Only a stop may be asked for while the guest runs (non-stop mode is not offered).
      this.log(`gdb: packet while running ignored: ${p.slice(0, 40)}`);
      return;
    }
    const c = p[0];
    try {
      switch (c) {
        case "?": return this.reply(this.lastStop);
        case "g": return this.reply(this.readAllRegs());
        case "G": return this.reply(this.writeAllRegs(p.slice(1)));
        case "p": return this.reply(this.readReg(parseInt(p.slice(1), 16)));
        case "P": {
          const [n, v] = p.slice(1).split("=");
          return this.reply(this.writeReg(parseInt(n, 16), v ?? ""));
        }
        case "m": return this.reply(this.readMem(p.slice(1)));
        case "M": return this.reply(this.writeMem(p.slice(1), false));
        case "X": return this.reply(this.writeMem(p.slice(1), true));
        case "Z": case "z": return this.reply(this.breakpoint(c === "Z", p.slice(1)));
        case "c": case "C": case "s": case "S": return this.resumeCmd(c === "s" || c === "S", p.slice(1));
        case "k": return this.kill();
        case "D": this.reply("OK"); return this.detach();
        case "H": return this.reply("OK");
        case "T": return this.reply("OK");
        case "q": case "Q": return this.reply(this.query(p));
        case "v":
          if (p.startsWith("vKill")) { this.reply("OK"); return this.kill(); }
          return this.reply("");
        default: return this.reply("");
      }
    } catch (e) {
      this.log(`gdb: ${p.slice(0, 40)} failed: ${e instanceof Error ? e.message : String(e)}`);
      this.reply("E01");
    }
  }

  private query(p: string): string {
    if (p.startsWith("qSupported")) {
      return "PacketSize=4000;qXfer:features:read+;swbreak+;hwbreak+;QStartNoAckMode+";
    }
    if (p === "QStartNoAckMode") {
      // Acknowledged with this packet's own `+`; from the next one on, no acks.
      setImmediate(() => (this.noAck = true));
      return "OK";
    }
    if (p.startsWith("qXfer:features:read:")) {
      const m = /^qXfer:features:read:([^:]+):([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(p);
      if (!m) return "E00";
      if (m[1] !== "target.xml") return "E00";
      const xml = targetXml();
      const off = parseInt(m[2], 16), len = parseInt(m[3], 16);
      const part = xml.slice(off, off + len);
      return (off + len >= xml.length ? "l" : "m") + part;
    }
    if (p === "qC") return "QC1";
    if (p === "qfThreadInfo") return "m1";
    if (p === "qsThreadInfo") return "l";
    if (p === "qAttached") return "1";
    if (p.startsWith("qThreadExtraInfo")) return toHex(new TextEncoder().encode("vCPU 0"));
    return "";
  }

  // -------------------------------------------------------------------------------------------
  // Registers
  // -------------------------------------------------------------------------------------------
  private fpuView(): DataView {
    const cpu = this.machine.vcpu.cpu;
    return new DataView(this.machine.vm.memory.buffer, cpu.area, 0x1000);
  }
  /** Register `n`'s bytes, little-endian. */
  private regBytes(n: number): Uint8Array {
    const vcpu = this.machine.vcpu, cpu = vcpu.cpu, st = cpu.st;
    if (n < 8) return le32(st[n * 2]);
    if (n === 8) return le32(st[St.RIP]);
    if (n === 9) return le32(cpu.getFlags());
    if (n < 16) return le32(cpu.getSegSel([Seg.CS, Seg.SS, Seg.DS, Seg.ES, Seg.FS, Seg.GS][n - 10]));
    const f = this.fpuView();
    if (n < 24) {
      // st(i) is physical register (TOP + i) mod 8 (the FPU area's layout: DESIGN shared decisions).
      const top = (f.getUint16(0x402, true) >> 11) & 7;
      const phys = (top + n - 16) & 7;
      return new Uint8Array(f.buffer, f.byteOffset + 0x420 + 16 * phys, 10).slice();
    }
    const u16 = (o: number) => le32(f.getUint16(o, true));
    switch (n) {
      case 24: return u16(0x400); // fctrl
      case 25: return u16(0x402); // fstat
      case 26: return u16(0x404); // ftag
      case 27: return u16(0x40c); // fiseg
      case 28: return le32(f.getUint32(0x408, true)); // fioff
      case 29: return u16(0x414); // foseg
      case 30: return le32(f.getUint32(0x410, true)); // fooff
      case 31: return u16(0x406); // fop
    }
    throw new RangeError(`No register ${n}`);
  }
  private setRegBytes(n: number, b: Uint8Array): void {
    const vcpu = this.machine.vcpu;
    const v = (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
    const gpr = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"] as const;
    if (n < 8) return vcpu.setRegs({ [gpr[n]]: v });
    if (n === 8) return vcpu.setRegs({ rip: v });
    if (n === 9) return vcpu.setRegs({ rflags: v });
    if (n < 16) {
      const key = (["cs", "ss", "ds", "es", "fs", "gs"] as const)[n - 10];
      const s = vcpu.getSregs();
      if (s[key].selector === (v & 0xffff)) return;
      if (s.cr0 & 1) throw new RangeError(`Cannot load ${key} in protected mode from the debugger (it needs a descriptor)`);
      s[key].selector = v & 0xffff;
      s[key].base = (v & 0xffff) << 4;
      return vcpu.setSregs(s);
    }
    const f = this.fpuView();
    if (n < 24) {
      const top = (f.getUint16(0x402, true) >> 11) & 7;
      new Uint8Array(f.buffer, f.byteOffset + 0x420 + 16 * ((top + n - 16) & 7), 10).set(b.subarray(0, 10));
      return;
    }
    const off = [0x400, 0x402, 0x404, 0x40c, 0x408, 0x414, 0x410, 0x406][n - 24];
    if (n === 28 || n === 30) f.setUint32(off, v, true);
    else f.setUint16(off, v & 0xffff, true);
  }
  private readAllRegs(): string {
    let s = "";
    for (let n = 0; n < I386_REGS.length; n++) s += toHex(this.regBytes(n));
    return s;
  }
  private writeAllRegs(hex: string): string {
    const b = fromHex(hex);
    if (b === null || b.length < G_BYTES) return "E01";
    for (let n = 0; n < I386_REGS.length; n++) {
      const off = regOffset(n), len = I386_REGS[n].bits / 8;
      const cur = this.regBytes(n), next = b.subarray(off, off + len);
      if (toHex(cur) !== toHex(next)) this.setRegBytes(n, next);
    }
    return "OK";
  }
  private readReg(n: number): string {
    if (!(n >= 0 && n < I386_REGS.length)) return "E01";
    return toHex(this.regBytes(n));
  }
  private writeReg(n: number, hex: string): string {
    const b = fromHex(hex);
    if (!(n >= 0 && n < I386_REGS.length) || b === null || b.length !== I386_REGS[n].bits / 8) return "E01";
    this.setRegBytes(n, b);
    return "OK";
  }

  // -------------------------------------------------------------------------------------------
  // Memory: guest-virtual, through the guest's page tables
  // -------------------------------------------------------------------------------------------
  /**
   * The guest-physical address of linear address `la` (32-bit paging, 4 KiB and 4 MiB pages, SDM
   * 4.3), or -1 when it is not mapped. A debugger's walk: permissions are not checked, accessed and
   * dirty bits are not set.
   */
  linearToPhysical(la: number): number {
    const st = this.machine.vcpu.cpu.st;
    la >>>= 0;
    if ((st[St.CR0] & 0x80000000) === 0) return la;
    const vm = this.machine.vm;
    const rd = (gpa: number) => {
      const b = vm.readGuest(gpa, 4);
      return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
    };
    const pde = rd(((st[St.CR3] & ~0xfff) + ((la >>> 22) << 2)) >>> 0);
    if ((pde & 1) === 0) return -1;
    if ((pde & 0x80) !== 0 && (st[St.CR4] & 0x10) !== 0) return ((pde & 0xffc00000) | (la & 0x3fffff)) >>> 0;
    const pte = rd(((pde & ~0xfff) + (((la >>> 12) & 0x3ff) << 2)) >>> 0);
    if ((pte & 1) === 0) return -1;
    return ((pte & ~0xfff) | (la & 0xfff)) >>> 0;
  }
  /** Read `len` bytes at guest-virtual `addr`; null when a page is not mapped or has no RAM. */
  readVirtual(addr: number, len: number): Uint8Array | null {
    const out = new Uint8Array(len);
    const vm = this.machine.vm;
    for (let k = 0; k < len;) {
      const la = (addr + k) >>> 0;
      const gpa = this.linearToPhysical(la);
      const chunk = Math.min(len - k, 0x1000 - (la & 0xfff));
      if (gpa < 0 || vm.gpaToHost(gpa) < 0) return k === 0 ? null : out.subarray(0, k);
      out.set(vm.readGuest(gpa, chunk), k);
      k += chunk;
    }
    return out;
  }
  /** Write bytes at guest-virtual `addr`; false when a page is not mapped or has no RAM. */
  writeVirtual(addr: number, data: Uint8Array): boolean {
    const vm = this.machine.vm;
    const parts: [number, Uint8Array][] = [];
    for (let k = 0; k < data.length;) {
      const la = (addr + k) >>> 0;
      const gpa = this.linearToPhysical(la);
      const chunk = Math.min(data.length - k, 0x1000 - (la & 0xfff));
      if (gpa < 0 || vm.gpaToHost(gpa) < 0) return false;
      parts.push([gpa, data.subarray(k, k + chunk)]);
      k += chunk;
    }
    for (const [gpa, d] of parts) vm.writeGuest(gpa, d); // drops decoded and compiled code there
    return true;
  }
  private readMem(args: string): string {
    const m = /^([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(args);
    if (!m) return "E01";
    const len = Math.min(parseInt(m[2], 16), 0x1000);
    const b = this.readVirtual(parseInt(m[1], 16), len);
    return b === null ? "E14" : toHex(b);
  }
  private writeMem(args: string, binary: boolean): string {
    const m = /^([0-9a-fA-F]+),([0-9a-fA-F]+):([\s\S]*)$/.exec(args);
    if (!m) return "E01";
    const len = parseInt(m[2], 16);
    const data = binary ? Uint8Array.from(m[3], (ch) => ch.charCodeAt(0)) : fromHex(m[3]);
    if (data === null || data.length !== len) return "E01";
    if (!this.writeVirtual(parseInt(m[1], 16), data)) return "E14";
    for (const w of this.watches) w.last = this.watchBytes(w); // a debugger's write is not the guest's
    return "OK";
  }

  // -------------------------------------------------------------------------------------------
  // Breakpoints and watchpoints
  // -------------------------------------------------------------------------------------------
  private breakpoint(insert: boolean, args: string): string {
    const m = /^([0-4]),([0-9a-fA-F]+),([0-9a-fA-F]+)/.exec(args);
    if (!m) return "E01";
    const type = Number(m[1]), addr = parseInt(m[2], 16) >>> 0, len = parseInt(m[3], 16);
    if (type === 0 || type === 1) {
      if (insert) this.breakpoints.add(addr);
      else this.breakpoints.delete(addr);
      return "OK";
    }
    if (type !== 2) return ""; // read and access watchpoints: not offered
    if (!(len >= 1 && len <= 4096)) return "E01";
    if (insert) {
      const gpas: number[] = [];
      for (let k = 0; k < len; k++) gpas.push(this.linearToPhysical((addr + k) >>> 0));
      const w: Watch = { addr, len, gpas, last: new Uint8Array(0) };
      w.last = this.watchBytes(w);
      this.watches.push(w);
    } else {
      const i = this.watches.findIndex((w) => w.addr === addr && w.len === len);
      if (i >= 0) this.watches.splice(i, 1);
    }
    return "OK";
  }
  private watchBytes(w: Watch): Uint8Array {
    const vm = this.machine.vm;
    const out = new Uint8Array(w.len);
    for (let k = 0; k < w.len; k++) out[k] = w.gpas[k] < 0 ? 0 : vm.readGuest(w.gpas[k], 1)[0];
    return out;
  }
  /** The first watchpoint whose bytes changed since last seen (its new bytes become the baseline). */
  private changedWatch(): Watch | null {
    for (const w of this.watches) {
      const now = this.watchBytes(w);
      for (let k = 0; k < now.length; k++) {
        if (now[k] !== w.last[k]) {
          w.last = now;
          return w;
        }
      }
    }
    return null;
  }

  /** Install (or remove) the per-instruction check; `skipFirst` lets the run leave a breakpoint it stands on. */
  private setHooks(on: boolean, skipFirst = -1): void {
    const cpu = this.machine.vcpu.cpu;
    if (!on || (this.breakpoints.size === 0 && this.watches.length === 0)) {
      if (cpu.onInsn !== null && this.hooked) cpu.onInsn = null;
      this.hooked = false;
      return;
    }
    const bps = this.breakpoints;
    const watching = this.watches.length !== 0;
    let skip = skipFirst;
    this.hooked = true;
    cpu.onInsn = (c, _ins, eip) => {
      if (watching) {
        const w = this.changedWatch();
        if (w !== null) {
          this.hit = { kind: "watch", addr: w.addr };
          debugStopBeforeInsn(c);
        }
      }
      if (skip >= 0) {
        const s = skip;
        skip = -1;
        if (s === eip >>> 0) return;
      }
      if (bps.has(eip >>> 0)) {
        this.hit = { kind: "break" };
        debugStopBeforeInsn(c);
      }
    };
  }
  private hooked = false;

  // -------------------------------------------------------------------------------------------
  // Run control
  // -------------------------------------------------------------------------------------------
  private resumeCmd(step: boolean, args: string): void {
    if (this.state === "ended") return this.reply(this.lastStop);
    // `c ADDR` / `s ADDR` resume at ADDR; `C sig;ADDR` carries a signal, which a bare machine has no use for.
    const addr = args.includes(";") ? args.split(";")[1] : args[0] === undefined || step || !/^[0-9a-fA-F]+$/.test(args) ? "" : args;
    if (addr) this.machine.vcpu.setRegs({ rip: parseInt(addr, 16) });
    this.replyPending = true;
    void this.resume(step);
  }

  private async resume(step: boolean): Promise<void> {
    const m = this.machine;
    this.state = "running";
    this.interruptRequested = false;
    this.hit = null;
    let stop: string | null = null;
    try {
      if (step) {
        // One instruction, interpreted: onInsn set keeps the JIT from compiling a region for it.
        const cpu = m.vcpu.cpu;
        cpu.onInsn = stepHook;
        let r: RunResult;
        try {
          r = m.run({ budget: 1 });
        } finally {
          cpu.onInsn = null;
        }
        stop = this.afterRun(r, true);
      } else {
        this.setHooks(!this.detached, m.vcpu.cpu.st[St.RIP] >>> 0);
        for (;;) {
          const r = m.run({ budget: this.slice });
          stop = this.afterRun(r, false);
          if (stop !== null) break;
          if (this.interruptRequested) { stop = `T${hex2(SIGINT)}thread:01;`; break; }
          await new Promise((r) => setImmediate(r));
          if (this.interruptRequested) { stop = `T${hex2(SIGINT)}thread:01;`; break; }
        }
      }
    } catch (e) {
      // A hook threw (MachineError): the guest stops where it was, inspectable.
      this.log(`gdb: the run stopped: ${e instanceof Error ? e.message : String(e)}`);
      this.lastExit = { reason: "stopped", detail: e instanceof Error ? e.message : String(e) };
      stop = `T${hex2(SIGSEGV)}thread:01;`;
    } finally {
      this.setHooks(false);
    }
    this.stopped(stop!);
  }

  /** Fold a slice into the total; the stop reply when the run must stop, null to go on. */
  private afterRun(r: RunResult, step: boolean): string | null {
    addSlice(this.total, r);
    const e = r.exit;
    this.lastExit = e;
    const watchHit = this.hit?.kind === "watch" ? this.hit : null;
    if (e.reason === "debug" && this.hit !== null) {
      if (watchHit) return `T${hex2(SIGTRAP)}watch:${watchHit.addr.toString(16)};thread:01;`;
      return `T${hex2(SIGTRAP)}swbreak:;thread:01;`;
    }
    // A watched write by the last instruction before the run ended (or by the step).
    const w = this.watches.length !== 0 ? this.changedWatch() : null;
    if (w !== null) {
      if (e.reason === "budget") dropSliceEnd(this.total);
      return `T${hex2(SIGTRAP)}watch:${w.addr.toString(16)};thread:01;`;
    }
    switch (e.reason) {
      case "budget":
        if (step) { dropSliceEnd(this.total); return `T${hex2(SIGTRAP)}thread:01;`; }
        dropSliceEnd(this.total);
        return null;
      case "hlt":
        return "W00";
      case "stopped":
        return `T${hex2(SIGTRAP)}thread:01;`;
      default:
        this.log(`gdb: the guest stopped: ${JSON.stringify(e, (_k, v) => v instanceof Uint8Array ? [...v] : v)}`);
        return `T${hex2(SIGSEGV)}thread:01;`;
    }
  }

  private stopped(reply: string): void {
    this.lastStop = reply;
    this.state = reply.startsWith("W") ? "ended" : "stopped";
    if (this.conn !== null && !this.detached) {
      // GDB gets the stop reply it waits for (after c or s); one that attached while the guest ran
      // asks for it with `?`.
      if (this.replyPending) this.reply(reply);
      this.replyPending = false;
      return;
    }
    // Nobody attached (never, or GDB detached or left): the run ended, and so does the session.
    this.finish();
  }

  private kill(): void {
    this.lastExit = { reason: "stopped", detail: "killed by gdb" };
    this.state = "ended";
    this.conn?.end();
    this.finish();
  }

  private detach(): void {
    if (this.finishedDone) return;
    this.detached = true;
    this.breakpoints.clear();
    this.watches.length = 0;
    this.setHooks(false);
    if (this.state === "stopped") {
      const e = this.lastExit;
      // A guest stopped by a breakpoint, a step or Ctrl-C runs on; one that ended stays ended.
      if (e.reason === "debug" || e.reason === "budget" || e.reason === "stopped" && e.detail === "not run") void this.resume(false);
      else this.finish();
    } else if (this.state === "ended") {
      this.finish();
    }
    // Running: the loop sees `detached` when it stops and finishes then.
  }

  private finishedDone = false;
  private finish(): void {
    if (this.finishedDone) return;
    this.finishedDone = true;
    this.total.exit = this.lastExit;
    this.close();
    this.resolveFinished(this.total);
  }
}

function stepHook(): void {}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}
function le32(v: number): Uint8Array {
  return new Uint8Array([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff]);
}

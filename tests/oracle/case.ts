/**
 * The host-CPU oracle's test case and its two runners: the host processor (the committed
 * tests/oracle/harness.elf, built from harness.c, runs each case natively in 32-bit mode) and
 * vmxlab (a flat protected-mode Machine with the data and the code at the same addresses).
 * Nothing here shares code with the processor: vmxlab is driven only through Machine, its KVM
 * register calls and the state block's documented x87/SSE offsets.
 */
import { spawnSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Machine } from "../../runtime/vmm/machine.ts";
import type { EngineName } from "../../runtime/vmm/engines.ts";
import { VmcsField } from "../../runtime/cpu/vmcs.ts";

/** Where the case's data page sits (the same linear address natively and in the guest). */
export const DATA_ADDR = 0x00200000;
export const DATA_SIZE = 4096;
/** Where the case's code is placed. */
export const CODE_ADDR = 0x00300000;
export const CODE_MAX = 8192 - 16;
/** The FXSAVE image's size (SDM Vol. 1 10.5.1, Table 10-2). */
export const FX_SIZE = 512;
/** GPR order in a case and a result: EAX ECX EDX EBX ESP EBP ESI EDI (the ModRM order). */
export const GPR_NAMES = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"] as const;

/** One test case: the initial state and the code. */
export interface OracleCase {
  gpr: number[];
  eflags: number;
  /** FXSAVE image of the initial x87/SSE state (FCW, FSW, abridged FTW, ST0-7, XMM0-7, MXCSR). */
  fx: Uint8Array;
  data: Uint8Array;
  code: Uint8Array;
}

/** The state a case leaves (or had at its fault). */
export interface OracleResult {
  /** null when the code ran to its end; otherwise the exception vector it raised. */
  fault: number | null;
  /** The error code pushed with the fault (0 when none). */
  errorCode: number;
  eip: number;
  gpr: number[];
  eflags: number;
  fx: Uint8Array;
  data: Uint8Array;
  /** Set when vmxlab could not run the case at all (a host error, an unexpected exit). */
  note?: string;
}

/** The default FXSAVE image: FNINIT's state (FCW 0x037F, all tags empty), MXCSR 0x1F80. */
export function defaultFx(): Uint8Array {
  const fx = new Uint8Array(FX_SIZE);
  const dv = new DataView(fx.buffer);
  dv.setUint16(0, 0x037f, true);
  dv.setUint32(24, 0x1f80, true);
  dv.setUint32(28, 0xffff, true);
  return fx;
}

export const HARNESS_PATH = fileURLToPath(new URL("./harness.elf", import.meta.url));
const CASE_MAGIC = 0x45534143, RESULT_MAGIC = 0x544c5352;
const RESULT_BYTES = 4 * 6 + 32 + 4 + FX_SIZE + DATA_SIZE;
/** Linux's signal for SIGALRM (the harness's per-case time limit); reported as vector -1. */
const TIMEOUT_VECTOR = 0xffffffff;

/**
 * Whether the harness runs here: an x86 Linux host that executes 32-bit binaries (a kernel built
 * without IA-32 emulation, or another OS, cannot). Returns the reason when it does not.
 */
export function harnessUnavailable(): string | null {
  if (process.platform !== "linux" || !["x64", "ia32"].includes(process.arch)) return `the harness runs natively: it needs x86 Linux (this is ${process.platform}/${process.arch})`;
  const r = spawnSync(HARNESS_PATH, ["/dev/null"]);
  if (r.error || r.status !== 0) return `the 32-bit harness does not run on this host: ${r.error?.message ?? `status ${r.status} ${r.stderr?.toString().trim()}`}`;
  return null;
}

/** Run cases on the host processor through the committed harness. */
export function runNative(cases: OracleCase[]): OracleResult[] {
  const parts: Uint8Array[] = [];
  for (const c of cases) {
    if (c.code.length > CODE_MAX) throw new RangeError(`Case code is too long: ${c.code.length} bytes (at most ${CODE_MAX})`);
    const head = new DataView(new ArrayBuffer(4 + 32 + 4));
    head.setUint32(0, CASE_MAGIC, true);
    c.gpr.forEach((v, k) => head.setUint32(4 + 4 * k, v >>> 0, true));
    head.setUint32(36, c.eflags >>> 0, true);
    const len = new DataView(new ArrayBuffer(4));
    len.setUint32(0, c.code.length, true);
    parts.push(new Uint8Array(head.buffer), c.fx, c.data, new Uint8Array(len.buffer), c.code);
  }
  const input = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { input.set(p, at); at += p.length; }
  // The cases go through a file: a runtime that writes all of a child's stdin before reading its
  // stdout (Deno's spawnSync) would deadlock with the harness once both pipes fill.
  const dir = mkdtempSync(join(tmpdir(), "vmxlab-oracle-"));
  const path = join(dir, "cases.bin");
  let r;
  try {
    writeFileSync(path, input);
    r = spawnSync(HARNESS_PATH, [path], { maxBuffer: 1 << 30 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (r.error) throw new Error(`Cannot run the oracle harness ${HARNESS_PATH}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`The oracle harness failed (status ${r.status}): ${r.stderr?.toString()}`);
  const out = new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.length);
  if (out.length !== RESULT_BYTES * cases.length) throw new Error(`The oracle harness returned ${out.length} bytes for ${cases.length} cases`);
  const results: OracleResult[] = [];
  for (let k = 0; k < cases.length; k++) {
    const o = k * RESULT_BYTES;
    const dv = new DataView(out.buffer, out.byteOffset + o, RESULT_BYTES);
    if (dv.getUint32(0, true) !== RESULT_MAGIC) throw new Error(`The oracle harness's result ${k} has a bad magic`);
    const sig = dv.getUint32(4, true), vec = dv.getUint32(8, true);
    results.push({
      fault: sig === 0 ? null : vec === TIMEOUT_VECTOR ? -1 : vec,
      errorCode: sig === 0 ? 0 : dv.getUint32(12, true),
      eip: dv.getUint32(20, true),
      gpr: Array.from({ length: 8 }, (_, i) => dv.getUint32(24 + 4 * i, true)),
      eflags: dv.getUint32(56, true),
      fx: out.slice(o + 60, o + 60 + FX_SIZE),
      data: out.slice(o + 60 + FX_SIZE, o + RESULT_BYTES),
    });
  }
  return results;
}

// --- vmxlab ---------------------------------------------------------------------------------

/**
 * Byte offsets in the vCPU state block of the x87 and SSE state (the layout agreed in the team's
 * brief: FCW 0x400, FSW 0x402, full 2-bit FTW per physical register 0x404, FOP 0x406, FIP 0x408,
 * FCS 0x40C, FDP 0x410, FDS 0x414, physical R0-R7 at 0x420 + 16*i, MXCSR 0x4A0, XMMi 0x500 + 16*i).
 */
const FPU = { FCW: 0x400, FSW: 0x402, FTW: 0x404, FOP: 0x406, FIP: 0x408, FCS: 0x40c, FDP: 0x410, FDS: 0x414, R: 0x420, MXCSR: 0x4a0, XMM: 0x500 } as const;

/** The full tag of an 80-bit register's contents (SDM Vol. 1 8.1.7: 0 valid, 1 zero, 2 special). */
function fullTag(b: Uint8Array, o: number): number {
  const se = b[o + 8] | (b[o + 9] << 8), exp = se & 0x7fff;
  let mantZero = true;
  for (let k = 0; k < 8; k++) if (b[o + k] !== 0) mantZero = false;
  const jbit = (b[o + 7] & 0x80) !== 0;
  if (exp === 0x7fff) return 2;
  if (exp === 0) return mantZero ? 1 : 2;
  return jbit ? 0 : 2;
}

/** Write an FXSAVE image into the state block (ST(i) of the image is physical R((TOP+i) mod 8)). */
function fxToState(fx: Uint8Array, st: Uint8Array): void {
  const f = new DataView(fx.buffer, fx.byteOffset, FX_SIZE), s = new DataView(st.buffer, st.byteOffset, st.length);
  const fsw = f.getUint16(2, true), top = (fsw >> 11) & 7, abridged = fx[4];
  s.setUint16(FPU.FCW, f.getUint16(0, true), true);
  s.setUint16(FPU.FSW, fsw, true);
  s.setUint16(FPU.FOP, f.getUint16(6, true), true);
  s.setUint32(FPU.FIP, f.getUint32(8, true), true);
  s.setUint16(FPU.FCS, f.getUint16(12, true), true);
  s.setUint32(FPU.FDP, f.getUint32(16, true), true);
  s.setUint16(FPU.FDS, f.getUint16(20, true), true);
  s.setUint32(FPU.MXCSR, f.getUint32(24, true), true);
  let ftw = 0;
  for (let i = 0; i < 8; i++) {
    const phys = (top + i) & 7;
    st.set(fx.subarray(32 + 16 * i, 32 + 16 * i + 10), FPU.R + 16 * phys);
    // FXRSTOR recomputes the full tags from the register contents (SDM Vol. 1 10.5.1.1).
    const tag = abridged & (1 << phys) ? fullTag(fx, 32 + 16 * i) : 3;
    ftw |= tag << (2 * phys);
  }
  s.setUint16(FPU.FTW, ftw, true);
  st.set(fx.subarray(160, 160 + 128), FPU.XMM);
}

/** Read the state block's x87 and SSE state as an FXSAVE image (32-bit format). */
function stateToFx(st: Uint8Array): Uint8Array {
  const fx = defaultFx();
  const f = new DataView(fx.buffer), s = new DataView(st.buffer, st.byteOffset, st.length);
  const fsw = s.getUint16(FPU.FSW, true), top = (fsw >> 11) & 7, ftw = s.getUint16(FPU.FTW, true);
  f.setUint16(0, s.getUint16(FPU.FCW, true), true);
  f.setUint16(2, fsw, true);
  let abridged = 0;
  for (let p = 0; p < 8; p++) if (((ftw >> (2 * p)) & 3) !== 3) abridged |= 1 << p;
  fx[4] = abridged;
  f.setUint16(6, s.getUint16(FPU.FOP, true), true);
  f.setUint32(8, s.getUint32(FPU.FIP, true), true);
  f.setUint16(12, s.getUint16(FPU.FCS, true), true);
  f.setUint32(16, s.getUint32(FPU.FDP, true), true);
  f.setUint16(20, s.getUint16(FPU.FDS, true), true);
  f.setUint32(24, s.getUint32(FPU.MXCSR, true), true);
  for (let i = 0; i < 8; i++) fx.set(st.subarray(FPU.R + 16 * ((top + i) & 7), FPU.R + 16 * ((top + i) & 7) + 10), 32 + 16 * i);
  fx.set(st.subarray(FPU.XMM, FPU.XMM + 128), 160);
  return fx;
}

/** A vmxlab machine that runs oracle cases one after another (reset between them). */
export class VmxRunner {
  readonly m: Machine;
  constructor(readonly engine: EngineName) {
    this.m = new Machine({
      mode: "protected", memSize: 4 << 20, irqchip: false, reusable: true, engine,
      devices: { debugcon: false, post: false, serial: false },
    });
  }

  /** Run one case; code gets a HLT appended (the native harness appends a jump back instead). */
  run(c: OracleCase): OracleResult {
    const m = this.m;
    m.reset();
    const code = new Uint8Array(c.code.length + 1);
    code.set(c.code);
    code[c.code.length] = 0xf4;
    m.vm.writeGuest(DATA_ADDR, c.data);
    m.load(code, { format: "raw", loadAddr: CODE_ADDR });
    // The native code runs under Linux's CR0 (PE MP ET NE) and CR4.OSFXSR/OSXMMEXCPT.
    const s = m.vcpu.getSregs();
    s.cr0 = (s.cr0 | 0x22) >>> 0;
    s.cr4 = (s.cr4 | 0x600) >>> 0;
    m.vcpu.setSregs(s);
    const r: Record<string, number> = { rip: CODE_ADDR, rflags: c.eflags };
    GPR_NAMES.forEach((n, k) => { r["r" + n.slice(1)] = c.gpr[k] >>> 0; });
    m.vcpu.setRegs(r);
    // Every exception exits to userspace (KVM_EXIT_EXCEPTION) with the state at the faulting
    // instruction, as the native fault reaches the harness as a signal before any delivery.
    m.vcpu.vmcsWrite(VmcsField.EXCEPTION_BITMAP, 0xffffffff);
    const cpuSt = m.vcpu.cpu.st;
    const stBytes = new Uint8Array(cpuSt.buffer, cpuSt.byteOffset, cpuSt.byteLength);
    fxToState(c.fx, stBytes);
    let note: string | undefined;
    let fault: number | null = null, errorCode = 0, trapLen = 0;
    try {
      const res = m.run({ budget: 100_000 });
      const e = res.exit;
      if (e.reason === "exception") { fault = e.exception; errorCode = e.errorCode; }
      else if (e.reason === "debug") fault = e.exception;
      else if (e.reason === "shutdown") note = `triple fault (vectors ${e.vectors.join(", ")})`;
      else if (e.reason !== "hlt") note = `run ended with exit ${JSON.stringify(e)}`;
      // A VM exit for a software exception (INT3, INTO) saves the RIP of the instruction itself
      // (SDM Vol. 3C 27.1); delivered natively, these traps leave EIP after it. The generator
      // emits them unprefixed (one byte).
      if (fault === 3 || fault === 4) trapLen = 1;
    } catch (err) {
      note = `host exception: ${err instanceof Error ? err.message : String(err)}`;
    }
    const regs = m.vcpu.getRegs() as unknown as Record<string, number>;
    let eip = regs.rip >>> 0;
    if (fault === null && note === undefined) eip = (eip - 1) >>> 0; // the HLT has retired
    eip = (eip + trapLen) >>> 0;
    return {
      fault, errorCode, eip,
      gpr: GPR_NAMES.map((n) => regs["r" + n.slice(1)] >>> 0),
      eflags: regs.rflags >>> 0,
      fx: stateToFx(stBytes),
      data: m.vm.readGuest(DATA_ADDR, DATA_SIZE).slice(),
      note,
    };
  }
}

/**
 * The host-CPU vectors of tests/sse_oracle (oracle.c ran each instruction natively, build.sh wrote
 * vectors.txt) and a runner that executes the same instruction bytes under vmxlab: all vectors in
 * one guest, each in the body oracle.c describes, with ESI pointing at its 96-byte record.
 */
import { readFileSync } from "node:fs";
import { CpuHarness } from "../cpu_harness.ts";

export interface SseVector {
  /** Line number in vectors.txt (1-based). */
  line: number;
  insn: number[];
  mxcsr: number;
  eax: number;
  a: Uint8Array;
  b: Uint8Array;
  /** What the host produced. */
  xmm0: string;
  mm0: string;
  mxcsrOut: number;
  eflags: number;
  eaxOut: number;
  /** Exception vectors (exceptions.txt): the instruction took #XM. */
  faulted?: boolean;
}

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((x) => parseInt(x, 16)));
const toHex = (b: ArrayLike<number>) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

export function loadVectors(path = new URL("./vectors.txt", import.meta.url)): SseVector[] {
  return readFileSync(path, "utf8").trim().split("\n").map((l, k) => {
    const f = l.split(" ");
    return {
      line: k + 1, insn: Array.from(hex(f[0])), mxcsr: parseInt(f[1], 16), eax: parseInt(f[2], 16) >>> 0,
      a: hex(f[3]), b: hex(f[4]), xmm0: f[5], mm0: f[6], mxcsrOut: parseInt(f[7], 16), eflags: parseInt(f[8], 16),
      eaxOut: parseInt(f[9], 16) >>> 0, faulted: f.length > 10 ? f[10] === "1" : undefined,
    };
  });
}

// The body around each instruction (oracle.c's header lists it instruction by instruction).
const PRE = [0x0f, 0xae, 0x16, 0x8b, 0x46, 0x04, 0x0f, 0x10, 0x46, 0x10, 0x0f, 0x10, 0x4e, 0x20,
  0x0f, 0x6f, 0x46, 0x10, 0x0f, 0x6f, 0x4e, 0x20, 0x6a, 0x02, 0x9d];
const POST = [0x0f, 0x11, 0x46, 0x30, 0x0f, 0x7f, 0x46, 0x40, 0x0f, 0xae, 0x5e, 0x48,
  0x9c, 0x8f, 0x46, 0x4c, 0x89, 0x46, 0x50];
/** mov eax, cr4; or eax, OSFXSR | OSXMMEXCPT; mov cr4, eax */
const ENABLE_SSE = [0x0f, 0x20, 0xe0, 0x0d, 0x00, 0x06, 0x00, 0x00, 0x0f, 0x22, 0xe0];
/** EFLAGS bits the instructions define: OF SF ZF AF PF CF. */
const ARITH = 0x8d5;
const CODE = 0x1000, DATA = 0x400000, REC = 96;

export interface Mismatch {
  line: number;
  insn: string;
  field: string;
  want: string;
  got: string;
  inputs: string;
}

/**
 * Run the vectors in one guest on `h` (a protected-mode harness, its engine already chosen).
 * @returns every field that differs from the host's result
 */
export function runVectors(h: CpuHarness, vs: SseVector[]): Mismatch[] {
  const code: number[] = [...ENABLE_SSE];
  vs.forEach((v, k) => {
    const rec = DATA + k * REC;
    const w = new Uint8Array(REC);
    const dv = new DataView(w.buffer);
    dv.setUint32(0, v.mxcsr, true);
    dv.setUint32(4, v.eax, true);
    w.set(v.a, 16);
    w.set(v.b, 32);
    h.write(rec, w);
    code.push(0xbe, rec & 0xff, (rec >> 8) & 0xff, (rec >> 16) & 0xff, rec >>> 24, ...PRE, ...v.insn, ...POST);
  });
  code.push(0xf4);
  h.write(CODE, code);
  h.vcpu.setRegs({ rax: 0, rbx: 0, rcx: 0, rdx: 0, rsi: 0, rdi: 0, rbp: 0, rsp: 0x80000, rflags: 0x2, rip: CODE });
  const r = h.run(vs.length * 20 + 100);
  if (r.exit.reason !== "hlt") throw new Error(`The vector guest ended with ${r.exit.reason} at ${r.regs.rip.toString(16)}`);
  const out: Mismatch[] = [];
  vs.forEach((v, k) => {
    const rec = DATA + k * REC;
    const got = {
      xmm0: toHex(h.read(rec + 48, 16)), mm0: toHex(h.read(rec + 64, 8)), mxcsr: h.read32(rec + 72) >>> 0,
      eflags: h.read32(rec + 76) & ARITH, eax: h.read32(rec + 80) >>> 0,
    };
    const inputs = `mxcsr ${v.mxcsr.toString(16)} eax ${v.eax.toString(16)} a ${toHex(v.a)} b ${toHex(v.b)}`;
    const add = (field: string, want: string, g: string) => {
      if (want !== g) out.push({ line: v.line, insn: toHex(v.insn), field, want, got: g, inputs });
    };
    add("xmm0", v.xmm0, got.xmm0);
    add("mm0", v.mm0, got.mm0);
    add("mxcsr", v.mxcsrOut.toString(16), got.mxcsr.toString(16));
    add("eflags", (v.eflags & ARITH).toString(16), got.eflags.toString(16));
    add("eax", v.eaxOut.toString(16), got.eax.toString(16));
  });
  return out;
}

/** A random sequence over XMM0-7 (oracle.c's sequence mode) and what the host ended with. */
export interface SseSequence {
  line: number;
  insns: number[][];
  mxcsr: number;
  eax: number;
  xmmIn: Uint8Array;
  xmmOut: string;
  mxcsrOut: number;
  eflags: number;
  eaxOut: number;
}
export function loadSequences(path = new URL("./sequences.txt", import.meta.url)): SseSequence[] {
  return readFileSync(path, "utf8").trim().split("\n").map((l, k) => {
    const f = l.split(" ");
    return {
      line: k + 1, insns: f[1].split("-").map((x) => Array.from(hex(x))), mxcsr: parseInt(f[2], 16), eax: parseInt(f[3], 16) >>> 0,
      xmmIn: hex(f[4]), xmmOut: f[5], mxcsrOut: parseInt(f[6], 16), eflags: parseInt(f[7], 16), eaxOut: parseInt(f[8], 16) >>> 0,
    };
  });
}
const SREC = 288;
const le32 = (v: number) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24];
/** The sequence body (oracle.c's run_seq), instructions in the middle. */
function seqBody(insns: number[][]): number[] {
  const b = [0x0f, 0xae, 0x16, 0x8b, 0x46, 0x04];
  for (let k = 0; k < 8; k++) b.push(0x0f, 0x10, 0x86 | (k << 3), ...le32(16 + 16 * k));
  b.push(0x6a, 0x02, 0x9d);
  for (const i of insns) b.push(...i);
  for (let k = 0; k < 8; k++) b.push(0x0f, 0x11, 0x86 | (k << 3), ...le32(144 + 16 * k));
  b.push(0x0f, 0xae, 0x9e, ...le32(272), 0x9c, 0x8f, 0x86, ...le32(276), 0x89, 0x86, ...le32(280));
  return b;
}
/** Run the sequences in one guest; every difference from the host's final state. */
export function runSequences(h: CpuHarness, ss: SseSequence[]): Mismatch[] {
  const code: number[] = [...ENABLE_SSE];
  ss.forEach((s, k) => {
    const rec = DATA + k * SREC;
    const w = new Uint8Array(SREC);
    const dv = new DataView(w.buffer);
    dv.setUint32(0, s.mxcsr, true);
    dv.setUint32(4, s.eax, true);
    w.set(s.xmmIn, 16);
    h.write(rec, w);
    code.push(0xbe, ...le32(rec), ...seqBody(s.insns));
  });
  code.push(0xf4);
  h.write(CODE, code);
  h.vcpu.setRegs({ rax: 0, rbx: 0, rcx: 0, rdx: 0, rsi: 0, rdi: 0, rbp: 0, rsp: 0x80000, rflags: 0x2, rip: CODE });
  const r = h.run(ss.length * 40 + 100);
  if (r.exit.reason !== "hlt") throw new Error(`The sequence guest ended with ${r.exit.reason} at ${r.regs.rip.toString(16)}`);
  const out: Mismatch[] = [];
  ss.forEach((s, k) => {
    const rec = DATA + k * SREC;
    const inputs = `mxcsr ${s.mxcsr.toString(16)} eax ${s.eax.toString(16)} xmm ${toHex(s.xmmIn)}`;
    const insn = s.insns.map(toHex).join("-");
    const add = (field: string, want: string, got: string) => {
      if (want !== got) out.push({ line: s.line, insn, field, want, got, inputs });
    };
    const got = toHex(h.read(rec + 144, 128));
    for (let x = 0; x < 8; x++) add(`xmm${x}`, s.xmmOut.slice(32 * x, 32 * x + 32), got.slice(32 * x, 32 * x + 32));
    add("mxcsr", s.mxcsrOut.toString(16), (h.read32(rec + 272) >>> 0).toString(16));
    add("eflags", (s.eflags & ARITH).toString(16), (h.read32(rec + 276) & ARITH).toString(16));
    add("eax", s.eaxOut.toString(16), (h.read32(rec + 280) >>> 0).toString(16));
  });
  return out;
}

/**
 * The exception vectors (oracle.c's exception mode, some exceptions unmasked): each runs in the
 * body with EDI holding the next vector's address, and an #XM handler that records the fault,
 * MXCSR, XMM0 and EAX in the record (+84, +72, +48, +80) and goes on at EDI.
 */
export function runExceptionVectors(h: CpuHarness, vs: SseVector[]): Mismatch[] {
  const HANDLER = 0xf00; // between the IDT (ends at 0xE00) and the code
  h.setHandler(19, HANDLER);
  h.write(HANDLER, [0xc7, 0x46, 0x54, 1, 0, 0, 0, 0x0f, 0xae, 0x5e, 0x48, 0x0f, 0x11, 0x46, 0x30, 0x89, 0x46, 0x50,
    0x83, 0xc4, 0x0c, 0xff, 0xe7]);
  const code: number[] = [...ENABLE_SSE];
  vs.forEach((v, k) => {
    const rec = DATA + k * REC;
    const w = new Uint8Array(REC);
    const dv = new DataView(w.buffer);
    dv.setUint32(0, v.mxcsr, true);
    dv.setUint32(4, v.eax, true);
    w.set(v.a, 16);
    w.set(v.b, 32);
    h.write(rec, w);
    code.push(0xbe, ...le32(rec), 0xbf);
    const at = code.length;
    code.push(0, 0, 0, 0, ...PRE, ...v.insn, ...POST);
    const next = CODE + code.length;
    code.splice(at, 4, ...le32(next));
  });
  code.push(0xf4);
  h.write(CODE, code);
  h.vcpu.setRegs({ rax: 0, rbx: 0, rcx: 0, rdx: 0, rsi: 0, rdi: 0, rbp: 0, rsp: 0x80000, rflags: 0x2, rip: CODE });
  const r = h.run(vs.length * 30 + 100);
  if (r.exit.reason !== "hlt") throw new Error(`The exception guest ended with ${r.exit.reason} at ${r.regs.rip.toString(16)}`);
  const out: Mismatch[] = [];
  vs.forEach((v, k) => {
    const rec = DATA + k * REC;
    const faulted = h.read32(rec + 84) === 1;
    const inputs = `mxcsr ${v.mxcsr.toString(16)} eax ${v.eax.toString(16)} a ${toHex(v.a)} b ${toHex(v.b)}`;
    const add = (field: string, want: string, g: string) => {
      if (want !== g) out.push({ line: v.line, insn: toHex(v.insn), field, want, got: g, inputs });
    };
    add("faulted", String(v.faulted), String(faulted));
    add("xmm0", v.xmm0, toHex(h.read(rec + 48, 16)));
    add("mxcsr", v.mxcsrOut.toString(16), (h.read32(rec + 72) >>> 0).toString(16));
    add("eax", v.eaxOut.toString(16), (h.read32(rec + 80) >>> 0).toString(16));
  });
  return out;
}

/**
 * The host-CPU oracle: generated programs run natively (tests/oracle/harness.elf) and under
 * vmxlab, compared bit for bit with the SDM's undefined results masked, a difference shrunk to the
 * fewest pieces that still show it and printed as bytes and disassembly (iced-x86).
 *
 * Masks (each from the SDM; docs in tests/oracle/README.md):
 * - FSW: the condition codes C0-C3 an x87 instruction leaves undefined (Vol. 2 "FPU Flags
 *   Affected"), tracked like the flags (a piece that reads them gets an FXAM first);
 * - EFLAGS: the arithmetic flags an instruction leaves undefined, tracked through the program by
 *   gen.ts (Vol. 2 "Flags Affected" of each instruction); RF in a fault's EFLAGS image (the
 *   processor sets it in the image it pushes for a fault, Vol. 3A 17.3.1.1; the native value comes
 *   from that image);
 * - FXSAVE image: FOP, FIP, FCS, FDP, FDS when FSW.ES is 0 (AMD saves the x87 pointers only with an
 *   unmasked exception pending, AMD APM Vol. 5 FXSAVE; Intel deprecates FCS/FDS, SDM Vol. 1 8.1.8),
 *   and MXCSR_MASK (a property of the processor model, Vol. 1 11.6.6, not state).
 */
import { Decoder, DecoderOptions, Formatter, FormatterSyntax } from "iced-x86";
import { CODE_ADDR, DATA_ADDR, GPR_NAMES, type OracleCase, type OracleResult, runNative, VmxRunner } from "./case.ts";
import { caseOf, type OracleClass, genProgram, type Program, undefAt, type UndefMask } from "./gen.ts";
import type { EngineName } from "../../runtime/vmm/engines.ts";

/** Vectors vmxlab raises for an instruction it does not implement (#UD) or lets a kernel emulate (#NM). */
const UNIMPLEMENTED_VECTORS = new Set([6, 7]);
const RF = 1 << 16;

export type Verdict =
  | { kind: "same" }
  | { kind: "unimplemented"; eip: number; insn: string }
  | { kind: "differ"; what: string[] };

const hex = (v: number, w = 8) => "0x" + (v >>> 0).toString(16).padStart(w, "0");

/** Disassemble `code` (loaded at CODE_ADDR) with iced-x86, one line per instruction. */
export function disassemble(code: Uint8Array, at = CODE_ADDR): string[] {
  const d = new Decoder(32, code, DecoderOptions.None);
  d.ip = BigInt(at);
  const f = new Formatter(FormatterSyntax.Intel);
  const lines: string[] = [];
  try {
    while (d.canDecode) {
      const ip = Number(d.ip);
      const insn = d.decode();
      const off = ip - at;
      const bytes = [...code.subarray(off, off + insn.length)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
      lines.push(`${ip.toString(16).padStart(8, "0")}  ${bytes.padEnd(30)} ${f.format(insn)}`);
      insn.free();
    }
  } finally {
    d.free();
    f.free();
  }
  return lines;
}

/** The instruction at `eip` of a case, for reports. */
function insnAt(c: OracleCase, eip: number): string {
  const off = eip - CODE_ADDR;
  if (off < 0 || off >= c.code.length) return `(eip ${hex(eip)} outside the code)`;
  return disassemble(c.code.subarray(off, Math.min(c.code.length, off + 15)), eip)[0] ?? "?";
}

/** Compare vmxlab's result with the host's, masking what the SDM leaves undefined. */
export function compare(c: OracleCase, undef: number | UndefMask, host: OracleResult, vmx: OracleResult): Verdict {
  const undefFlags = undefAt(undef, host.fault === null ? null : host.eip);
  if (vmx.note !== undefined) return { kind: "differ", what: [`vmxlab: ${vmx.note} at ${hex(vmx.eip)}`] };
  if (vmx.fault !== null && UNIMPLEMENTED_VECTORS.has(vmx.fault) && host.fault !== vmx.fault) {
    return { kind: "unimplemented", eip: vmx.eip, insn: insnAt(c, vmx.eip) };
  }
  const what: string[] = [];
  const fname = (f: number | null) => f === null ? "none" : f === -1 ? "timeout" : `#${f}`;
  if (host.fault !== vmx.fault) what.push(`fault: host ${fname(host.fault)}, vmxlab ${fname(vmx.fault)}`);
  if (host.fault !== null && host.fault === vmx.fault && host.fault !== 14 && host.errorCode !== vmx.errorCode) {
    what.push(`error code: host ${hex(host.errorCode)}, vmxlab ${hex(vmx.errorCode)}`);
  }
  if (host.eip !== vmx.eip) what.push(`eip: host ${hex(host.eip)}, vmxlab ${hex(vmx.eip)}`);
  for (let k = 0; k < 8; k++) if (host.gpr[k] !== vmx.gpr[k]) what.push(`${GPR_NAMES[k]}: host ${hex(host.gpr[k])}, vmxlab ${hex(vmx.gpr[k])}`);
  const mask = ~((undefFlags & 0xffff) | (host.fault !== null ? RF : 0));
  if (((host.eflags ^ vmx.eflags) & mask) !== 0) {
    what.push(`eflags: host ${hex(host.eflags)}, vmxlab ${hex(vmx.eflags)} (undefined, masked: ${hex(undefFlags, 3)}; differing bits ${hex((host.eflags ^ vmx.eflags) & mask)})`);
  }
  compareFx(host.fx, vmx.fx, (undefFlags >>> 16) & 0x4700, what);
  let shown = 0;
  for (let k = 0; k < host.data.length; k++) {
    if (host.data[k] !== vmx.data[k]) {
      if (shown++ < 4) what.push(`memory ${hex(DATA_ADDR + k)}: host 0x${host.data[k].toString(16)}, vmxlab 0x${vmx.data[k].toString(16)}`);
    }
  }
  if (shown > 4) what.push(`(${shown} bytes of the data page differ)`);
  return what.length ? { kind: "differ", what } : { kind: "same" };
}

/** Compare FXSAVE images; `fswUndef` are the FSW condition codes left undefined (masked). */
function compareFx(h: Uint8Array, v: Uint8Array, fswUndef: number, what: string[]): void {
  const hv = new DataView(h.buffer, h.byteOffset, 512), vv = new DataView(v.buffer, v.byteOffset, 512);
  const w16 = (o: number, name: string) => { if (hv.getUint16(o, true) !== vv.getUint16(o, true)) what.push(`${name}: host ${hex(hv.getUint16(o, true), 4)}, vmxlab ${hex(vv.getUint16(o, true), 4)}`); };
  w16(0, "fcw");
  if ((hv.getUint16(2, true) ^ vv.getUint16(2, true)) & ~fswUndef) what.push(`fsw: host ${hex(hv.getUint16(2, true), 4)}, vmxlab ${hex(vv.getUint16(2, true), 4)} (undefined, masked: ${hex(fswUndef, 4)})`);
  if (h[4] !== v[4]) what.push(`ftw (abridged): host ${hex(h[4], 2)}, vmxlab ${hex(v[4], 2)}`);
  if (hv.getUint16(2, true) & 0x80) { // ES: an unmasked exception is pending, the pointers are saved by both vendors
    w16(6, "fop");
    if (hv.getUint32(8, true) !== vv.getUint32(8, true)) what.push(`fip: host ${hex(hv.getUint32(8, true))}, vmxlab ${hex(vv.getUint32(8, true))}`);
    if (hv.getUint32(16, true) !== vv.getUint32(16, true)) what.push(`fdp: host ${hex(hv.getUint32(16, true))}, vmxlab ${hex(vv.getUint32(16, true))}`);
  }
  if (hv.getUint32(24, true) !== vv.getUint32(24, true)) what.push(`mxcsr: host ${hex(hv.getUint32(24, true))}, vmxlab ${hex(vv.getUint32(24, true))}`);
  const regHex = (b: Uint8Array, o: number, n: number) => [...b.subarray(o, o + n)].reverse().map((x) => x.toString(16).padStart(2, "0")).join("");
  for (let i = 0; i < 8; i++) {
    const o = 32 + 16 * i;
    if (regHex(h, o, 10) !== regHex(v, o, 10)) what.push(`st${i}: host ${regHex(h, o, 10)}, vmxlab ${regHex(v, o, 10)}`);
  }
  for (let i = 0; i < 8; i++) {
    const o = 160 + 16 * i;
    if (regHex(h, o, 16) !== regHex(v, o, 16)) what.push(`xmm${i}: host ${regHex(h, o, 16)}, vmxlab ${regHex(v, o, 16)}`);
  }
}

export interface OracleOptions {
  cls: OracleClass;
  seed: number;
  count: number;
  engines: EngineName[];
  /** Pieces per program (default 12). */
  size?: number;
  /** Cases per native batch (default 500). */
  batch?: number;
  shrink?: boolean;
  /** Stop collecting differences after this many (default 20). */
  maxReports?: number;
  log?: (line: string) => void;
}

export interface OracleFinding {
  seed: number;
  engine: EngineName;
  verdict: Verdict;
  /** The shrunk program's report (bytes, disassembly, initial state, the differences). */
  report: string;
}

export interface OracleSummary {
  cases: number;
  runs: number;
  same: number;
  differ: number;
  unimplemented: number;
  /** Unimplemented instructions by mnemonic, with counts. */
  unimplementedBy: Record<string, number>;
  findings: OracleFinding[];
}

/** Run programs seed..seed+count-1 of a class natively and under each engine. */
export function runOracle(o: OracleOptions): OracleSummary {
  const runners = o.engines.map((e) => new VmxRunner(e));
  const batch = o.batch ?? 500, size = o.size ?? 12, maxReports = o.maxReports ?? 20;
  const sum: OracleSummary = { cases: 0, runs: 0, same: 0, differ: 0, unimplemented: 0, unimplementedBy: {}, findings: [] };
  for (let s0 = o.seed; s0 < o.seed + o.count; s0 += batch) {
    const progs: Program[] = [];
    for (let s = s0; s < Math.min(o.seed + o.count, s0 + batch); s++) progs.push(genProgram(o.cls, s, size));
    const built = progs.map((p) => caseOf(p));
    const host = runNative(built.map((b) => b.c));
    for (let k = 0; k < progs.length; k++) {
      sum.cases++;
      for (const r of runners) {
        sum.runs++;
        const v = compare(built[k].c, built[k].undef, host[k], r.run(built[k].c));
        if (v.kind === "same") { sum.same++; continue; }
        if (v.kind === "unimplemented") {
          sum.unimplemented++;
          const m = v.insn.replace(/^\S+\s+(\S+ )+\s*/, "").split(" ")[0];
          sum.unimplementedBy[m] = (sum.unimplementedBy[m] ?? 0) + 1;
          continue;
        }
        sum.differ++;
        if (sum.findings.length < maxReports) {
          const f = explain(progs[k], r, o.shrink ?? true);
          sum.findings.push({ seed: progs[k].seed, engine: r.engine, verdict: v, report: f });
          o.log?.(`seed ${progs[k].seed} (${o.cls}) differs under ${r.engine}:\n${f}`);
        }
      }
    }
    o.log?.(`${sum.cases} cases, ${sum.runs} runs: ${sum.same} same, ${sum.differ} differ, ${sum.unimplemented} unimplemented`);
  }
  return sum;
}

/** Shrink a differing program (drop pieces while it still differs) and describe the result. */
export function explain(p: Program, r: VmxRunner, shrink: boolean): string {
  const verdictOf = (keep: number[]): Verdict => {
    const b = caseOf(p, keep);
    return compare(b.c, b.undef, runNative([b.c])[0], r.run(b.c));
  };
  let keep = p.pieces.map((_, k) => k);
  if (shrink) {
    for (let chunk = Math.max(1, keep.length >> 1); chunk >= 1; chunk >>= 1) {
      for (let at = 0; at < keep.length;) {
        const trial = [...keep.slice(0, at), ...keep.slice(at + chunk)];
        if (trial.length > 0 && verdictOf(trial).kind === "differ") keep = trial;
        else at += chunk;
      }
    }
  }
  const b = caseOf(p, keep);
  const v = verdictOf(keep);
  const lines = [
    `program: class ${p.cls}, seed ${p.seed}, ${keep.length} of ${p.pieces.length} pieces (${keep.map((k) => p.pieces[k].what).join(", ")})`,
    `engine: ${r.engine}`,
    `registers: ${GPR_NAMES.map((n, k) => `${n}=${hex(p.gpr[k])}`).join(" ")} eflags=${hex(p.eflags)}`,
    `code at ${hex(CODE_ADDR)} (${b.c.code.length} bytes): ${[...b.c.code].map((x) => x.toString(16).padStart(2, "0")).join(" ")}`,
    ...disassemble(b.c.code).map((l) => "  " + l),
    `data page at ${hex(DATA_ADDR)}: random bytes from the seed (genProgram("${p.cls}", ${p.seed}))`,
    ...(v.kind === "differ" ? v.what.map((w) => "  " + w) : [`  (after shrinking: ${v.kind})`]),
  ];
  return lines.join("\n");
}

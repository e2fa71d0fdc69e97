/**
 * SingleStepTests vectors (real-mode, one instruction each) run through the processor by the KVM
 * API a guest uses: the one implementation behind `npm run conformance` (scripts/conformance.ts)
 * and the CI sample (tests/conformance_sample_test.ts). The format, the FLAGS masks and the skip
 * rules are those of `shared/conformance/sst-80286/README.md`.
 *
 * A vector is loaded into a 16 MiB VM, run from CS:IP until the HLT that follows the instruction,
 * and compared: every register, every listed memory byte, and FLAGS under the metadata's
 * undefined-flag mask.
 *
 * Skips, each with its reason (the README's rules for a 386-class CPU):
 *   - opcodes whose metadata status is undocumented, undefined, fpu, prefix or extension (SALC,
 *     SAL /6, ESC, and the 8F/C6/C7 forms with ModRM.reg ≠ 0);
 *   - tests longer than 10 bytes (the 286 limit; the 386 allows 15);
 *   - MOV to or from FS/GS (8C/8E with reg 4 or 5): the 286 has no FS/GS and raises #UD.
 * FLAGS bits 12–15 are masked everywhere: the 286 clears them in real mode, a 386 keeps IOPL and NT.
 *
 * Three 286/386 differences are checked against the 386 behaviour instead of skipped (AS_386):
 *   - LOCK: the 286 accepts it on any instruction; a 386 raises #UD (with nothing changed) unless
 *     the form is lockable with a memory destination, where both behave alike;
 *   - a word that straddles SS:FFFF (stack operations, BP-based operands) raises #SS on a 386, as
 *     the SDM describes, where the 286 raises #GP: #SS exits to the test through the exception
 *     bitmap, and the state must be the 286's state before it delivered the fault;
 *   - a string instruction faulting at offset FFFF: the 286 has already advanced SI/DI/CX, a 386
 *     fault is restartable, so those three registers are not compared.
 *
 * @example
 * ```ts
 * import { runPath } from "./sst.ts";
 * const dir = new URL("../../shared/conformance/sst-80286/", import.meta.url).pathname;
 * const [r] = runPath(`${dir}F8.json.gz`, { count: 5 });
 * if (r.passed !== 5 || r.failed !== 0) throw new Error("CLC vectors failed");
 * ```
 * @module
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { CpuHarness, realSeg } from "./cpu_harness.ts";
import { VmcsField } from "../runtime/mod.ts";

type Regs16 = Record<"ax" | "bx" | "cx" | "dx" | "cs" | "ss" | "ds" | "es" | "sp" | "bp" | "si" | "di" | "ip" | "flags", number>;
/** One SingleStepTests vector (see the README's schema). */
export interface Vector {
  idx: number;
  name: string;
  bytes: number[];
  initial: { regs: Regs16; ram: [number, number][] };
  final: { regs: Partial<Regs16>; ram: [number, number][] };
  exception?: { number: number; flag_address: number };
}
/** One opcode's entry in metadata.json. */
export interface OpcodeMeta {
  status: string;
  "flags-mask"?: number;
  reg?: Record<string, OpcodeMeta>;
}
export type Metadata = Record<string, OpcodeMeta>;

const PREFIXES = new Set([0x26, 0x2e, 0x36, 0x3e, 0xf0, 0xf2, 0xf3]);
/** Metadata statuses that are not 386 real-mode behaviour (README, "Opcodes to skip"). */
export const SKIP_STATUS: Record<string, string> = {
  undefined: "undefined opcode (#UD on the 286)",
  undocumented: "undocumented opcode",
  fpu: "x87 escape (the 80286 vectors were captured without a coprocessor; the x87 is checked in tests/x87)",
  prefix: "a prefix, not an instruction",
  extension: "0F extension",
};

/** Index of the opcode byte, after the prefixes. */
function opcodeAt(bytes: number[]): number {
  let p = 0;
  while (PREFIXES.has(bytes[p])) p++;
  return p;
}
/** The metadata entry for a test's instruction (README, "FLAGS masks" step 1), if there is one. */
function metaFor(meta: Metadata | null, bytes: number[]): OpcodeMeta | undefined {
  if (!meta) return undefined;
  const p = opcodeAt(bytes);
  const e = meta[bytes[p].toString(16).padStart(2, "0").toUpperCase()];
  if (!e) return undefined;
  return e.reg ? e.reg[String((bytes[p + 1] >> 3) & 7)] ?? e : e;
}

/** Why a test is skipped, or null to run it. */
export function skipReason(v: Vector, m: OpcodeMeta | undefined): string | null {
  if (m && SKIP_STATUS[m.status]) return SKIP_STATUS[m.status];
  if (v.bytes.length - 1 > 10) return "longer than 10 bytes: the 286 faults, the 386 limit is 15";
  const op = opcodeAt(v.bytes);
  if ((v.bytes[op] === 0x8c || v.bytes[op] === 0x8e) && [4, 5].includes((v.bytes[op + 1] >> 3) & 7)) {
    return "MOV with FS or GS: the 286 has no FS/GS (#UD), a 386 does";
  }
  return null;
}

/** The metadata.json beside a test file (or in its parent folder), or null. */
export function loadMetadata(file: string): Metadata | null {
  for (const dir of [dirname(file), dirname(dirname(file))]) {
    const p = join(dir, "metadata.json");
    if (existsSync(p)) return JSON.parse(readFileSync(p, "utf8")).opcodes ?? null;
  }
  return null;
}

/** Whether a path names a test file (`.json` or `.json.gz`, not metadata.json). */
function isTestFile(p: string): boolean {
  return (p.endsWith(".json") || p.endsWith(".json.gz")) && basename(p) !== "metadata.json";
}
/** The test files a path names: the file itself, or a folder's test files, sorted. */
export function testFiles(path: string): string[] {
  if (!existsSync(path)) throw new RangeError(`Cannot read ${path}: no such file or folder`);
  if (statSync(path).isDirectory()) {
    return readdirSync(path).filter((f) => isTestFile(f)).sort().map((f) => join(path, f));
  }
  return [path];
}
/** A file's label: its name without .json(.gz), the opcode in the suite's naming (`80.1`). */
export function fileLabel(file: string): string {
  return basename(file).replace(/\.gz$/, "").replace(/\.json$/, "");
}

/**
 * The first `count` vectors of a file, gzipped or not. Files with one object per line (the suite's
 * form) are parsed line by line, so a sample reads only what it needs; anything else as one array.
 */
export function loadVectors(file: string, count = Infinity): Vector[] {
  const raw = readFileSync(file);
  const text = (file.endsWith(".gz") ? gunzipSync(raw) : raw).toString("utf8");
  const out: Vector[] = [];
  try {
    let pos = text.indexOf("{");
    while (pos >= 0 && out.length < count) {
      let end = text.indexOf("\n", pos);
      if (end < 0) end = text.length;
      const line = text.slice(pos, end).replace(/,\s*$/, "").replace(/\]\s*$/, "").trim();
      if (line.startsWith("{")) out.push(JSON.parse(line));
      pos = end + 1 < text.length ? end + 1 : -1;
    }
    return out;
  } catch {
    const all = JSON.parse(text) as Vector[];
    return count === Infinity ? all : all.slice(0, count);
  }
}

const REGS: [keyof Regs16, "rax" | "rbx" | "rcx" | "rdx" | "rsp" | "rbp" | "rsi" | "rdi"][] = [
  ["ax", "rax"], ["bx", "rbx"], ["cx", "rcx"], ["dx", "rdx"], ["sp", "rsp"], ["bp", "rbp"], ["si", "rsi"], ["di", "rdi"],
];

/** What running one vector gave. */
export interface VectorResult {
  /** Differences from the expected state (empty: the vector passes). */
  diffs: string[];
  /**
   * Set when the vector passed against the 386 expectation rather than the 286's, with the reason
   * (a documented 286/386 difference the vector's state shows).
   */
  as386?: string;
}

/** The 386 differences we check in place of the 286 result. */
export const AS_386 = {
  LOCK_UD: "LOCK on a form that is not lockable, or without a memory destination, raises #UD on a 386 (the 286 ignores it)",
  SS_FAULT: "a word straddling SS:FFFF raises #SS on a 386 (the 286 raises #GP)",
  STRING_FAULT: "a string instruction faulting at offset FFFF: SI/DI/CX not compared (the 286 advances them before the fault, a 386 fault is restartable)",
} as const;
/**
 * Whether LOCK is allowed: a read-modify-write form with a memory destination (SDM LOCK): ADD ADC
 * AND BTx NEG NOT OR SBB SUB XOR XCHG INC DEC (the 0F forms are not in this suite).
 */
function lockable(bytes: number[]): boolean {
  const p = opcodeAt(bytes);
  const op = bytes[p], modrm = bytes[p + 1], reg = (modrm >> 3) & 7;
  if (modrm >> 6 === 3) return false;
  if (op < 0x38 && (op & 7) <= 1) return true; // ALU Eb,Gb and Ev,Gv but CMP
  if (op >= 0x80 && op <= 0x83) return reg !== 7; // group 1 but CMP
  if (op === 0x86 || op === 0x87) return true; // XCHG
  if (op === 0xf6 || op === 0xf7) return reg === 2 || reg === 3; // NOT, NEG
  if (op === 0xfe || op === 0xff) return reg <= 1; // INC, DEC
  return false;
}
function hasLock(bytes: number[]): boolean {
  return bytes.slice(0, opcodeAt(bytes)).includes(0xf0);
}
const STRING_OPS = new Set([0x6c, 0x6d, 0x6e, 0x6f, 0xa4, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf]);

/** A harness set up for vectors: real mode, and a zero IVT entry jumps to 0:0 as on silicon. */
export function vectorHarness(): CpuHarness {
  return new CpuHarness("real");
}

/**
 * Run one vector on the harness's vCPU.
 * @param mask the FLAGS mask for the instruction (metadata flags-mask, bits 12–15 cleared)
 */
export function runVector(h: CpuHarness, v: Vector, mask: number): VectorResult {
  const ini = v.initial.regs;
  for (const [a, b] of v.initial.ram) h.write(a, [b]);
  h.setSegs({ cs: realSeg(ini.cs, true), ds: realSeg(ini.ds), es: realSeg(ini.es), ss: realSeg(ini.ss) });
  h.vcpu.setRegs({
    rax: ini.ax, rbx: ini.bx, rcx: ini.cx, rdx: ini.dx, rsp: ini.sp, rbp: ini.bp, rsi: ini.si, rdi: ini.di,
    rip: ini.ip, rflags: (ini.flags & 0x0fff) | 2,
  });
  h.io.length = 0;
  // #SS exits to us (the exception bitmap), so a 386's #SS where the 286 raised #GP is recognised;
  // so does #UD for a LOCK the 386 refuses.
  const lockUd = hasLock(v.bytes) && !lockable(v.bytes);
  h.vcpu.vmcsWrite(VmcsField.EXCEPTION_BITMAP, 1 << 12 | (lockUd ? 1 << 6 : 0));
  const diffs: string[] = [];
  let as386: string | undefined;
  try {
    const r = h.run(300_000);
    if (lockUd) {
      // The 386 raises #UD before anything changes, with IP at the first prefix.
      if (r.exit.reason !== "exception" || r.exit.exception !== 6) return { diffs: [`LOCK: exit ${r.exit.reason}, want #UD`] };
      const sr = h.vcpu.getSregs();
      const got = [r.regs.rax, r.regs.rbx, r.regs.rcx, r.regs.rdx, r.regs.rsp, r.regs.rbp, r.regs.rsi, r.regs.rdi, r.regs.rip, sr.cs.selector, sr.ss.selector, sr.ds.selector, sr.es.selector, r.flags & 0xfff];
      const want = [ini.ax, ini.bx, ini.cx, ini.dx, ini.sp, ini.bp, ini.si, ini.di, ini.ip, ini.cs, ini.ss, ini.ds, ini.es, ini.flags & 0xfff];
      if (got.join() !== want.join()) return { diffs: [`after #UD state ${got.map(hex)}, want ${want.map(hex)}`] };
      for (const [a, b] of v.initial.ram) if (h.read8(a) !== b) return { diffs: [`after #UD [${hex(a)}] changed`] };
      return { diffs, as386: AS_386.LOCK_UD };
    }
    const op = v.bytes[opcodeAt(v.bytes)];
    const want: Regs16 = { ...ini, ...v.final.regs };
    // Memory: the initial image overlaid with the final bytes; the pushed FLAGS word is masked.
    const image = new Map<number, number>(v.initial.ram);
    for (const [a, b] of v.final.ram) image.set(a, b);
    const byteMask = new Map<number, number>();
    if (v.exception) {
      const frame = (want.ss << 4) + want.sp;
      byteMask.set((want.ss << 4) + ((want.sp + 4) & 0xffff), mask & 0xff);
      byteMask.set((want.ss << 4) + ((want.sp + 5) & 0xffff), (mask >> 8) & 0xff);
      if (r.exit.reason === "exception" && r.exit.exception === 12 && v.exception.number === 13) {
        // Our #SS stopped at the instruction (an exit, the exception bitmap) where the 286 delivered
        // #GP: compare with the state before delivery, which pushes FLAGS, CS, IP and jumps.
        as386 = AS_386.SS_FAULT;
        want.cs = ini.cs;
        want.ip = ini.ip;
        want.sp = ini.sp;
        want.flags = ini.flags;
        for (let k = 0; k < 6; k++) image.delete((want.ss << 4) + ((frame - (want.ss << 4) + k) & 0xffff));
      }
    }
    if (r.exit.reason !== "hlt" && as386 === undefined) {
      diffs.push(`exit ${r.exit.reason}${r.exit.reason === "shutdown" ? ` (vectors ${r.exit.vectors})` : ""}${r.exit.reason === "exception" ? ` #${r.exit.exception}` : ""}`);
      return { diffs };
    }
    const s = h.vcpu.getSregs();
    const got: Record<string, number> = { cs: s.cs.selector, ss: s.ss.selector, ds: s.ds.selector, es: s.es.selector, ip: r.regs.rip };
    for (const [k, rk] of REGS) got[k] = r.regs[rk];
    if (v.exception?.number === 13 && STRING_OPS.has(op)) {
      for (const k of ["si", "di", "cx"]) delete got[k];
      as386 ??= AS_386.STRING_FAULT;
    }
    for (const k of Object.keys(got) as (keyof Regs16)[]) {
      if (got[k] !== want[k]) diffs.push(`${k} ${hex(got[k])}, want ${hex(want[k])}`);
    }
    if ((r.flags & mask) !== (want.flags & mask)) {
      diffs.push(`flags ${hex(r.flags & mask)}, want ${hex(want.flags & mask)} (mask ${hex(mask)}, diff ${flagNames((r.flags ^ want.flags) & mask)})`);
    }
    for (const [a, b] of image) {
      const m = byteMask.get(a) ?? 0xff;
      const g = h.read8(a);
      if ((g & m) !== (b & m)) diffs.push(`[${hex(a)}] ${hex(g)}, want ${hex(b)}`);
    }
  } finally {
    // Leave RAM as it was (zero) for the next vector.
    for (const [a] of v.initial.ram) h.write(a, [0]);
    for (const [a] of v.final.ram) h.write(a, [0]);
  }
  return { diffs, as386 };
}
function hex(v: number): string {
  return "0x" + (v >>> 0).toString(16);
}
function flagNames(bits: number): string {
  const names: [number, string][] = [[0x1, "CF"], [0x4, "PF"], [0x10, "AF"], [0x40, "ZF"], [0x80, "SF"], [0x100, "TF"], [0x200, "IF"], [0x400, "DF"], [0x800, "OF"]];
  return names.filter(([b]) => bits & b).map(([, n]) => n).join(" ");
}

/** The FLAGS mask for a vector: the metadata mask (all flags without one), bits 12–15 cleared (README, 386 notes). */
export function flagsMask(meta: Metadata | null, v: Vector): number {
  return (metaFor(meta, v.bytes)?.["flags-mask"] ?? 0xffff) & 0x0fff;
}

/** The outcome of one file. */
export interface FileResult {
  file: string;
  /** The opcode label (file name without .json(.gz)). */
  label: string;
  passed: number;
  failed: number;
  skipped: number;
  /** Skips by reason. */
  skips: Record<string, number>;
  /** Vectors that passed against the documented 386 behaviour, by reason. */
  as386: Record<string, number>;
  /** The failures: the vector's index, name, bytes and differences. */
  failures: string[];
}

/**
 * Run the first `count` vectors of one file.
 * @param meta the suite's metadata (null: no masks, no status skips)
 */
export function runFile(h: CpuHarness, meta: Metadata | null, file: string, count = Infinity): FileResult {
  const res: FileResult = { file, label: fileLabel(file), passed: 0, failed: 0, skipped: 0, skips: {}, as386: {}, failures: [] };
  for (const v of loadVectors(file, count)) {
    const m = metaFor(meta, v.bytes);
    const why = skipReason(v, m);
    if (why) {
      res.skipped++;
      res.skips[why] = (res.skips[why] ?? 0) + 1;
      continue;
    }
    const { diffs: d, as386 } = runVector(h, v, flagsMask(meta, v));
    if (d.length) {
      res.failed++;
      res.failures.push(`#${v.idx} ${v.name} [${v.bytes.map((b) => b.toString(16).padStart(2, "0")).join(" ")}]: ${d.join("; ")}`);
    } else {
      res.passed++;
      if (as386) res.as386[as386] = (res.as386[as386] ?? 0) + 1;
    }
  }
  return res;
}

/**
 * Run every test file a path names (a file, or a folder's `.json`/`.json.gz` files), with the
 * metadata found beside them.
 * @param opts count: vectors per file (default all); onFile: called after each file
 */
export function runPath(path: string, opts: { count?: number; onFile?: (r: FileResult) => void; harness?: CpuHarness } = {}): FileResult[] {
  const h = opts.harness ?? vectorHarness();
  const out: FileResult[] = [];
  const metas = new Map<string, Metadata | null>();
  for (const f of testFiles(path)) {
    const dir = dirname(f);
    if (!metas.has(dir)) metas.set(dir, loadMetadata(f));
    const r = runFile(h, metas.get(dir)!, f, opts.count ?? Infinity);
    out.push(r);
    opts.onFile?.(r);
  }
  return out;
}

/** One line per file: `<opcode>: passed N, failed N, skipped N (reason)`. */
export function formatFileLine(r: FileResult): string {
  const reasons = Object.entries(r.skips).map(([why, n]) => (Object.keys(r.skips).length > 1 ? `${n}: ${why}` : why));
  return `${r.label}: passed ${r.passed}, failed ${r.failed}, skipped ${r.skipped}${reasons.length ? ` (${reasons.join("; ")})` : ""}`;
}

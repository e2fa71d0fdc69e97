/**
 * The QEMU oracle for system behaviour: random programs that exercise paging (test windows 16 MiB
 * apart mapped onto shared frames, A/D bits, INVLPG and CR3 flushes, 4 MiB pages, CR0.WP, U/S at
 * CPL 3) and segmentation (FS loaded with descriptors of every kind, accesses within their limits,
 * privilege checks at CPL 3, privileged instructions), with
 * the faults they raise logged by the frame's IDT stubs. A program is the committed frame
 * (tests/oracle/qemu/sys.bin, from sys.asm) with the generator's page-table entries patched in and
 * its random body appended: a multiboot kernel that QEMU (`-kernel`) and vmxlab (its multiboot
 * loader) boot alike, and that writes its log and a dump of its paging structures, descriptors
 * and test frames to port 0xE9.
 *
 * Every change to a translation the body may have cached is followed by INVLPG or a CR3 reload
 * before the next access through it: what a stale TLB entry would give is the implementation's
 * choice (SDM Vol. 3A 4.10.4.3), and the two processors must not be compared on it.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Machine } from "../../runtime/vmm/machine.ts";
import type { EngineName } from "../../runtime/vmm/engines.ts";
import { prng } from "./gen.ts";

export const SYS_BIN = new URL("./qemu/sys.bin", import.meta.url);
const BASE = 0x100000, BODY = 0x110000;
const LOG_EAX = 0x100020, RESUME = 0x100024, CR0_INIT = 0x100028;
const PT = [0x106000, 0x107000, 0x108000];
const WINDOWS = [0x400000, 0x1400000, 0x2400000];
const PDE_INDEX = [1, 5, 9];
const PD = 0x103000, FRAMES = 0x800000;
/** Guest RAM for both (QEMU -m 64). */
export const SYS_MEM = 64 << 20;

const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

let frameCache: Uint8Array | null = null;
function frame(): Uint8Array {
  frameCache ??= new Uint8Array(readFileSync(SYS_BIN));
  return frameCache;
}

export interface SysProgram {
  seed: number;
  image: Uint8Array;
  /** One line per operation of the body, with its offset from 0x110000. */
  ops: string[];
  /** The same program with only some of its body's pieces (for shrinking). */
  subset(keep: number[]): SysProgram;
  pieceCount: number;
}

type Op = { text: string; code: number[]; fallible: boolean };

/**
 * The body as pieces (one generator step: an access, or a PTE write with its invalidation), so
 * that any subset of pieces is again a valid program (the shrinker drops pieces).
 */
class Body {
  pieces: Op[][] = [];
  private cur: Op[] = [];
  /** Append an operation to the current piece; `fallible` sets resume to the address after it first. */
  op(text: string, code: number[], fallible = false): void {
    this.cur.push({ text, code, fallible });
  }
  endPiece(): void {
    if (this.cur.length) this.pieces.push(this.cur);
    this.cur = [];
  }
}

/** Lay out the chosen pieces at BODY, with their resume addresses; ends with RET. */
function layout(pieces: Op[][]): { bytes: number[]; ops: string[] } {
  const bytes: number[] = [], ops: string[] = [];
  for (const o of [...pieces.flat(), { text: "ret", code: [0xc3], fallible: false }]) {
    ops.push(`+${bytes.length.toString(16).padStart(4, "0")} ${o.text}`);
    if (o.fallible) bytes.push(0xc7, 0x05, ...u32(RESUME), ...u32(BODY + bytes.length + 10 + o.code.length));
    bytes.push(...o.code);
  }
  return { bytes, ops };
}

const CALL_LOG = [0xff, 0x15, ...u32(LOG_EAX)];
const INVLPG = (a: number) => [0x0f, 0x01, 0x3d, ...u32(a)];
const RELOAD_CR3 = [0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8];
const hex = (v: number) => "0x" + (v >>> 0).toString(16);

/**
 * Offsets (of a 4-byte access) inside each loadable segment's limits, and whether it is writable
 * (sys.asm's GDT; expand-down limits per SDM Vol. 3A 3.4.5.1). Selectors without an entry do not
 * load (#GP, #NP) or may fault on any access (null).
 */
const SEG_OK: Record<number, { offsets: number[]; write: boolean }> = {
  0x10: { offsets: [0x800000, 0x80fffc], write: true },
  0x18: { offsets: [0, 0x7fc, 0xffc], write: true },
  0x20: { offsets: [0, 0xffc, 0xfffc], write: false },
  0x28: { offsets: [0x1000, 0x1ffc, 0xfffc], write: true },
  0x40: { offsets: [0, 0xffc, 0xfffc], write: false },
  0x48: { offsets: [0, 0x1000, 0xfffc], write: true },
  0x4b: { offsets: [0, 0x1000, 0xfffc], write: true },
  0x50: { offsets: [0, 0xffc], write: true },
  0x58: { offsets: [0x1000, 0x8000, 0xfffc], write: true },
};

/** A random system program from `seed` with `size` operations. */
export function genSysProgram(seed: number, size = 40): SysProgram {
  const r = prng((seed * 0x9e3779b1) ^ 0x5eed);
  const int = (n: number) => r() % n;
  const chance = (p: number) => r() / 4294967296 < p;
  const pick = <T>(a: readonly T[]) => a[r() % a.length];
  const img = frame().slice();
  const dv = new DataView(img.buffer);
  const pte = () => {
    let v = (FRAMES + int(16) * 0x1000) | (chance(0.85) ? 1 : 0) | (chance(0.7) ? 2 : 0) | (chance(0.5) ? 4 : 0);
    if (chance(0.3)) v |= 0x20;
    if (chance(0.3)) v |= 0x40;
    return v >>> 0;
  };
  for (const pt of PT) for (let k = 0; k < 8; k++) dv.setUint32(pt - BASE + 4 * k, pte(), true);
  const wp = chance(0.7);
  dv.setUint32(CR0_INIT - BASE, wp ? 0x80010011 : 0x80000011, true);
  // Window state: large[w] when the window's PDE is a 4 MiB page.
  const large = [false, false, false];
  const b = new Body();
  const lin = () => { const w = int(3); const k = int(8); return { w, k, a: WINDOWS[w] + k * 0x1000 }; };
  // No access straddles two window pages: which page's A/D flags a faulting straddling write sets,
  // and CR2 when only its second page faults, are the implementation's (README: not compared).
  const offs = [0, 4, 0x100, 0x7fc, 0xffc, 0xffe];
  const invalidate = (w: number, a: number) => {
    if (chance(0.7)) b.op(`invlpg [${hex(a)}]`, INVLPG(a));
    else b.op("reload cr3", RELOAD_CR3);
    void w;
  };
  for (let n = 0; n < size; n++) {
    b.endPiece();
    const x = int(100);
    if (x < 22) { // write through a window
      const { a } = lin(), o = pick(offs), v = r();
      if (o === 0xffe) b.op(`mov word [${hex(a + o)}], ${hex(v & 0xffff)}`, [0x66, 0xc7, 0x05, ...u32(a + o), v & 0xff, (v >>> 8) & 0xff], true);
      else b.op(`mov dword [${hex(a + o)}], ${hex(v)}`, [0xc7, 0x05, ...u32(a + o), ...u32(v)], true);
    } else if (x < 44) { // read through a window
      const { a } = lin(), o = pick(offs);
      if (o === 0xffe) b.op(`movzx eax, word [${hex(a + o)}]; log`, [0x0f, 0xb7, 0x05, ...u32(a + o), ...CALL_LOG], true);
      else b.op(`mov eax, [${hex(a + o)}]; log`, [0xa1, ...u32(a + o), ...CALL_LOG], true);
    } else if (x < 56) { // rewrite a PTE, then invalidate
      const { w, k, a } = lin();
      const v = pte();
      b.op(`mov dword [pte ${hex(a)}], ${hex(v)}`, [0xc7, 0x05, ...u32(PT[w] + 4 * k), ...u32(v)]);
      invalidate(w, a);
    } else if (x < 61) { // clear or set A/D/RW/US bits of a PTE, then invalidate
      const { w, k, a } = lin();
      const bits = pick([0x20, 0x40, 0x60, 0x02, 0x04]);
      if (chance(0.5)) b.op(`and dword [pte ${hex(a)}], ~${hex(bits)}`, [0x81, 0x25, ...u32(PT[w] + 4 * k), ...u32(~bits >>> 0)]);
      else b.op(`or dword [pte ${hex(a)}], ${hex(bits)}`, [0x81, 0x0d, ...u32(PT[w] + 4 * k), ...u32(bits)]);
      invalidate(w, a);
    } else if (x < 70) { // log a PTE (its A and D bits)
      const { w, k, a } = lin();
      b.op(`mov eax, [pte ${hex(a)}]; log`, [0xa1, ...u32(PT[w] + 4 * k), ...CALL_LOG]);
    } else if (x < 73) { // log a PDE
      const w = int(3);
      b.op(`mov eax, [pde ${w}]; log`, [0xa1, ...u32(PD + 4 * PDE_INDEX[w]), ...CALL_LOG]);
    } else if (x < 75) {
      const { a } = lin();
      b.op(`invlpg [${hex(a)}]`, INVLPG(a));
    } else if (x < 77) {
      b.op("reload cr3", RELOAD_CR3);
    } else if (x < 80) { // toggle CR0.WP (permission checks use its current value, SDM Vol. 3A 4.6)
      b.op("cr0.wp ^= 1", [0x0f, 0x20, 0xc0, 0x35, ...u32(0x10000), 0x0f, 0x22, 0xc0]);
    } else if (x < 84) { // a window's PDE: a 4 MiB page onto the frames' 4 MiB, or back to its page table
      const w = int(3);
      large[w] = !large[w];
      const v = large[w]
        ? (FRAMES | 0x80 | 1 | (chance(0.7) ? 2 : 0) | (chance(0.5) ? 4 : 0) | (chance(0.3) ? 0x20 : 0) | (chance(0.3) ? 0x40 : 0)) >>> 0
        : (PT[w] | 7) >>> 0;
      b.op(`mov dword [pde ${w}], ${hex(v)}; reload cr3`, [0xc7, 0x05, ...u32(PD + 4 * PDE_INDEX[w]), ...u32(v), ...RELOAD_CR3]);
    } else if (x < 87) { // write a frame through the identity map
      const o = int(16) * 0x1000 + pick(offs), v = r();
      b.op(`mov dword [frame ${hex(FRAMES + o)}], ${hex(v)}`, [0xc7, 0x05, ...u32(FRAMES + o), ...u32(v)]);
    } else if (x < 92) { // a run at CPL 3: IRET to a flat DPL 3 code segment, a few accesses, INT 0x30 back
      b.op("mov [tss.esp0], esp; ds = es = 0x6b; iretd to 0x63:next (CPL 3, ss:esp 0x6b:0x10e000, eflags 0x2)", [
        0x89, 0x25, ...u32(0x10f804), 0x66, 0xb8, 0x6b, 0x00, 0x8e, 0xd8, 0x8e, 0xc0,
        0x6a, 0x6b, 0x68, ...u32(0x10e000), 0x6a, 0x02, 0x6a, 0x63, 0xe8, 0, 0, 0, 0, 0x83, 0x04, 0x24, 5, 0xcf,
      ]);
      for (let n3 = 1 + int(4); n3 > 0; n3--) {
        const y = int(11);
        if (y < 4) {
          const { a } = lin(), o = pick(offs);
          if (chance(0.5)) b.op(`cpl3: mov eax, [${hex(a + o)}]; log`, [0xa1, ...u32(a + o), ...CALL_LOG], true);
          else b.op(`cpl3: mov dword [${hex(a + o & ~3)}], imm`, [0xc7, 0x05, ...u32((a + o) & ~3), ...u32(r())], true);
        } else if (y < 7) { // privilege checks of segment loads at CPL 3
          const sel = pick([0x10, 0x13, 0x48, 0x4b, 0x68, 0x6b, 0x60, 0x63, 0x18, 0x1b, 0x00, 0x03]);
          b.op(`cpl3: mov fs, ${hex(sel)}`, [0x66, 0xb8, sel & 0xff, 0, 0x8e, 0xe0], true);
        } else if (y < 8) { // INT n through a DPL 0 gate or past the IDT's limit: #GP(n*8+2), EIP of the INT (SDM Vol. 3A 6.12.1.1)
          const n = pick([0x03, 0x0d, 0x20, 0x31, 0x80]);
          b.op(`cpl3: int ${hex(n)}`, [0xcd, n], true);
        } else { // privileged instructions: #GP(0) at CPL 3
          const [t, code] = pick([["mov eax, cr0", [0x0f, 0x20, 0xc0]], ["cli", [0xfa]], ["hlt", [0xf4]], ["invlpg [0x400000]", INVLPG(0x400000)], ["in al, 0x80", [0xe4, 0x80]]] as const);
          b.op(`cpl3: ${t}`, [...code], true);
        }
      }
      b.op("int 0x30 (back to CPL 0)", [0xcd, 0x30]);
    } else { // segmentation: load FS (every kind of selector), then read or write through it within its limits
      const sel = pick([0x00, 0x18, 0x20, 0x28, 0x30, 0x38, 0x40, 0x48, 0x4b, 0x50, 0x58, 0x60, 0x70, 0x78, 0x80, 0x1c, 0x10]);
      b.op(`mov fs, ${hex(sel)}`, [0x66, 0xb8, sel & 0xff, sel >> 8, 0x8e, 0xe0], true);
      // Accesses only where the SDM allows them for the segment FS would hold: QEMU TCG does not
      // check data accesses against segment limits, types or a null selector (tests/oracle/README.md).
      const ok = SEG_OK[sel];
      if (ok !== undefined) {
        const o = pick(ok.offsets);
        if (!ok.write || chance(0.6)) b.op(`mov eax, fs:[${hex(o)}]; log`, [0x64, 0xa1, ...u32(o), ...CALL_LOG], true);
        else { const v = r(); b.op(`mov dword fs:[${hex(o)}], ${hex(v)}`, [0x64, 0xc7, 0x05, ...u32(o), ...u32(v)], true); }
      }
    }
  }
  b.endPiece();
  const make = (pieces: Op[][]): SysProgram => {
    const l = layout(pieces);
    const image = new Uint8Array(img.length + l.bytes.length);
    image.set(img);
    image.set(l.bytes, img.length);
    return { seed, image, ops: l.ops, pieceCount: pieces.length, subset: (keep) => make(keep.map((k) => pieces[k])) };
  };
  return make(b.pieces);
}

/** Run a system program under vmxlab; returns what it wrote to port 0xE9. */
export function runSysVmx(p: SysProgram, engine: EngineName): { dump: Uint8Array; note?: string } {
  const m = new Machine({ mode: "protected", memSize: SYS_MEM, engine, devices: { serial: false } });
  m.load(p.image, { format: "multiboot" });
  let ended = false;
  m.onIo({ port: 0xf4, direction: "out", name: "debug-exit", handler: (_io, ctx) => { ended = true; ctx.stop("debug-exit"); } });
  let note: string | undefined;
  try {
    const res = m.run({ budget: 20_000_000 });
    if (!ended) note = `run ended with ${JSON.stringify(res.exit)}`;
  } catch (e) {
    note = `host exception: ${e instanceof Error ? e.message : String(e)}`;
  }
  return { dump: m.takeConsole(), note };
}

/** The QEMU binary the oracle runs (override with QEMU=path). */
export function qemuPath(): string {
  return (typeof process !== "undefined" && process.env.QEMU) || "qemu-system-i386";
}
import process from "node:process";

/** Run a system program in QEMU TCG; returns what it wrote to port 0xE9. */
export function runSysQemu(p: SysProgram): { dump: Uint8Array; note?: string } {
  const dir = mkdtempSync(join(tmpdir(), "vmxlab-qemu-"));
  try {
    const kernel = join(dir, "kernel.bin"), out = join(dir, "e9.bin");
    writeFileSync(kernel, p.image);
    const r = spawnSync(qemuPath(), [
      "-accel", "tcg", "-cpu", "pentium3", "-m", "64", "-kernel", kernel, "-display", "none", "-serial", "none", "-monitor", "none",
      "-parallel", "none", "-nodefaults", "-no-reboot", "-debugcon", `file:${out}`, "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
    ], { timeout: 30_000 });
    if (r.error) throw new Error(`Cannot run ${qemuPath()}: ${r.error.message}`);
    // isa-debug-exit ends QEMU with status (value << 1) | 1 = 1.
    const note = r.status === 1 ? undefined : `qemu exited with status ${r.status}: ${r.stderr?.toString().trim()}`;
    let dump = new Uint8Array(0);
    try { dump = new Uint8Array(readFileSync(out)); } catch { /* no output */ }
    return { dump, note };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The words of a dump (after "VMXO" and the length), or an error string. */
export function dumpWords(d: Uint8Array): number[] | string {
  if (d.length < 8) return `dump too short (${d.length} bytes)`;
  const dv = new DataView(d.buffer, d.byteOffset, d.length);
  if (dv.getUint32(0, true) !== 0x4f584d56) return "dump does not start with VMXO";
  const len = dv.getUint32(4, true);
  if (len !== d.length) return `dump length ${len} but ${d.length} bytes arrived`;
  const w: number[] = [];
  for (let o = 8; o + 4 <= d.length; o += 4) w.push(dv.getUint32(o, true));
  return w;
}

/** The tail of a dump: CR0, CR4, PD[16], 3 x 8 PTEs, the GDT's 30 words, 16 frame checksums. */
const GDT_WORDS = 30;
const TAIL = 2 + 16 + 24 + GDT_WORDS + 16;
const TAIL_NAMES = ["cr0", "cr4", ...Array.from({ length: 16 }, (_, i) => `pde[${i}]`),
  ...[0, 1, 2].flatMap((w) => Array.from({ length: 8 }, (_, k) => `pte ${hex(WINDOWS[w] + k * 0x1000)}`)),
  ...Array.from({ length: GDT_WORDS }, (_, i) => `gdt[0x${(i * 4).toString(16)}]`), ...Array.from({ length: 16 }, (_, i) => `frame ${i} checksum`)];

/** Compare two dumps: null when equal, else a description (the first differing words, named). */
export function compareDumps(expected: Uint8Array, actual: Uint8Array): string | null {
  const e = dumpWords(expected), a = dumpWords(actual);
  if (typeof e === "string") return `expected: ${e}`;
  if (typeof a === "string") return `vmxlab: ${a}`;
  const name = (w: number[], k: number) => k >= w.length - TAIL ? TAIL_NAMES[k - (w.length - TAIL)] : `log[${k}]`;
  const out: string[] = [];
  if (e.length !== a.length) out.push(`log length: expected ${e.length - TAIL} words, vmxlab ${a.length - TAIL}`);
  const n = Math.min(e.length, a.length);
  for (let k = 0; k < n && out.length < 6; k++) {
    if (e[k] !== a[k]) out.push(`${name(e, k)}: expected ${hex(e[k])}, vmxlab ${hex(a[k])} (${name(a, k)})`);
  }
  return out.length ? out.join("; ") : null;
}

/** The program's log as readable lines (faults as vector, error code, CR2, EIP). */
export function describeLog(d: Uint8Array): string[] {
  const w = dumpWords(d);
  if (typeof w === "string") return [w];
  const log = w.slice(0, w.length - TAIL), lines: string[] = [];
  for (let k = 0; k < log.length; k++) {
    if ((log[k] & 0xffffff00) === 0xfa000000 && k + 3 < log.length) {
      lines.push(`#${log[k] & 0xff} error ${hex(log[k + 1])} cr2 ${hex(log[k + 2])} eip ${hex(log[k + 3])}`);
      k += 3;
    } else lines.push(hex(log[k]));
  }
  return lines;
}

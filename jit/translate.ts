/**
 * Translation of a region (the blocks of one linear page reachable from a hot block) into one
 * binaryen module with one function, `run(entry, fuel) → retired`. See jit/DESIGN.md.
 *
 * Every translated instruction mirrors its semantic function in runtime/cpu/ops.ts: the same reads
 * in the same order, the same lazy-flag record, the same values. Whatever it cannot prove, it hands
 * back to the interpreter *before* the instruction ("bail"): the locals still hold the state before
 * it, and the exit writes them back.
 */
import type { Block } from "../runtime/cpu/cpu.ts";
import * as flagsMod from "../runtime/cpu/flags.ts";
import type { FlagAlu } from "../runtime/cpu/flags.ts";
import * as insnMod from "../runtime/cpu/insn.ts";
import { type Insn } from "../runtime/cpu/insn.ts";
import { ioQualification, type SemName, semantics } from "../runtime/cpu/ops.ts";
import { SEM_TIER, type Tier } from "../runtime/cpu/tiers.ts";
import * as stateMod from "../runtime/cpu/state.ts";
import type { Binaryen } from "./_binaryen.ts";
import { structure } from "./structure.ts";

// Module-local bindings of the constant tables: V8 folds a module's own consts into optimised code
// but reads an imported binding from its module cell, with a TDZ check, at every use (DESIGN-NOTES.md).
const { OpKind } = insnMod;
const { Fl, Seg, St, TLB_ENTRIES, TLB_HOST, TLB_TAG_R, TLB_TAG_W } = stateMod;
const { CARRY_KINDS, carryOf, EFLAGS_RESERVED_ZERO, EFLAGS_WRITABLE, LAZY_ALL, LAZY_NO_CF, LAZY_RES, LF, OVERFLOW_CLASSES, overflowWord } = flagsMod;

type Ref = number;

/** The segment-cache values a region was compiled against (checked at entry by the runner). */
export interface SegSnap {
  base: number;
  lo: number;
  hi: number;
  noWrite: number;
}

/** One block of a region: the interpreter's block, the EIP it runs at, and its page's host address. */
export interface RegionBlock {
  blk: Block;
  eip: number;
  /**
   * Host address of the start of the block's linear page at compile time (the fetch TLB entry): an
   * edge into the block from another page checks that the entry still says so.
   */
  host: number;
}

export interface RegionSpec {
  /** Byte offset of the vCPU area (state block, then the TLB) in the VM memory. */
  area: number;
  code32: boolean;
  stack32: boolean;
  segs: SegSnap[];
  blocks: RegionBlock[];
  /** Call the interpreter's semantic function for non-terminal instructions outside the subset (else end the block). */
  callout: boolean;
  /**
   * Make every block an entry of run() (a switch on `entry`). Off, the region has one entry, block
   * 0, and the relooper gives plain nested loops; with several entries every loop became a
   * label-dispatch loop (2-3x slower). On is the fallback for graphs binaryen's relooper rejects
   * from a single entry (seen on call/return webs).
   */
  allEntries?: boolean;
  /**
   * Retired instructions after which a run leaves at the region's entry block (the runner's chunk
   * between deadline checks). The exact budget, `fuel`, is checked at every block; this softer
   * bound is checked only at the entry, so a run usually ends where the next one can enter the
   * same region, instead of at an inner block that would need a region of its own.
   */
  softChunk?: number;
}

/** What the translator made of each block. */
export interface TranslatedBlock {
  blk: Block;
  eip: number;
  /** Linear page of `eip`, and its host address at compile time (RegionBlock.host). */
  page: number;
  host: number;
  /** Instructions compiled (translated or called out); the block is compiled when > 0. */
  cut: number;
  /** Index passed as `entry` to run(), or -1 when the block was not compiled. */
  index: number;
  /**
   * Fuel a run entering here needs (its budget check: the longest path to the next check), or 0
   * when the block has no check (it is not an entry of run()).
   */
  need: number;
}

export interface Translation {
  module: InstanceType<Binaryen["Module"]>;
  blocks: TranslatedBlock[];
  /** Bit s set when segment s is addressed (its snapshot must hold at entry). */
  usedSegs: number;
  /** Instructions translated inline and called out, for stats. */
  inline: number;
  callouts: number;
  /** EIPs of blocks entered through a TLB-guarded edge from another page (a failed guard exits there). */
  guarded: Set<number>;
  /** The IN/OUT instructions the code leaves at for the runner to execute (run()'s result names one). */
  exitSites: ExitSite[];
}

/**
 * An IN or OUT: instruction `k` of compiled block `index`, at `eip`, `len` bytes; its exit
 * qualification without the port, and the port of the immediate form (-1: DX), for Cpu.ioExitFast.
 */
export interface ExitSite {
  /** The interpreter's block holding it: where the run loop resumes through its links. */
  blk: Block;
  index: number;
  k: number;
  eip: number;
  len: number;
  qual: number;
  port: number;
}

const S = semantics;
/** The semantic functions of each tier (runtime/cpu/tiers.ts, the opcode table's data). */
function ofTier(t: Tier): Set<unknown> {
  return new Set((Object.keys(SEM_TIER) as SemName[]).filter((n) => SEM_TIER[n] === t).map((n) => semantics[n]));
}
/** Semantic functions translated inline. */
const NATIVE = ofTier("native");
/** Semantic functions called, ending the run at the VM exit they may record. */
const EXIT_CALLS = ofTier("exit");
/** Native instructions that transfer control (the others continue at the next instruction). */
const TRANSFERS = new Set<unknown>([S.jcc, S.jmp, S.jmpNear, S.call, S.callNear, S.ret]);

/** Whether `i` is translated inline. */
export function isNative(i: Insn): boolean {
  if (!NATIVE.has(i.exec)) return false;
  if (i.exec === S.pop && i.dk !== OpKind.REG) return false; // POP Ev: the address uses the popped ESP
  if (i.exec === S.shift && (i.sub === 2 || i.sub === 3)) return false; // RCL/RCR: called out
  if (i.exec === S.ret && i.opcode !== 0xc3 && i.opcode !== 0xc2) return false;
  // REP string instructions: the interpreter's iteration and budget rules (each element retires).
  if ((i.exec === S.lods || i.exec === S.stos || i.exec === S.movs) && i.rep !== 0) return false;
  return true;
}

/**
 * IN and OUT (not the string forms): translated as a call of the interpreter's own semantic function
 * that may record the VM exit (IO exiting), after which the run ends at the instruction as the
 * interpreter's does; without an exit the code goes on. The OUT loop then costs one run of compiled
 * code per exit instead of a run, a return to the run loop and an interpreted one-instruction block.
 */
export function isExitCall(i: Insn): boolean {
  return EXIT_CALLS.has(i.exec);
}

/** The static successors of a fully compiled block (for region discovery). */
export function successors(rb: RegionBlock): number[] {
  const { blk, eip } = rb;
  const last = blk.insns[blk.insns.length - 1];
  const next = ((eip + last.nextOff) & blk.ipMask) >>> 0;
  if (isExitCall(last)) return [next];
  if (!isNative(last)) return last.terminal ? [] : [next];
  const target = ((next + last.imm) & (last.osz === 4 ? -1 : 0xffff)) >>> 0;
  if (last.exec === S.jcc) return [target, next];
  if (last.exec === S.jmp) return [target];
  if (last.exec === S.call) return [target, next];
  if (last.exec === S.callNear) return [next];
  if (last.terminal && TRANSFERS.has(last.exec)) return [];
  return [next];
}

/** The return site of a block that ends in a CALL (where the callee's RET comes back to), else -1. */
export function callReturnSite(rb: RegionBlock): number {
  const { blk, eip } = rb;
  const last = blk.insns[blk.insns.length - 1];
  if (!isNative(last) || (last.exec !== S.call && last.exec !== S.callNear)) return -1;
  return ((eip + last.nextOff) & blk.ipMask) >>> 0;
}

// Locals of run(): params, then fixed locals, then temporaries.
const P_ENTRY = 0, P_FUEL = 1, R0 = 2, L_OP = 10, L_RES = 11, L_DST = 12, L_SRC = 13, L_MASK = 14, L_FL = 15;
const L_RETIRED = 16, L_EXITRIP = 17, L_COND = 18, L_TGT = 19, L_LABEL = 20, L_SITE = 21, FIRST_TEMP = 22;
/** run() returns the instructions retired in its low SITE_SHIFT bits, and above them an exit site + 1 (or 0). */
export const SITE_SHIFT = 21;

/** The most fuel a budget check asks for (longer straight-line paths get more checks). */
const MAX_NEED = 256;


/** What the translator knows statically about the last flag producer (null: only the locals know). */
interface Producer {
  op: number;
  bits: number;
  mask: number;
  /** CF and OF are known to be 0 (logic operations). */
  cfof0: boolean;
}

/**
 * Translate a region. The returned module is not yet validated or compiled.
 * @param b binaryen
 * @param spec the blocks and the compile-time assumptions
 */
export function translateRegion(b: Binaryen, spec: RegionSpec): Translation {
  const m = acquireModule(b);
  try {
    return translateInto(b, m, spec);
  } catch (e) {
    // An abort leaves binaryen's instance suspect (engine.ts stops using it): drop the module
    // without calling into it again. Anything else: dispose of it.
    if (e instanceof WebAssembly.RuntimeError) abandonModule(m);
    else discardModule(m);
    throw e;
  }
}

function translateInto(b: Binaryen, m: BinaryenModule, spec: RegionSpec): Translation {
  const i32 = b.i32, i64 = b.i64, none = b.none;

  const area = spec.area;
  const vars: number[] = [];
  for (let k = 2; k < FIRST_TEMP; k++) vars.push(i32);
  const freeTemps: number[] = [];
  const usedTemps: number[] = [];
  let usedSegs = 1 << Seg.CS;
  let inline = 0, callouts = 0;
  /** Whether any code calls `$flags` (EFLAGS from an unknown producer): only then is it added. */
  let flagsUsed = false;
  const guarded = new Set<number>();
  const exitSites: ExitSite[] = [];
  const temp = (): number => {
    const t = freeTemps.pop() ?? (vars.push(i32), vars.length + 1);
    usedTemps.push(t);
    return t;
  };
  const temp64 = (): number => {
    vars.push(i64);
    return vars.length + 1;
  };
  const releaseTemps = () => {
    while (usedTemps.length) freeTemps.push(usedTemps.pop()!);
  };
  const c32 = (v: number) => m.i32.const(v | 0);
  /** An i64 constant from an integer-valued number (binaryen 132 takes a bigint). */
  const k64 = (v: number) => m.i64.const(BigInt(v));
  // The register and flag locals (R0..L_FL) the code reads or writes: the run loads only those at
  // entry and stores only the written ones at its exit (see reload and writeBack), which shortens every run.
  let usedState = 0, writtenState = 0;
  const get = (l: number) => {
    if (l >= R0 && l <= L_FL) usedState |= 1 << (l - R0);
    return m.local.get(l, i32);
  };
  const set = (l: number, v: Ref) => {
    if (l >= R0 && l <= L_FL) {
      usedState |= 1 << (l - R0);
      writtenState |= 1 << (l - R0);
    }
    return m.local.set(l, v);
  };

  // Which blocks compile, and how far. The interpreter's blocks overlap (a block entered above a
  // jump target runs on through it), so a block is cut where another compiled block of the region
  // starts and falls into it: no instruction is translated twice, and a loop entered both at its
  // head and from above stays one loop (two copies of its head made the graph irreducible).
  const rawCut = (blk: Block): number => {
    let cut = 0;
    for (const ins of blk.insns) {
      if (isNative(ins) || isExitCall(ins) || (spec.callout && !ins.terminal)) cut++;
      else break;
    }
    return cut;
  };
  const starts = new Set<number>();
  for (const rb of spec.blocks) if (rawCut(rb.blk) > 0) starts.add(rb.eip >>> 0);
  const tblocks: TranslatedBlock[] = [];
  const byEip = new Map<number, TranslatedBlock>();
  for (const rb of spec.blocks) {
    let cut = rawCut(rb.blk);
    for (let k = 0; k + 1 < cut; k++) {
      if (starts.has(((rb.eip + rb.blk.insns[k].nextOff) & rb.blk.ipMask) >>> 0)) { cut = k + 1; break; }
    }
    const tb: TranslatedBlock = { blk: rb.blk, eip: rb.eip >>> 0, page: ((spec.segs[Seg.CS].base + rb.eip) | 0) >>> 12, host: rb.host, cut, index: -1, need: 0 };
    tblocks.push(tb);
    if (cut > 0 && !byEip.has(tb.eip)) {
      tb.index = byEip.size;
      byEip.set(tb.eip, tb);
    }
  }
  const compiled = tblocks.filter((t) => t.index >= 0);
  // The region's entry does not compile: nothing to translate (the caller disposes the module).
  if (tblocks[0].index !== 0) return { module: m, blocks: tblocks, usedSegs, inline, callouts, guarded, exitSites };

  // Candidates for each RET: the return sites of the direct calls whose callee reaches that RET
  // without passing through another call (a small call graph of the region). Offering every
  // return site to every RET tied unrelated functions together, and a RET of one function could
  // "enter" another's loop from the side, which made the graph irreducible.
  const retCands = new Map<TranslatedBlock, number[]>();
  {
    const lastOf = (tb: TranslatedBlock) => tb.blk.insns[tb.cut - 1];
    const nextOf = (tb: TranslatedBlock) => ((tb.eip + lastOf(tb).nextOff) & tb.blk.ipMask) >>> 0;
    /** Successors within the same function: the discovery edges, except that a call continues at its return site. */
    const intra = (tb: TranslatedBlock): number[] => {
      const next = nextOf(tb);
      if (tb.cut < tb.blk.insns.length) return byEip.has(next) ? [next] : []; // split, or untranslated
      return lastOf(tb).exec === S.call ? [next] : successors(tb);
    };
    const sitesOf = new Map<number, number[]>(); // callee eip -> return sites
    for (const tb of compiled) {
      if (tb.cut !== tb.blk.insns.length || lastOf(tb).exec !== S.call) continue;
      const last = lastOf(tb), next = nextOf(tb);
      const callee = ((next + last.imm) & (last.osz === 4 ? -1 : 0xffff)) >>> 0;
      if (!byEip.has(next) || !byEip.has(callee)) continue;
      const list = sitesOf.get(callee) ?? [];
      if (!list.includes(next)) list.push(next);
      sitesOf.set(callee, list);
    }
    for (const [callee, sites] of sitesOf) {
      const seen = new Set<TranslatedBlock>([byEip.get(callee)!]);
      const work = [byEip.get(callee)!];
      while (work.length) {
        const tb = work.pop()!;
        if (tb.cut === tb.blk.insns.length && lastOf(tb).exec === S.ret) {
          const c = retCands.get(tb) ?? [];
          for (const r of sites) if (!c.includes(r) && c.length < 8) c.push(r);
          retCands.set(tb, c);
        }
        for (const t of intra(tb)) {
          const x = byEip.get(t);
          if (x !== undefined && !seen.has(x)) { seen.add(x); work.push(x); }
        }
      }
    }
  }

  interface Pending { from: TranslatedBlock; kind: "cond" | "jump" | "indirect" | "fall"; taken?: number; fall?: number; cands?: number[] }
  const pending: Pending[] = [];
  const bodies = new Map<TranslatedBlock, Ref[]>();

  for (const tb of compiled) {
    const { blk, eip } = tb;
    const out: Ref[] = [];
    let prod: Producer | null = null;
    const ipMaskB = blk.ipMask;
    // The budget prologue is added once the region's loops are known (below). Validity is the
    // runner's business: every invalidation during a run ends the run (cpu.stop), and a region
    // with an invalidated block is never entered again.
    let endKind: Pending | null = null;

    for (let k = 0; k < tb.cut; k++) {
      const ins = blk.insns[k];
      const insEip = ((eip + ins.nextOff - ins.len) & ipMaskB) >>> 0;
      const nextEip = ((eip + ins.nextOff) & ipMaskB) >>> 0;
      releaseTemps();
      const bail = (): Ref => m.block(null, [
        set(L_RETIRED, m.i32.add(get(L_RETIRED), c32(k))),
        set(L_EXITRIP, c32(insEip)),
        m.br("exit"),
      ]);

      // ---- registers ----
      const getReg = (idx: number, size: number): Ref => {
        if (size === 4) return get(R0 + (idx >> 1));
        if (size === 2) return m.i32.and(get(R0 + (idx >> 2)), c32(0xffff));
        const r = R0 + (idx >> 3);
        return (idx & 1) ? m.i32.and(m.i32.shr_u(get(r), c32(8)), c32(0xff)) : m.i32.and(get(r), c32(0xff));
      };
      const setReg = (idx: number, size: number, v: Ref): Ref => {
        if (size === 4) return set(R0 + (idx >> 1), v);
        if (size === 2) {
          const r = R0 + (idx >> 2);
          return set(r, m.i32.or(m.i32.and(get(r), c32(0xffff0000)), m.i32.and(v, c32(0xffff))));
        }
        const r = R0 + (idx >> 3);
        if (idx & 1) return set(r, m.i32.or(m.i32.and(get(r), c32(~0xff00)), m.i32.shl(m.i32.and(v, c32(0xff)), c32(8))));
        return set(r, m.i32.or(m.i32.and(get(r), c32(~0xff)), m.i32.and(v, c32(0xff))));
      };
      /** Evaluate into a fresh temp; returns the temp. */
      const tmp = (v: Ref): number => {
        const t = temp();
        out.push(set(t, v));
        return t;
      };

      // ---- memory ----
      /** The effective address (ops.ts ea). */
      const ea = (): Ref => {
        let a: Ref = c32(ins.disp);
        if (ins.base >= 0) a = m.i32.add(a, get(R0 + ins.base));
        if (ins.index >= 0) a = m.i32.add(a, m.i32.shl(get(R0 + ins.index), c32(ins.scale)));
        return ins.asz === 4 ? a : m.i32.and(a, c32(0xffff));
      };
      /**
       * The host address of seg:off for `size` bytes (cpu.ts lin + rdLin/wrLin fast path), with
       * every fault, MMIO, straddle and code-page write bailing. Pushes statements; returns a local.
       */
      const hostOf = (seg: number, off: Ref, size: number, write: boolean): number => {
        usedSegs |= 1 << seg;
        const sn = spec.segs[seg];
        const o = tmp(off);
        if (sn.lo > sn.hi) { out.push(bail()); return o; }
        if (sn.lo === 0 && sn.hi >= 0xffffffff) {
          if (size > 1) out.push(m.if(m.i32.gt_u(get(o), c32(0xffffffff - (size - 1))), bail()));
        } else if (sn.lo === 0) {
          if (sn.hi < size - 1) out.push(bail());
          else out.push(m.if(m.i32.gt_u(get(o), c32(sn.hi - (size - 1))), bail()));
        } else {
          const o64 = () => m.i64.extend_u(get(o));
          out.push(m.if(m.i32.or(
            m.i64.lt_u(o64(), k64(sn.lo >>> 0)),
            m.i64.gt_u(m.i64.add(o64(), k64(size - 1)), k64(sn.hi)),
          ), bail()));
        }
        const la = sn.base === 0 ? o : tmp(m.i32.add(get(o), c32(sn.base)));
        const e = tmp(m.i32.and(m.i32.shr_u(get(la), c32(10)), c32(0x3ffc)));
        const h = temp();
        // A hit when the entry for la's page holds the page of the access's last byte: that is la's
        // page and no straddle, since the direct-mapped TLB never holds page P+1 at P's entry.
        const last = size > 1 ? m.i32.add(get(la), c32(size - 1)) : get(la);
        const hit: Ref = m.i32.eq(m.i32.load(area + (write ? TLB_TAG_W : TLB_TAG_R), 4, get(e)), m.i32.shr_u(last, c32(12)));
        out.push(m.if(hit,
          set(h, m.i32.add(m.i32.load(area + TLB_HOST, 4, get(e)), m.i32.and(get(la), c32(0xfff)))),
          m.block(null, [
            set(h, m.call("slow", [get(la), c32(size), c32(write ? 1 : 0)], i32)),
            m.if(m.i32.lt_s(get(h), c32(0)), bail()),
          ]),
        ));
        return h;
      };
      const load = (h: number, size: number): Ref =>
        size === 4 ? m.i32.load(0, 1, get(h)) : size === 2 ? m.i32.load16_u(0, 1, get(h)) : m.i32.load8_u(0, 1, get(h));
      const store = (h: number, size: number, v: Ref): Ref =>
        size === 4 ? m.i32.store(0, 1, get(h), v) : size === 2 ? m.i32.store16(0, 1, get(h), v) : m.i32.store8(0, 1, get(h), v);
      /** Read seg:off (cpu.rd): returns a local holding the value. */
      const rd = (seg: number, off: Ref, size: number): number => {
        const h = hostOf(seg, off, size, false);
        return tmp(load(h, size));
      };
      const wr = (seg: number, off: Ref, size: number, v: Ref): void => {
        const h = hostOf(seg, off, size, true);
        out.push(store(h, size, v));
      };
      const writable = (seg: number): boolean => {
        usedSegs |= 1 << seg;
        if (spec.segs[seg].noWrite) { out.push(bail()); return false; }
        return true;
      };

      // ---- stack (cpu.ts push/peek/adjustSp) ----
      const ESP = R0 + 4;
      const spNow = (): Ref => spec.stack32 ? get(ESP) : m.i32.and(get(ESP), c32(0xffff));
      const spPlus = (d: number): Ref => spec.stack32
        ? m.i32.add(get(ESP), c32(d))
        : m.i32.or(m.i32.and(get(ESP), c32(0xffff0000)), m.i32.and(m.i32.add(get(ESP), c32(d)), c32(0xffff)));
      /** Push: writes memory now; returns the ESP commit. */
      const push = (v: Ref, size: number): Ref => {
        const sp = tmp(spec.stack32 ? m.i32.sub(get(ESP), c32(size)) : m.i32.and(m.i32.sub(get(ESP), c32(size)), c32(0xffff)));
        wr(Seg.SS, get(sp), size, v);
        return set(ESP, spec.stack32 ? get(sp) : m.i32.or(m.i32.and(get(ESP), c32(0xffff0000)), get(sp)));
      };

      // ---- flags (cpu.ts setLazy and friends) ----
      const setLazy = (op: number, bits: number, res: Ref, dst: Ref, src: Ref, mask: number): void => {
        out.push(set(L_OP, c32(op | (bits << 8))), set(L_RES, res), set(L_DST, dst), set(L_SRC, src), set(L_MASK, c32(mask)));
        prod = { op, bits, mask, cfof0: false };
      };
      const flagsCall = (): Ref => {
        flagsUsed = true;
        return m.call("flags", [get(L_OP), get(L_RES), get(L_DST), get(L_SRC), get(L_MASK), get(L_FL)], i32);
      };
      const maskOf = (bits: number) => bits === 32 ? -1 : (1 << bits) - 1;
      const masked = (l: number, bits: number): Ref => bits === 32 ? get(l) : m.i32.and(get(l), c32(maskOf(bits)));
      // CF and OF of a known producer: the formulas of runtime/cpu/flags.ts over expressions.
      const alu = exprAlu(m);
      const lazyCF = (p: Producer): Ref =>
        carryOf(alu, p.op, () => masked(L_RES, p.bits), () => masked(L_DST, p.bits), () => masked(L_SRC, p.bits))();
      const lazyOF = (p: Producer): Ref =>
        m.i32.and(m.i32.shr_u(overflowWord(alu, p.op, () => get(L_RES), () => get(L_DST), () => get(L_SRC))(), c32(p.bits - 1)), c32(1));
      const flBit = (bit: number): Ref => m.i32.and(m.i32.shr_u(get(L_FL), c32(bit)), c32(1));
      /** CF with the producer unknown: the record's mask says whether it is lazy at all (often not, after INC/DEC). */
      const unknownCF = (): Ref => m.if(m.i32.and(get(L_MASK), c32(Fl.CF)), m.i32.and(flagsCall(), c32(1)), m.i32.and(get(L_FL), c32(1)));
      const getCF = (): Ref => {
        const p = prod as Producer | null;
        if (p === null) return unknownCF();
        if (p.mask & Fl.CF) return lazyCF(p);
        return p.cfof0 ? c32(0) : flBit(0);
      };
      /** Condition `cc` (cpu.ts cond) as 0/1. */
      const cond = (cc: number): Ref => {
        const p = prod as Producer | null;
        let r: Ref;
        if (p === null) {
          const f = tmp(flagsCall());
          const bit = (n: number) => m.i32.and(m.i32.shr_u(get(f), c32(n)), c32(1));
          switch (cc >> 1) {
            case 0: r = bit(11); break;
            case 1: r = bit(0); break;
            case 2: r = bit(6); break;
            case 3: r = m.i32.or(bit(0), bit(6)); break;
            case 4: r = bit(7); break;
            case 5: r = bit(2); break;
            case 6: r = m.i32.xor(bit(7), bit(11)); break;
            default: r = m.i32.or(m.i32.xor(bit(7), bit(11)), bit(6)); break;
          }
        } else if (p.op === LF.SUB && p.mask === LAZY_ALL && (cc >> 1) !== 0 && (cc >> 1) !== 5 && (cc >> 1) !== 4) {
          // CMP/SUB: compare the operands directly (the identities behind the SDM's Jcc table).
          const sx = (l: number) => p.bits === 32 ? get(l) : p.bits === 16 ? m.i32.extend16_s(get(l)) : m.i32.extend8_s(get(l));
          switch (cc >> 1) {
            case 1: r = m.i32.lt_u(masked(L_DST, p.bits), masked(L_SRC, p.bits)); break;
            case 2: r = m.i32.eq(masked(L_DST, p.bits), masked(L_SRC, p.bits)); break;
            case 3: r = m.i32.le_u(masked(L_DST, p.bits), masked(L_SRC, p.bits)); break;
            case 6: r = m.i32.lt_s(sx(L_DST), sx(L_SRC)); break;
            default: r = m.i32.le_s(sx(L_DST), sx(L_SRC)); break;
          }
        } else {
          const zf = (): Ref => p.mask & Fl.ZF ? m.i32.eqz(masked(L_RES, p.bits)) : flBit(6);
          const sf = (): Ref => p.mask & Fl.SF ? m.i32.and(m.i32.shr_u(get(L_RES), c32(p.bits - 1)), c32(1)) : flBit(7);
          const of = (): Ref => p.mask & Fl.OF ? lazyOF(p) : p.cfof0 ? c32(0) : flBit(11);
          const cf = (): Ref => p.mask & Fl.CF ? lazyCF(p) : p.cfof0 ? c32(0) : flBit(0);
          const pf = (): Ref => p.mask & Fl.PF ? m.i32.eqz(m.i32.and(m.i32.popcnt(m.i32.and(get(L_RES), c32(0xff))), c32(1))) : flBit(2);
          switch (cc >> 1) {
            case 0: r = of(); break;
            case 1: r = cf(); break;
            case 2: r = zf(); break;
            case 3: r = m.i32.or(cf(), zf()); break;
            case 4: r = sf(); break;
            case 5: r = pf(); break;
            case 6: r = m.i32.xor(sf(), of()); break;
            default: r = m.i32.or(m.i32.xor(sf(), of()), zf()); break;
          }
        }
        return cc & 1 ? m.i32.xor(r, c32(1)) : r;
      };
      const flagsLogic = (bits: number, res: Ref) => {
        out.push(set(L_FL, m.i32.and(get(L_FL), c32(~(Fl.CF | Fl.OF | Fl.AF)))));
        setLazy(LF.RES, bits, res, c32(0), c32(0), LAZY_RES);
        prod!.cfof0 = true;
      };
      /** flagsResult: CF, OF explicit (AF = 0), ZF SF PF lazy from the result. */
      const flagsResult = (bits: number, res: Ref, cf: Ref, of: Ref) => {
        out.push(set(L_FL, m.i32.or(m.i32.and(get(L_FL), c32(~(Fl.CF | Fl.OF | Fl.AF))), m.i32.or(cf, m.i32.shl(of, c32(11))))));
        setLazy(LF.RES, bits, res, c32(0), c32(0), LAZY_RES);
      };
      /** setCfOf (ops.ts): materialise EFLAGS, replace CF and OF, write them back whole (setFlags). */
      const setCfOf = (cf: Ref, of: Ref) => {
        const f = tmp(flagsCall());
        const v = m.i32.or(m.i32.and(get(f), c32(~(Fl.CF | Fl.OF))), m.i32.or(cf, m.i32.shl(of, c32(11))));
        out.push(set(L_FL, m.i32.and(m.i32.and(m.i32.or(v, c32(Fl.FIXED1)), c32(~EFLAGS_RESERVED_ZERO)), c32(EFLAGS_WRITABLE))));
        out.push(set(L_MASK, c32(0)));
        prod = { op: LF.NONE, bits: 32, mask: 0, cfof0: false };
      };

      const commits: Ref[] = [];
      const native = isNative(ins);
      if (isExitCall(ins) || !native) {
        // ---- the interpreter's own semantic function (a callout), or an IN/OUT exit site ----
        const exitCall = isExitCall(ins);
        if (exitCall) {
          // An exit site: the run ends before the instruction and names it in its result, and the
          // runner executes it in TypeScript (jit/engine.ts runBlock). With IO exiting on, which KVM
          // always sets, IN and OUT exit anyway: leaving here costs no wasm-to-JavaScript call.
          exitSites.push({ blk: tb.blk, index: tb.index, k, eip: insEip, len: ins.len, ...ioQualification(ins) });
          out.push(
            set(L_RETIRED, m.i32.add(get(L_RETIRED), c32(k))),
            set(L_EXITRIP, c32(insEip)),
            set(L_SITE, c32(exitSites.length)),
            m.br("exit"),
          );
          prod = null;
          continue;
        }
        callouts++;
        const st = temp();
        out.push(...writeBack(m, area, false, i32));
        out.push(set(st, m.call("callout", [c32(tb.index), c32(k)], i32)));
        out.push(...reload(m, area));
        out.push(m.if(m.i32.eq(get(st), c32(1)), bail()));
        out.push(m.if(m.i32.eq(get(st), c32(2)), m.block(null, [
          set(L_RETIRED, m.i32.add(get(L_RETIRED), c32(k + 1))),
          set(L_EXITRIP, c32(nextEip)),
          m.br("exit"),
        ])));
        prod = null;
        continue;
      }
      inline++;
      const size = ins.size, bits = size * 8;
      const ex = ins.exec;
      const REG = OpKind.REG, MEM = OpKind.MEM, IMM = OpKind.IMM;
      /** readSrc (ops.ts). */
      const readSrc = (sz: number): Ref => {
        if (ins.sk === IMM) return c32(ins.imm);
        if (ins.sk === REG) return getReg(ins.sr, sz);
        return get(rd(ins.seg, ea(), sz));
      };

      if (ex === S.alu || ex === S.test || ex === S.incdec || ex === S.not || ex === S.neg) {
        let h = -1, a: number;
        const rmw = ex !== S.test && !(ex === S.alu && ins.sub === 7);
        if (ins.dk === MEM) {
          if (rmw && !writable(ins.seg)) continue;
          h = hostOf(ins.seg, ea(), size, false);
          a = tmp(load(h, size));
        } else a = tmp(getReg(ins.dr, size));
        let r: number;
        if (ex === S.test) {
          const bv = ins.sk === IMM ? c32(ins.imm) : ins.sk === REG ? getReg(ins.sr, size) : c32(0);
          r = tmp(m.i32.and(get(a), bv));
          flagsLogic(bits, get(r));
        } else if (ex === S.incdec) {
          r = tmp(ins.sub ? m.i32.sub(get(a), c32(1)) : m.i32.add(get(a), c32(1)));
        } else if (ex === S.not) {
          r = tmp(m.i32.xor(get(a), c32(-1)));
        } else if (ex === S.neg) {
          r = tmp(m.i32.sub(c32(0), get(a)));
        } else {
          const bv = tmp(readSrc(size));
          switch (ins.sub) {
            case 0: r = tmp(m.i32.add(get(a), get(bv))); setLazy(LF.ADD, bits, get(r), get(a), get(bv), LAZY_ALL); break;
            case 1: r = tmp(m.i32.or(get(a), get(bv))); flagsLogic(bits, get(r)); break;
            case 2: case 3: {
              const cin = tmp(getCF());
              r = tmp(ins.sub === 2
                ? m.i32.add(m.i32.add(get(a), get(bv)), get(cin))
                : m.i32.sub(m.i32.sub(get(a), get(bv)), get(cin)));
              const op0 = ins.sub === 2 ? LF.ADD : LF.SUB, op1 = ins.sub === 2 ? LF.ADC1 : LF.SBB1;
              // With the commits, after the memory write: a write that bails must leave the carry
              // this instruction reads untouched for the interpreter's re-execution.
              commits.push(set(L_OP, m.select(get(cin), c32(op1 | (bits << 8)), c32(op0 | (bits << 8)))),
                set(L_RES, get(r)), set(L_DST, get(a)), set(L_SRC, get(bv)), set(L_MASK, c32(LAZY_ALL)));
              prod = null;
              break;
            }
            case 4: r = tmp(m.i32.and(get(a), get(bv))); flagsLogic(bits, get(r)); break;
            case 5: case 7: r = tmp(m.i32.sub(get(a), get(bv))); setLazy(LF.SUB, bits, get(r), get(a), get(bv), LAZY_ALL); break;
            default: r = tmp(m.i32.xor(get(a), get(bv))); flagsLogic(bits, get(r)); break;
          }
        }
        if (rmw) {
          if (ins.dk === MEM) wr(ins.seg, ea(), size, get(r));
          else commits.push(setReg(ins.dr, size, get(r)));
        }
        if (ex === S.incdec) {
          // materializeCF, then the INC/DEC record (CF kept).
          const p = prod as Producer | null;
          if (p === null) {
            out.push(m.if(m.i32.and(get(L_MASK), c32(Fl.CF)),
              set(L_FL, m.i32.or(m.i32.and(get(L_FL), c32(~1)), m.i32.and(flagsCall(), c32(1))))));
          }
          else if (p.mask & Fl.CF) out.push(set(L_FL, m.i32.or(m.i32.and(get(L_FL), c32(~1)), lazyCF(p))));
          setLazy(ins.sub ? LF.SUB : LF.ADD, bits, get(r), get(a), c32(1), LAZY_NO_CF);
        } else if (ex === S.neg) {
          setLazy(LF.SUB, bits, get(r), c32(0), get(a), LAZY_ALL);
        }
      } else if (ex === S.mov) {
        if (ins.dk === MEM) {
          if (!writable(ins.seg)) continue;
          wr(ins.seg, ea(), size, ins.sk === IMM ? c32(ins.imm) : getReg(ins.sr, size));
        } else {
          commits.push(setReg(ins.dr, size, get(tmp(readSrc(size)))));
        }
      } else if (ex === S.movzx || ex === S.movsx) {
        const ss = (ins.opcode & 0xff) === 0xb6 || (ins.opcode & 0xff) === 0xbe ? 1 : 2;
        let v: Ref = ins.sk === REG ? getReg(ins.sr, ss) : get(rd(ins.seg, ea(), ss));
        if (ex === S.movsx) v = ss === 1 ? m.i32.extend8_s(v) : m.i32.extend16_s(v);
        commits.push(setReg(ins.dr, ins.osz, get(tmp(v))));
      } else if (ex === S.lea) {
        commits.push(setReg(ins.dr, ins.osz, get(tmp(ea()))));
      } else if (ex === S.xchg) {
        const bv = tmp(getReg(ins.sr, size));
        if (ins.dk === MEM) {
          if (!writable(ins.seg)) continue;
          const h = hostOf(ins.seg, ea(), size, false);
          const a = tmp(load(h, size));
          wr(ins.seg, ea(), size, get(bv));
          commits.push(setReg(ins.sr, size, get(a)));
        } else {
          const a = tmp(getReg(ins.dr, size));
          commits.push(setReg(ins.dr, size, get(bv)), setReg(ins.sr, size, get(a)));
        }
      } else if (ex === S.push) {
        const v = ins.dk === IMM ? c32(ins.imm) : ins.dk === REG ? getReg(ins.dr, ins.osz) : get(rd(ins.seg, ea(), ins.osz));
        const vt = tmp(v);
        commits.push(push(get(vt), ins.osz));
      } else if (ex === S.pop) {
        const v = rd(Seg.SS, spNow(), ins.osz);
        commits.push(set(ESP, spPlus(ins.osz)), setReg(ins.dr, ins.osz, get(v)));
      } else if (ex === S.cbw) {
        if (ins.osz === 4) commits.push(set(R0, m.i32.extend16_s(get(R0))));
        else commits.push(setReg(0, 2, m.i32.extend8_s(get(R0))));
      } else if (ex === S.cwd) {
        if (ins.osz === 4) commits.push(set(R0 + 2, m.i32.shr_s(get(R0), c32(31))));
        else commits.push(setReg(2 * 4, 2, m.select(m.i32.and(get(R0), c32(0x8000)), c32(0xffff), c32(0))));
      } else if (ex === S.setcc) {
        const v = tmp(cond(ins.sub));
        if (ins.dk === MEM) {
          if (!writable(ins.seg)) continue;
          wr(ins.seg, ea(), 1, get(v));
        } else commits.push(setReg(ins.dr, 1, get(v)));
      } else if (ex === S.cmovcc) {
        const v = tmp(readSrc(ins.osz));
        commits.push(m.if(cond(ins.sub), setReg(ins.dr, ins.osz, get(v))));
      } else if (ex === S.shift) {
        let h = -1;
        if (ins.dk === MEM) {
          if (!writable(ins.seg)) continue;
          h = hostOf(ins.seg, ea(), size, false);
        }
        const mk = maskOf(bits);
        const a = tmp(m.i32.and(ins.dk === MEM ? load(h, size) : getReg(ins.dr, size), c32(mk)));
        const cntConst = ins.sk === IMM ? ins.imm & 0x1f : -1;
        if (cntConst === 0) { out.push(m.nop()); }
        else {
          const cnt = tmp(cntConst >= 0 ? c32(cntConst) : m.i32.and(get(R0 + 1), c32(0x1f)));
          // Everything that depends on a non-zero count goes in `body`, guarded when the count is in CL.
          const saved = out.length;
          const msb = (l: number) => m.i32.and(m.i32.shr_u(get(l), c32(bits - 1)), c32(1));
          const r = temp();
          const writeR = () => {
            if (ins.dk === MEM) out.push(...wrInline(ins.seg, get(r)));
            else out.push(setReg(ins.dr, size, get(r)));
          };
          // A write inside a conditional body cannot bail after flags are set: do the memory part first.
          const wrInline = (seg: number, v: Ref): Ref[] => {
            const before = out.length;
            wr(seg, ea(), size, v);
            return out.splice(before);
          };
          const sub = ins.sub;
          if (sub === 0 || sub === 1) {
            const kk = tmp(bits === 32 ? get(cnt) : m.i32.rem_u(get(cnt), c32(bits)));
            if (bits === 32) out.push(set(r, sub === 0 ? m.i32.rotl(get(a), get(kk)) : m.i32.rotr(get(a), get(kk))));
            else {
              const rot = sub === 0
                ? m.i32.or(m.i32.shl(get(a), get(kk)), m.i32.shr_u(get(a), m.i32.sub(c32(bits), get(kk))))
                : m.i32.or(m.i32.shr_u(get(a), get(kk)), m.i32.shl(get(a), m.i32.sub(c32(bits), get(kk))));
              out.push(set(r, m.select(get(kk), m.i32.and(rot, c32(mk)), get(a))));
            }
            writeR();
            if (sub === 0) {
              const cf = tmp(m.i32.and(get(r), c32(1)));
              setCfOf(get(cf), m.i32.xor(msb(r), get(cf)));
            } else {
              setCfOf(msb(r), m.i32.xor(msb(r), m.i32.and(m.i32.shr_u(get(r), c32(bits - 2)), c32(1))));
            }
          } else if (sub === 4 || sub === 6) {
            out.push(set(r, m.i32.and(m.i32.shl(get(a), get(cnt)), c32(mk))));
            const cf = tmp(m.select(m.i32.le_u(get(cnt), c32(bits)),
              m.i32.and(m.i32.shr_u(m.i32.shl(get(a), m.i32.sub(get(cnt), c32(1))), c32(bits - 1)), c32(1)), c32(0)));
            writeR();
            flagsResult(bits, get(r), get(cf), m.i32.xor(msb(r), get(cf)));
          } else if (sub === 5) {
            out.push(set(r, m.i32.shr_u(get(a), get(cnt))));
            const cf = tmp(m.i32.and(m.i32.shr_u(get(a), m.i32.sub(get(cnt), c32(1))), c32(1)));
            writeR();
            flagsResult(bits, get(r), get(cf), m.i32.xor(msb(r), m.i32.and(m.i32.shr_u(get(r), c32(bits - 2)), c32(1))));
          } else {
            const sa = tmp(bits === 32 ? get(a) : bits === 16 ? m.i32.extend16_s(get(a)) : m.i32.extend8_s(get(a)));
            out.push(set(r, m.i32.and(m.i32.shr_s(get(sa), get(cnt)), c32(mk))));
            const cf = tmp(m.i32.and(m.i32.shr_s(get(sa), m.i32.sub(get(cnt), c32(1))), c32(1)));
            writeR();
            flagsResult(bits, get(r), get(cf), c32(0));
          }
          if (cntConst < 0) {
            // Count from CL: the whole body runs only for a non-zero count; the producer is then unknown.
            const body = out.splice(saved);
            out.push(m.if(m.i32.ne(get(cnt), c32(0)), m.block(null, body)));
            prod = null;
          }
        }
      } else if (ex === S.imul2 || ex === S.imul3) {
        const sz = ins.osz;
        let a: number, bv: number;
        if (ex === S.imul2) { a = tmp(getReg(ins.dr, sz)); bv = tmp(readSrc(sz)); }
        else { a = tmp(readSrc(sz)); bv = tmp(c32(ins.imm)); }
        let r: number, of: number;
        if (sz === 4) {
          const p = temp64();
          out.push(m.local.set(p, m.i64.mul(m.i64.extend_s(get(a)), m.i64.extend_s(get(bv)))));
          r = tmp(m.i32.wrap(m.local.get(p, i64)));
          of = tmp(m.i64.ne(m.local.get(p, i64), m.i64.extend_s(get(r))));
        } else {
          r = tmp(m.i32.mul(m.i32.extend16_s(get(a)), m.i32.extend16_s(get(bv))));
          of = tmp(m.i32.ne(get(r), m.i32.extend16_s(get(r))));
        }
        flagsResult(sz * 8, get(r), get(of), get(of));
        commits.push(setReg(ins.dr, sz, get(r)));
      } else if (ex === S.lods) {
        // LODS without REP (ops.ts lodsBody): load from seg:(E)SI, step (E)SI by DF.
        const si = tmp(ins.asz === 4 ? get(R0 + 6) : m.i32.and(get(R0 + 6), c32(0xffff)));
        const v = rd(ins.seg, get(si), size);
        const d = m.select(m.i32.and(get(L_FL), c32(Fl.DF)), c32(-size), c32(size));
        commits.push(setReg(0, size, get(v)));
        commits.push(set(R0 + 6, ins.asz === 4 ? m.i32.add(get(si), d)
          : m.i32.or(m.i32.and(get(R0 + 6), c32(0xffff0000)), m.i32.and(m.i32.add(get(si), d), c32(0xffff)))));
      } else if (ex === S.stos || ex === S.movs) {
        // STOS/MOVS without REP (ops.ts stos/movs: checkWritable(ES), then stosBody/movsBody):
        // read seg:(E)SI for MOVS, write ES:(E)DI, step the index registers by DF.
        if (!writable(Seg.ES)) continue;
        const idx = (r: number) => tmp(ins.asz === 4 ? get(R0 + r) : m.i32.and(get(R0 + r), c32(0xffff)));
        const step = (r: number, at: number) => {
          const d = m.select(m.i32.and(get(L_FL), c32(Fl.DF)), c32(-size), c32(size));
          return set(R0 + r, ins.asz === 4 ? m.i32.add(get(at), d)
            : m.i32.or(m.i32.and(get(R0 + r), c32(0xffff0000)), m.i32.and(m.i32.add(get(at), d), c32(0xffff))));
        };
        let v: Ref;
        let si = -1;
        if (ex === S.movs) {
          si = idx(6);
          v = get(rd(ins.seg, get(si), size));
        } else v = getReg(0, size);
        const di = idx(7);
        wr(Seg.ES, get(di), size, v);
        if (ex === S.movs) commits.push(step(6, si));
        commits.push(step(7, di));
      } else if (ex === S.mul || ex === S.imul1) {
        // ops.ts mul/imul1: EDX:EAX (AX for bytes) = accumulator × r/m; CF = OF = the high half is
        // significant; flagsResult with the low part (the whole product for bytes and words).
        const b = tmp(ins.dk === MEM ? get(rd(ins.seg, ea(), size)) : getReg(ins.dr, size));
        const signed = ex === S.imul1;
        if (size === 4) {
          const p = temp64();
          const ext = (v: Ref) => signed ? m.i64.extend_s(v) : m.i64.extend_u(v);
          out.push(m.local.set(p, m.i64.mul(ext(get(R0)), ext(get(b)))));
          const lo = tmp(m.i32.wrap(m.local.get(p, i64)));
          const hi = tmp(m.i32.wrap(m.i64.shr_u(m.local.get(p, i64), k64(32))));
          const of = tmp(signed ? m.i32.ne(get(hi), m.i32.shr_s(get(lo), c32(31))) : m.i32.ne(get(hi), c32(0)));
          flagsResult(32, get(lo), get(of), get(of));
          commits.push(set(R0, get(lo)), set(R0 + 2, get(hi)));
        } else {
          const sx = (v: Ref) => size === 1 ? m.i32.extend8_s(v) : m.i32.extend16_s(v);
          const r = tmp(signed ? m.i32.mul(sx(getReg(0, size)), sx(get(b))) : m.i32.mul(getReg(0, size), get(b)));
          const of = tmp(signed ? m.i32.ne(get(r), sx(get(r)))
            : m.i32.ne(m.i32.shr_u(get(r), c32(bits)), c32(0)));
          flagsResult(bits, get(r), get(of), get(of));
          commits.push(setReg(0, 2, get(r)));
          if (size === 2) commits.push(setReg(2 * 4, 2, m.i32.shr_s(get(r), c32(16))));
        }
      } else if (ex === S.div || ex === S.idiv) {
        // ops.ts div/idiv: #DE (a bail: the interpreter raises it) for a zero divisor or a quotient
        // that does not fit; flags untouched. Divisions are done in i64 so none can trap.
        const signed = ex === S.idiv;
        const d = tmp(ins.dk === MEM ? get(rd(ins.seg, ea(), size)) : getReg(ins.dr, size));
        const n = temp64(), dv = temp64(), q = temp64();
        const L = (l: number) => m.local.get(l, i64);
        if (size === 4) {
          out.push(m.local.set(n, m.i64.or(m.i64.shl(m.i64.extend_u(get(R0 + 2)), k64(32)), m.i64.extend_u(get(R0)))));
          out.push(m.local.set(dv, signed ? m.i64.extend_s(get(d)) : m.i64.extend_u(get(d))));
        } else if (size === 2) {
          const nv = m.i32.or(m.i32.shl(getReg(2 * 4, 2), c32(16)), getReg(0, 2));
          out.push(m.local.set(n, signed ? m.i64.extend_s(nv) : m.i64.extend_u(nv)));
          out.push(m.local.set(dv, signed ? m.i64.extend_s(m.i32.extend16_s(get(d))) : m.i64.extend_u(get(d))));
        } else {
          out.push(m.local.set(n, signed ? m.i64.extend_s(m.i32.extend16_s(getReg(0, 2))) : m.i64.extend_u(getReg(0, 2))));
          out.push(m.local.set(dv, signed ? m.i64.extend_s(m.i32.extend8_s(get(d))) : m.i64.extend_u(get(d))));
        }
        // Zero divisor, or INT64_MIN / -1 (the only i64 division that traps; its quotient never fits).
        out.push(m.if(m.i32.or(m.i64.eqz(L(dv)),
          m.i32.and(m.i64.eq(L(dv), k64(-1)), m.i64.eq(L(n), k64(-(2 ** 63))))), bail()));
        out.push(m.local.set(q, signed ? m.i64.div_s(L(n), L(dv)) : m.i64.div_u(L(n), L(dv))));
        const maxQ = size === 4 ? (signed ? 0x7fffffff : 0xffffffff) : size === 2 ? (signed ? 0x7fff : 0xffff) : (signed ? 0x7f : 0xff);
        const tooBig = signed
          ? m.i32.or(m.i64.gt_s(L(q), k64(maxQ)), m.i64.lt_s(L(q), k64(-maxQ - 1)))
          : m.i64.gt_u(L(q), k64(maxQ));
        out.push(m.if(tooBig, bail()));
        const qv = tmp(m.i32.wrap(L(q)));
        const rv = tmp(m.i32.wrap(signed ? m.i64.rem_s(L(n), L(dv)) : m.i64.rem_u(L(n), L(dv))));
        if (size === 4) commits.push(set(R0, get(qv)), set(R0 + 2, get(rv)));
        else if (size === 2) commits.push(setReg(0, 2, get(qv)), setReg(2 * 4, 2, get(rv)));
        else commits.push(setReg(0, 1, get(qv)), setReg(1, 1, get(rv)));
      } else if (ex === S.nop) {
        // nothing
      } else if (ex === S.jcc || ex === S.jmp || ex === S.call) {
        const target = ((nextEip + ins.imm) & (ins.osz === 4 ? -1 : 0xffff)) >>> 0;
        const outOfLimit = target > spec.segs[Seg.CS].hi;
        if (ex === S.jcc) {
          out.push(set(L_COND, cond(ins.sub)));
          if (outOfLimit) out.push(m.if(get(L_COND), bail()));
          endKind = { from: tb, kind: "cond", taken: target, fall: nextEip };
        } else if (ex === S.jmp) {
          if (outOfLimit) { out.push(bail()); continue; }
          endKind = { from: tb, kind: "jump", taken: target };
        } else {
          if (outOfLimit) { out.push(bail()); continue; }
          commits.push(push(c32(nextEip), ins.osz));
          endKind = { from: tb, kind: "jump", taken: target };
        }
      } else if (ex === S.jmpNear || ex === S.callNear || ex === S.ret) {
        const ipm = ins.osz === 4 ? -1 : 0xffff;
        let t: number;
        if (ex === S.ret) t = tmp(m.i32.and(get(rd(Seg.SS, spNow(), ins.osz)), c32(ipm)));
        else t = tmp(m.i32.and(ins.dk === MEM ? get(rd(ins.seg, ea(), ins.osz)) : getReg(ins.dr, ins.osz), c32(ipm)));
        const hi = spec.segs[Seg.CS].hi;
        if (hi < 0xffffffff) out.push(m.if(m.i32.gt_u(get(t), c32(hi)), bail()));
        if (ex === S.callNear) commits.push(push(c32(nextEip), ins.osz));
        if (ex === S.ret) commits.push(set(ESP, spPlus(ins.osz + (ins.dk === IMM ? ins.imm & 0xffff : 0))));
        commits.push(set(L_TGT, get(t)));
        endKind = { from: tb, kind: "indirect", cands: ex === S.ret ? retCands.get(tb) ?? [] : [] };
      } else {
        throw new Error(`Untranslated native instruction ${ins.name}`);
      }
      out.push(...commits);
    }
    // Epilogue: retire the block, then the edges.
    out.push(set(L_RETIRED, m.i32.add(get(L_RETIRED), c32(tb.cut))));
    if (endKind === null) {
      const last = blk.insns[tb.cut - 1];
      const next = ((eip + last.nextOff) & ipMaskB) >>> 0;
      endKind = tb.cut === blk.insns.length && last.terminal && TRANSFERS.has(last.exec)
        ? { from: tb, kind: "indirect", cands: [] } // a callout that ended the block cannot be terminal; defensive
        : { from: tb, kind: "fall", fall: next };
      if (endKind.kind === "indirect") out.push(set(L_TGT, c32(next)));
    }
    pending.push(endKind);
    bodies.set(tb, out);
  }

  // The budget (DESIGN.md section 2), checked only where a path can come round again: at the
  // entry and at every loop head (the target of a back edge in a depth-first walk from the entry;
  // every cycle holds one). A check asks for room for the longest path to the next check or exit,
  // so between checks no block can overrun the fuel; when there is no room the run leaves at the
  // check and the interpreter runs the rest exactly.
  const edgesOf = new Map<TranslatedBlock, Pending>(pending.map((p) => [p.from, p]));
  const succ = (tb: TranslatedBlock): TranslatedBlock[] => {
    const p = edgesOf.get(tb)!;
    const ts = p.kind === "cond" ? [p.taken!, p.fall!] : p.kind === "jump" ? [p.taken!] : p.kind === "fall" ? [p.fall!] : p.cands!;
    const r: TranslatedBlock[] = [];
    for (const t of ts) {
      const x = byEip.get(t);
      if (x !== undefined) r.push(x);
    }
    return r;
  };
  const checked = new Set<TranslatedBlock>();
  if (spec.allEntries) for (const tb of compiled) checked.add(tb);
  else {
    checked.add(compiled[0]);
    const state = new Map<TranslatedBlock, number>(); // 1 on the walk's stack, 2 done
    const post: TranslatedBlock[] = [];
    const stack: { tb: TranslatedBlock; next: TranslatedBlock[]; k: number }[] = [{ tb: compiled[0], next: succ(compiled[0]), k: 0 }];
    state.set(compiled[0], 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (top.k === top.next.length) { state.set(top.tb, 2); post.push(top.tb); stack.pop(); continue; }
      const t = top.next[top.k++];
      const st = state.get(t);
      if (st === 1) checked.add(t);
      else if (st === undefined) { state.set(t, 1); stack.push({ tb: t, next: succ(t), k: 0 }); }
    }
    // Blocks the walk did not reach are entered only in the all-entries shape; check them anyway.
    for (const tb of compiled) if (!state.has(tb)) checked.add(tb);
    // Straight-line stretches longer than MAX_NEED get checks of their own, so that no check asks
    // for more fuel than a small budget leaves (a run that cannot start is handed to the
    // interpreter, and a region that never starts is compile time thrown away).
    const order = post.reverse(), pos = new Map(order.map((tb, i) => [tb, i]));
    const inMax = new Map<TranslatedBlock, number>();
    for (const v of order) {
      let dv = checked.has(v) ? v.cut : v.cut + (inMax.get(v) ?? 0);
      if (dv > MAX_NEED && !checked.has(v)) { checked.add(v); dv = v.cut; }
      for (const t of succ(v)) if (pos.get(t)! > pos.get(v)!) inMax.set(t, Math.max(inMax.get(t) ?? 0, dv));
    }
  }
  const need = new Map<TranslatedBlock, number>();
  const longest = (tb: TranslatedBlock): number => {
    let v = need.get(tb);
    if (v !== undefined) return v;
    need.set(tb, tb.cut); // provisional; the graph between checks is acyclic
    let best = 0;
    for (const t of succ(tb)) if (!checked.has(t)) best = Math.max(best, longest(t));
    v = tb.cut + best;
    need.set(tb, v);
    return v;
  };
  const codeOf = new Map<TranslatedBlock, Ref[]>();
  for (const tb of compiled) {
    const out = bodies.get(tb)!;
    if (checked.has(tb)) {
      const n = longest(tb);
      tb.need = n;
      let over: Ref = m.i32.gt_u(m.i32.add(get(L_RETIRED), c32(n)), get(P_FUEL));
      if (tb.index === 0 && spec.softChunk !== undefined) over = m.i32.or(over, m.i32.ge_u(get(L_RETIRED), c32(spec.softChunk)));
      out.unshift(m.if(over, m.block(null, [set(L_EXITRIP, c32(tb.eip)), m.br("exit")])));
    }
    codeOf.set(tb, out);
  }
  /** The switch index of an indirect transfer: the target's position among the candidates, else their count. */
  const switchIndex = (cands: number[]): Ref => {
    let idx: Ref = c32(cands.length);
    for (let c = cands.length - 1; c >= 0; c--) idx = m.select(m.i32.eq(get(L_TGT), c32(cands[c])), c32(c), idx);
    return idx;
  };
  /** A block's out-edges as eips (an indirect transfer's candidates, then -1 for "any other target"). */
  const outEips = (p: Pending): number[] =>
    p.kind === "cond" ? [p.taken!, p.fall!] : p.kind === "jump" ? [p.taken!] : p.kind === "fall" ? [p.fall!] : [...p.cands!, -1];
  const leaveTo = (eip: number): Ref =>
    eip < 0 ? m.block(null, [set(L_EXITRIP, get(L_TGT)), m.br("exit")]) : m.block(null, [set(L_EXITRIP, c32(eip)), m.br("exit")]);

  // Structured control flow from the one entry (jit/structure.ts); the Relooper for irreducible
  // graphs and for the all-entries shape.
  let flow: Ref | null = null;
  if (!spec.allEntries) {
    const nodeOf = new Map<TranslatedBlock, number>(compiled.map((tb, i) => [tb, i]));
    const succ = compiled.map((tb) => outEips(edgesOf.get(tb)!).map((t) => {
      const x = t < 0 ? undefined : byEip.get(t);
      return x === undefined ? -1 : nodeOf.get(x)!;
    }));
    let sw = 0;
    const code = structure<Ref>({ succ }, {
      node: (x, go0) => {
        const tb = compiled[x];
        // An edge to a block on another page: only while that page's fetch TLB entry still maps it
        // where it did at compile time (the interpreter's getBlock looks there too), else leave.
        const go = (k: number): Ref => {
          const t = succ[x][k];
          if (t < 0 || compiled[t].page === tb.page) return go0(k);
          const to = compiled[t], e = (to.page & (TLB_ENTRIES - 1)) * 4;
          guarded.add(to.eip);
          const ok = m.i32.and(
            m.i32.eq(m.i32.load(area + TLB_TAG_R + e, 4, c32(0)), c32(to.page)),
            m.i32.eq(m.i32.load(area + TLB_HOST + e, 4, c32(0)), c32(to.host)),
          );
          return m.if(ok, go0(k), leaveTo(to.eip));
        };
        const p = edgesOf.get(tb)!;
        const out = [...codeOf.get(tb)!];
        if (p.kind === "cond") out.push(m.if(get(L_COND), go(0), go(1)));
        else if (p.kind === "jump" || p.kind === "fall") out.push(go(0));
        else if (p.cands!.length === 0) out.push(go(0));
        else {
          // br_table over the candidates; each case's code follows the block it breaks out of.
          const n = p.cands!.length, names = Array.from({ length: n + 1 }, (_, k) => `s${sw}_${k}`);
          sw++;
          let inner: Ref = m.block(names[0], [m.switch(names.slice(0, n), names[n], switchIndex(p.cands!))]);
          for (let k = 0; k < n; k++) inner = m.block(names[k + 1], [inner, go(k)]);
          out.push(inner, go(n));
        }
        return out;
      },
      leave: (x, k) => leaveTo(outEips(edgesOf.get(compiled[x])!)[k]),
      block: (label, body) => m.block(label, body),
      loop: (label, body) => m.loop(label, m.block(null, body)),
      br: (label) => m.br(label),
      seq: (body) => m.block(null, body),
    });
    if (code !== null) flow = m.block(null, [set(L_RETIRED, c32(0)), ...code]);
  }
  if (flow === null) flow = relooperFlow();

  function relooperFlow(): Ref {
    const rl = new b.Relooper(m);
    const exitStubs = new Map<number, number>();
    const exitTo = (eip: number): number => {
      let s = exitStubs.get(eip);
      if (s === undefined) {
        s = rl.addBlock(leaveTo(eip));
        exitStubs.set(eip, s);
      }
      return s;
    };
    const dynExit = rl.addBlock(leaveTo(-1));
    const rlBlocks = new Map<TranslatedBlock, number>();
    for (const tb of compiled) {
      const code = m.block(null, codeOf.get(tb)!);
      const endKind = edgesOf.get(tb)!;
      if (endKind.kind === "indirect" && endKind.cands!.length > 0) rlBlocks.set(tb, rl.addBlockWithSwitch(code, switchIndex(endKind.cands!)));
      else rlBlocks.set(tb, rl.addBlock(code));
    }
    // Edges to another page leave the region here (no TLB guard in this shape).
    let fromPage = 0;
    const target = (eip: number): number => {
      const t = byEip.get(eip);
      return t !== undefined && t.page === fromPage ? rlBlocks.get(t)! : exitTo(eip);
    };
    // Blocks the entry cannot reach through these edges (a return site whose RET is elsewhere)
    // get no out-edges: the relooper must not see them as predecessors of reachable blocks.
    const reach = new Set<TranslatedBlock>([compiled[0]]);
    const work = [compiled[0]];
    while (work.length) {
      const from = work.pop()!;
      for (const t of outEips(edgesOf.get(from)!)) {
        const tb = t < 0 ? undefined : byEip.get(t);
        if (tb !== undefined && tb.page === from.page && !reach.has(tb)) { reach.add(tb); work.push(tb); }
      }
    }
    for (const p of pending) {
      const from = rlBlocks.get(p.from)!;
      fromPage = p.from.page;
      if (!spec.allEntries && !reach.has(p.from)) {
        // A switch block needs its default branch; the block itself never runs.
        if (p.kind === "indirect" && p.cands!.length > 0) rl.addBranchForSwitch(from, dynExit, [], 0);
        continue;
      }
      // The Relooper asserts (an abort of binaryen's instance) when a block branches to the same
      // target twice: a Jcc to the next instruction (`jz $+2`), or both targets leaving the region
      // at the same EIP. One unconditional branch then; switch cases sharing a target share a branch.
      if (p.kind === "cond") {
        const tk = target(p.taken!), fl = target(p.fall!);
        if (tk !== fl) rl.addBranch(from, tk, m.local.get(L_COND, i32), 0);
        rl.addBranch(from, fl, 0, 0);
      } else if (p.kind === "jump") {
        rl.addBranch(from, target(p.taken!), 0, 0);
      } else if (p.kind === "fall") {
        rl.addBranch(from, target(p.fall!), 0, 0);
      } else if (p.cands!.length > 0) {
        const cases = new Map<number, number[]>();
        p.cands!.forEach((c, k) => {
          const t = target(c), list = cases.get(t);
          if (list === undefined) cases.set(t, [k]);
          else list.push(k);
        });
        for (const [t, ks] of cases) rl.addBranchForSwitch(from, t, ks, 0);
        rl.addBranchForSwitch(from, dynExit, [], 0);
      } else {
        rl.addBranch(from, dynExit, 0, 0);
      }
    }
    // The entry switch: block 0 only, unless every block is an entry.
    const entry = rl.addBlockWithSwitch(set(L_RETIRED, c32(0)), m.local.get(P_ENTRY, i32));
    const bad = rl.addBlock(m.unreachable());
    rl.addBranchForSwitch(entry, rlBlocks.get(compiled[0])!, [0], 0);
    for (const tb of compiled) if (tb.index !== 0 && (spec.allEntries || !reach.has(tb))) rl.addBranchForSwitch(entry, rlBlocks.get(tb)!, [tb.index], 0);
    rl.addBranchForSwitch(entry, bad, [], 0);
    return rl.renderAndDispose(entry, L_LABEL);
  }

  // A callout stores and reloads every local around the interpreter's function, so then the run
  // loads and stores them all too.
  const all = (1 << (L_FL - R0 + 1)) - 1;
  const body = m.block(null, [
    ...reload(m, area, callouts > 0 ? all : usedState),
    m.block("exit", [flow]),
    ...writeBack(m, area, true, i32, callouts > 0 ? all : writtenState),
    m.return(m.i32.or(get(L_RETIRED), m.i32.shl(get(L_SITE), c32(SITE_SHIFT)))),
  ]);
  if (flagsUsed) addFlagsFunction(b, m);
  m.addFunction("run", b.createType([i32, i32]), i32, vars, body);
  m.addFunctionExport("run", "run");
  return { module: m, blocks: tblocks, usedSegs, inline, callouts, guarded, exitSites };
}

// ---------------------------------------------------------------------------------------------
// Modules, reused
// ---------------------------------------------------------------------------------------------

type BinaryenModule = InstanceType<Binaryen["Module"]>;
/**
 * Regions a binaryen module is reused for. Making one costs 0.5–1 ms in binaryen.js (it builds its
 * whole expression API for each module), more than translating a small region; but expressions
 * live in the module's arena until it is disposed, so it is replaced now and then.
 */
const MODULE_REUSES = 32;
/** The module regions are translated into (one at a time: translation is synchronous), and its uses. */
let pooled: { m: BinaryenModule; b: Binaryen; uses: number } | null = null;

/** The module with the imports every region uses (memory, `slow`, `callout`) and no functions of its own. */
function acquireModule(b: Binaryen): BinaryenModule {
  if (pooled !== null && pooled.b === b) return pooled.m;
  const m = new b.Module();
  m.setFeatures(b.Features.MVP | b.Features.MutableGlobals | b.Features.SignExt);
  m.setMemory(1, -1, null, [], false, false, "0");
  m.addMemoryImport("0", "e", "mem");
  m.addFunctionImport("slow", "e", "slow", b.createType([b.i32, b.i32, b.i32]), b.i32);
  m.addFunctionImport("callout", "e", "callout", b.createType([b.i32, b.i32]), b.i32);
  pooled = { m, b, uses: 0 };
  return m;
}

/** Dispose of `m` (a failed translation may have left anything in it); the next region gets a new one. */
function discardModule(m: BinaryenModule): void {
  if (pooled !== null && pooled.m === m) pooled = null;
  m.dispose();
}

/** Forget `m` without calling into binaryen (its instance aborted): the next region gets a new module. */
export function abandonModule(m: BinaryenModule): void {
  if (pooled !== null && pooled.m === m) pooled = null;
}

/**
 * Done with a region's module (emitted, or given up): take the region's functions out for the
 * next region, or dispose of it once it has served MODULE_REUSES regions.
 */
export function releaseModule(m: BinaryenModule): void {
  if (pooled === null || pooled.m !== m || ++pooled.uses >= MODULE_REUSES) return discardModule(m);
  if (m.getExport("run")) m.removeExport("run");
  if (m.getFunction("run")) m.removeFunction("run");
  if (m.getFunction("flags")) m.removeFunction("flags");
}

// ---------------------------------------------------------------------------------------------
// Locals and the state block
// ---------------------------------------------------------------------------------------------

/** Each register and flag local (R0 + k for bit k of a mask) and its 32-bit word in the state block. */
const STATE_WORDS: [local: number, word: number][] = [
  ...Array.from({ length: 8 }, (_, r) => [R0 + r, r * 2] as [number, number]),
  [L_OP, St.LAZY_OP], [L_RES, St.LAZY_RES], [L_DST, St.LAZY_DST], [L_SRC, St.LAZY_SRC], [L_MASK, St.LAZY_MASK],
  [L_FL, St.RFLAGS],
];
/** Load the locals in `mask` (default all) from the state block. */
function reload(m: InstanceType<Binaryen["Module"]>, area: number, mask = -1): number[] {
  const out: number[] = [];
  for (const [l, word] of STATE_WORDS) {
    if (mask & (1 << (l - R0))) out.push(m.local.set(l, m.i32.load(area + word * 4, 4, m.i32.const(0))));
  }
  return out;
}
/** Store the locals in `mask` (default all) to the state block, and RIP at the exit. */
function writeBack(m: InstanceType<Binaryen["Module"]>, area: number, withRip: boolean, ty: number, mask = -1): number[] {
  const out: number[] = [];
  const i32 = m.i32;
  for (const [l, word] of STATE_WORDS) {
    if (mask & (1 << (l - R0))) out.push(i32.store(area + word * 4, 4, i32.const(0), m.local.get(l, ty)));
  }
  if (withRip) out.push(i32.store(area + St.RIP * 4, 4, i32.const(0), m.local.get(L_EXITRIP, ty)));
  return out;
}

/** `$flags(op, res, dst, src, mask, fl)`: the wasm twin of Cpu.getFlags (runtime/cpu/cpu.ts). */
function addFlagsFunction(b: Binaryen, m: InstanceType<Binaryen["Module"]>): void {
  const i32 = b.i32;
  const g = (l: number) => m.local.get(l, i32);
  const c = (v: number) => m.i32.const(v | 0);
  const OP = 0, RES = 1, DST = 2, SRC = 3, MASK = 4, FL = 5, BITS = 6, MK = 7, F = 8, KIND = 9;
  const mres = () => m.i32.and(g(RES), g(MK)), mdst = () => m.i32.and(g(DST), g(MK)), msrc = () => m.i32.and(g(SRC), g(MK));
  const isKind = (k: number) => m.i32.eq(g(KIND), c(k));
  const sh = () => m.i32.sub(g(BITS), c(1));
  // The kind is known only at run time here: select among runtime/cpu/flags.ts's formulas per kind.
  const alu = exprAlu(m);
  // (It is part of every module, so its size is compile time: one OF formula per class of kinds.)
  let cf: Ref = c(0), of: Ref = c(0);
  for (const k of [...CARRY_KINDS].reverse()) cf = m.select(isKind(k), carryOf(alu, k, mres, mdst, msrc)(), cf);
  for (const [a, b] of [...OVERFLOW_CLASSES].reverse()) {
    const word = overflowWord(alu, a, () => g(RES), () => g(DST), () => g(SRC))();
    of = m.select(m.i32.or(isKind(a), isKind(b)), m.i32.and(m.i32.shr_u(word, sh()), c(1)), of);
  }
  const when = (bit: number, v: number) => m.if(m.i32.and(g(MASK), c(bit)), m.local.set(F, m.i32.or(g(F), v)));
  const body = m.block(null, [
    m.local.set(BITS, m.i32.shr_s(g(OP), c(8))),
    m.local.set(KIND, m.i32.and(g(OP), c(0xff))),
    m.local.set(MK, m.select(m.i32.eq(g(BITS), c(32)), c(-1), m.i32.sub(m.i32.shl(c(1), g(BITS)), c(1)))),
    m.local.set(F, m.i32.and(g(FL), m.i32.xor(g(MASK), c(-1)))),
    when(Fl.CF, cf),
    when(Fl.PF, m.i32.shl(m.i32.eqz(m.i32.and(m.i32.popcnt(m.i32.and(g(RES), c(0xff))), c(1))), c(2))),
    when(Fl.AF, m.i32.and(m.i32.xor(m.i32.xor(g(DST), g(SRC)), g(RES)), c(0x10))),
    when(Fl.ZF, m.i32.shl(m.i32.eqz(mres()), c(6))),
    when(Fl.SF, m.i32.shl(m.i32.and(m.i32.shr_u(g(RES), sh()), c(1)), c(7))),
    when(Fl.OF, m.i32.shl(of, c(11))),
    m.return(m.i32.or(g(F), c(Fl.FIXED1))),
  ]);
  m.addFunction("flags", b.createType([i32, i32, i32, i32, i32, i32]), i32, [i32, i32, i32, i32], body);
}

/**
 * runtime/cpu/flags.ts's operations over binaryen expressions. A value is a function that builds a
 * fresh expression each time it is called (a binaryen expression is a tree node: it can be used once).
 */
function exprAlu(m: InstanceType<Binaryen["Module"]>): FlagAlu<() => Ref> {
  return {
    ltU: (a, b) => () => m.i32.lt_u(a(), b()),
    leU: (a, b) => () => m.i32.le_u(a(), b()),
    and: (a, b) => () => m.i32.and(a(), b()),
    xor: (a, b) => () => m.i32.xor(a(), b()),
    zero: () => () => m.i32.const(0),
  };
}

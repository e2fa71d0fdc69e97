/**
 * The JIT engine: the block runner the interpreter's run loop calls (`cpu.engine`), region
 * discovery, compilation of regions to wasm modules, the slow paths compiled code calls, and
 * invalidation. See jit/DESIGN.md.
 */
import { Block, type BlockEngine, type Cpu } from "../runtime/cpu/cpu.ts";
import { decode } from "../runtime/cpu/decoder.ts";
import { CpuFault, VmExitSignal } from "../runtime/cpu/fault.ts";
import * as stateMod from "../runtime/cpu/state.ts";
import { type Binaryen, binaryenAborted, liveBinaryen } from "./_binaryen.ts";
import * as translateMod from "./translate.ts";
import {
  abandonModule, callReturnSite, type ExitSite, type RegionBlock, type RegionSpec, releaseModule, type SegSnap, successors, type Translation,
  translateRegion,
} from "./translate.ts";

// Module-local bindings of the constant tables: V8 folds a module's own consts into optimised code
// but reads an imported binding from its module cell, with a TDZ check, at every use (DESIGN-NOTES.md).
const { Cr0, Seg, St, TLB_ENTRIES } = stateMod;
const { SITE_SHIFT } = translateMod;

/** `jit` compiles a block the first time it runs; `auto` once it has run `threshold` times. */
export type JitMode = "jit" | "auto";

export interface JitOptions {
  mode?: JitMode;
  /** Executions before `auto` compiles a block (default 64). */
  threshold?: number;
  /** Call the interpreter's semantic function for non-terminal instructions outside the subset (default true). */
  callout?: boolean;
  /** Most blocks in one region (one wasm module), default 128. */
  maxBlocks?: number;
  /** Validate every module with binaryen (tests). */
  validate?: boolean;
  /** Keep each region's wasm text (golden expect tests). */
  keepText?: boolean;
  /** Take regions compiled before, by any engine in the process, from the code cache (default true). */
  codeCache?: boolean;
  /**
   * Throw when a region fails to translate or compile, instead of leaving it to the interpreter
   * (tests: a failure must not hide behind the fallback). Default false.
   */
  strict?: boolean;
  /**
   * Under auto, the share of wall time compiling may take (default 0.25): compile time is paid
   * from a budget that grows by this much per ms and holds at most COMPILE_BURST_MS; with the
   * budget spent, hot blocks wait (interpreted) until it has grown again. Code that runs a few times
   * each (a kernel booting) then costs at most that share over the interpreter. `jit` has no budget
   * (Infinity).
   */
  compileShare?: number;
  /**
   * Under auto, the instructions within which a block must reach the threshold to be compiled
   * (default 512 × threshold); otherwise its count starts again. Infinity turns the window off
   * (`jit` has none).
   */
  hotWindow?: number;
  /** Tests only: called with binaryen before each region is translated (to make it fail). */
  beforeTranslate?: ((b: Binaryen) => void) | null;
}

/** Counters for benchmarks and tests. */
export interface JitStats {
  /** Regions (wasm modules) compiled, those taken from the code cache included. */
  regions: number;
  /** Regions whose module came from the code cache (compiled before, for the same code under the same assumptions). */
  cached: number;
  /** Blocks compiled, over all regions. */
  blocks: number;
  /** Instructions translated inline, and called out to the interpreter's semantics. */
  inline: number;
  callouts: number;
  /** Wall time spent translating and compiling, in ms. */
  compileMs: number;
  /** Runs of compiled code, and runs that handed the first instruction straight back. */
  runs: number;
  declined: number;
  /** Instructions retired by compiled code. */
  instructions: number;
  /** Regions (wasm modules) dropped by writes to pages holding their blocks. */
  invalidated: number;
  /**
   * Regions that failed to translate or compile (a bug in the JIT, or a limit of binaryen or of the
   * wasm engine): their entries are left to the interpreter. The first failure in a process is
   * also printed on stderr.
   */
  failures: number;
  /** Of those, failures that aborted binaryen's instance (it is replaced by a fresh one, _binaryen.ts). */
  aborts: number;
}

interface Region {
  run: (entry: number, fuel: number) => number;
  stack32: boolean;
  usedSegs: number;
  segs: SegSnap[];
  /** By compiled-block index. */
  table: RegionBlock[];
  text?: string;
  /** False once a write hit a page holding one of its blocks: never entered again. */
  valid: boolean;
  /**
   * Linear addresses of successors discovery left out because their page was not in the TLB yet
   * (looking would have walked the page tables), and the runs counted towards a second look.
   */
  unfetched: number[];
  /** Under auto: successors left out because they had never run (cold), for the same second look. */
  cold: Block[];
  runs: number;
  /** EIPs of its blocks entered across a page (a TLB-guarded edge), and the runs that left at one. */
  guarded: Set<number>;
  guardMisses: number;
  /** Whether runs are watched for a reason to compile again (unfetched or cold successors, guarded edges). */
  watched: boolean;
  /** The IN/OUT instructions a run can stop before (translate.ts ExitSite). */
  exitSites: ExitSite[];
  /** `cpu.segEpoch` when the segment snapshots were last found to hold (-1: never). */
  segEpoch: number;
}
interface Compiled {
  region: Region;
  /** The interpreter's block this entry compiles (a write to its bytes drops the region). */
  blk: Block;
  index: number;
  eip: number;
  /** Fuel a run from here needs (the entry's budget check), else the interpreter runs the block. */
  need: number;
}
/** What the engine keeps on a Block (`blk.engineData`): dropped with the block. */
interface Entry {
  /** The engine that made it (a block outlives an engine replaced with useEngine). */
  engine: JitEngine;
  count: number;
  /** `cpu.icount` when `count` started (auto's window, JitOptions.hotWindow). */
  since: number;
  code: Compiled | null;
  /** Compilation was tried and gave nothing (first instruction not compilable), or gave up. */
  dead: boolean;
  recompiles: number;
  /** Times compiled again to take in blocks on pages mapped since, or remapped (MAX_REDISCOVERIES). */
  rediscovered: number;
}

/** Whether a compile failure was printed in this process (the first one is; stats count them all). */
let failureReported = false;

/** Under auto, the share of wall time compiling may take (JitOptions.compileShare), and the most saved up. */
const AUTO_COMPILE_SHARE = 0.25;
const COMPILE_BURST_MS = 20;
/** The fewest blocks a region under a compile budget may take in (a loop and its exit paths). */
const MIN_REGION_BLOCKS = 8;
/** A running estimate of the compile time of one block of a region in this process (ms). */
let blockCostMs = 0.2;
/** Auto's hot window: a block must average a run per this many instructions until the threshold. */
const HOT_WINDOW_PER_RUN = 512;
/** A running estimate of one region's compile time in this process (ms), for the deadline check. */
let compileCostMs = 100; // the first compile in a process is the slowest (binaryen warms up)

/** Written-to blocks remembered (engine.written) before the set starts afresh. */
const MAX_WRITTEN = 4096;

/** The most bytes a decoded block can span (64 instructions of at most 15 bytes, cpu.ts). */
const MAX_BLOCK_BYTES = 64 * 15;

/**
 * Instructions after which a run leaves at its region's entry (checked there only), and the most
 * one run may retire at all (checked at every block, with the budget): the two bound the time
 * between deadline checks, the second also when a loop never passes through the entry.
 */
const CHUNK = 1 << 16;
/** Runs of a region that left successors out (their pages were not mapped yet) before it looks again. */
const REDISCOVER_RUNS = 64;
const MAX_REDISCOVERIES = 4;
const HARD_CHUNK = 1 << 20;

/**
 * What a region compiles to, without the machine: its module (null when its entry block does not
 * compile), and per block of the discovery, in its order, the index passed to run() (-1: not
 * compiled) and the fuel a run entering there needs.
 */
export interface RegionCode {
  module: WebAssembly.Module | null;
  blocks: { index: number; need: number }[];
  usedSegs: number;
  inline: number;
  callouts: number;
  guarded: Set<number>;
  exitSites: Omit<ExitSite, "blk">[];
  allEntries: boolean;
  text?: string;
}

/**
 * The process's compiled regions by `regionKey`, least recently used first: a one-shot run of an
 * image the process ran before (the HTTP service's workers, a test suite, a fresh Machine per
 * sample) instantiates its modules instead of translating and compiling them again. Modules hold
 * no machine state (the memory and the slow paths are imports), so one serves every machine.
 */
export class CodeCache {
  private readonly map = new Map<string, RegionCode>();
  constructor(private readonly capacity: number) {}
  get(key: string): RegionCode | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, v: RegionCode): void {
    this.map.delete(key);
    this.map.set(key, v);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value!);
  }
  get size(): number {
    return this.map.size;
  }
}
/** A compiled region costs V8 about 0.25 MB (jit/DESIGN.md section 1): the cache stays under ~35 MB. */
const CODE_CACHE_REGIONS = 128;
const codeCache = new CodeCache(CODE_CACHE_REGIONS);

/** Regions in the process's code cache (for tests). */
export function codeCacheSize(): number {
  return codeCache.size;
}

/**
 * Everything a region's translation depends on (translateRegion reads nothing else): the vCPU
 * area's offset, the code and stack widths, the segment snapshots, the options that shape the code,
 * and per block its EIP, its page's host address, its IP mask and its instructions' bytes (a
 * block's decoding follows from those, its EIP and CS). Equal keys give the same wasm.
 */
function regionKey(spec: RegionSpec): string {
  const parts: (number | string)[] = [spec.area, spec.code32 ? 1 : 0, spec.stack32 ? 1 : 0, spec.callout ? 1 : 0, spec.softChunk ?? 0];
  for (const g of spec.segs) parts.push(g.base, g.lo, g.hi, g.noWrite);
  for (const rb of spec.blocks) {
    let bytes = "";
    for (const ins of rb.blk.insns) bytes += String.fromCharCode(...ins.bytes);
    parts.push(rb.eip >>> 0, rb.host, rb.blk.ipMask, rb.blk.insns.length, bytes.length, bytes);
  }
  return parts.join(",");
}

export class JitEngine implements BlockEngine {
  readonly stats: JitStats = {
    regions: 0, cached: 0, blocks: 0, inline: 0, callouts: 0, compileMs: 0, runs: 0, declined: 0, instructions: 0, invalidated: 0,
    failures: 0, aborts: 0,
  };
  /** The first failure's message (stats.failures), or null. */
  firstFailure: string | null = null;
  /** Compile time (ms) that may be spent now (compileShare), and when it was last topped up. */
  private budgetMs = COMPILE_BURST_MS;
  /** Auto's hot window in instructions (JitOptions.hotWindow), Infinity for jit. */
  private readonly window: number;
  private budgetAt = 0;
  /** Wasm text of the regions compiled, when `keepText` is set. */
  readonly texts: string[] = [];
  private readonly byPage = new Map<number, Compiled[]>();
  /** Host addresses of blocks dropped by writes to their bytes: not taken into other entries' regions. */
  private readonly written = new Set<number>();
  private readonly threshold: number;
  private readonly opts: Required<Omit<JitOptions, "threshold" | "hotWindow">>;

  /** @param _b binaryen as loaded (translation uses the live instance, which replaces one that aborted) */
  constructor(_b: Binaryen, private readonly cpu: Cpu, opts: JitOptions = {}) {
    const mode = opts.mode ?? "jit";
    this.threshold = mode === "jit" ? 1 : Math.max(1, opts.threshold ?? 64);
    this.opts = {
      mode, callout: opts.callout ?? true, maxBlocks: opts.maxBlocks ?? 128, validate: opts.validate ?? false,
      keepText: opts.keepText ?? false, codeCache: opts.codeCache ?? true, strict: opts.strict ?? false,
      beforeTranslate: opts.beforeTranslate ?? null, compileShare: opts.compileShare ?? (mode === "auto" ? AUTO_COMPILE_SHARE : Infinity),
    };
    this.budgetAt = performance.now();
    this.window = mode === "auto" ? opts.hotWindow ?? HOT_WINDOW_PER_RUN * this.threshold : Infinity;
  }

  /** The run loop's hook (cpu.ts): run compiled code for `blk` at `eip`, or decline. */
  runBlock(cpu: Cpu, blk: Block, eip: number): boolean {
    const e = blk.engineData as Entry | null;
    if (e !== null && e.engine === this) {
      // The steady state, checked first: code for this entry, still valid, and no segment cache
      // change since its segment snapshots were last found to hold (that covers stack32 too).
      const c = e.code;
      if (c !== null && c.eip === eip && c.region.valid && c.region.segEpoch === cpu.segEpoch && cpu.mmioLog.length === 0) {
        return this.runCompiled(cpu, e, c, eip);
      }
    }
    return this.enter(cpu, blk, eip);
  }

  /** `runBlock` for everything but the steady state: count, compile, check the segments, decline. */
  private enter(cpu: Cpu, blk: Block, eip: number): boolean {
    let e = blk.engineData as Entry | null;
    if (e === null || e.engine !== this) blk.engineData = e = this.newEntry();
    let c = e.code;
    if (c !== null && !c.region.valid) c = e.code = null; // compile again from this entry
    if (c === null) {
      if (e.dead) return false;
      if (++e.count < this.threshold) {
        if (e.count === 1) e.since = cpu.icount;
        return false;
      }
      // Under auto, only a block that reached the threshold within a window of instructions (a
      // loop's, or a hot function's): code that runs now and then (a kernel's paths, a C program's
      // one-shot code) counts afresh, and never pays a compile it could not earn back.
      if (this.window !== Infinity && cpu.icount - e.since > this.window) {
        e.count = 1;
        e.since = cpu.icount;
        return false;
      }
      // binaryen's instance aborted and a fresh one is loading: interpret meanwhile.
      const b = liveBinaryen();
      if (b === null) return false;
      // Compiling cannot be preempted: with less time left before the run's deadline than a
      // compile may take, the block stays interpreted (the deadline then holds within a block).
      const t = performance.now();
      if (cpu.deadline !== Infinity && cpu.deadline - t < 2 * compileCostMs) return false;
      if (this.opts.compileShare !== Infinity) {
        this.budgetMs = Math.min(COMPILE_BURST_MS, this.budgetMs + (t - this.budgetAt) * this.opts.compileShare);
        this.budgetAt = t;
        if (this.budgetMs <= 0) {
          e.count = this.threshold >> 1; // hot still: asked again after half the threshold
          e.since = cpu.icount;
          return false;
        }
      }
      const cachedBefore = this.stats.cached, blocksBefore = this.stats.blocks;
      c = this.compileSafely(cpu, blk, eip, b);
      const spent = performance.now() - t;
      this.budgetMs -= spent;
      // The estimates follow real compiles only: a code-cache hit costs next to nothing.
      if (this.stats.cached === cachedBefore) {
        compileCostMs += (spent - compileCostMs) * 0.25;
        if (this.stats.blocks > blocksBefore) blockCostMs += (spent / (this.stats.blocks - blocksBefore) - blockCostMs) * 0.25;
      }
      // Compiling takes time the run loop's wall-clock check (every 4096 blocks) does not see.
      if (cpu.deadlinePassed()) return true;
      if (c === null) {
        e.dead = true;
        return false;
      }
    }
    if (c.eip !== eip || cpu.mmioLog.length !== 0) return false;
    const r = c.region;
    if (r.stack32 !== cpu.stack32 || !this.segsHold(cpu, r)) {
      // Compiled against other segment values: compile again for these (a few times at most).
      e.code = null;
      e.count = 0;
      if (++e.recompiles > 4) e.dead = true;
      return false;
    }
    return this.runCompiled(cpu, e, c, eip);
  }

  /** Run compiled code `c` (entry `e`) at `eip`, whose segment snapshots hold. */
  private runCompiled(cpu: Cpu, e: Entry, c: Compiled, eip: number): boolean {
    const r = c.region;
    // The timer is an integer or Infinity: truncating it (`| 0`) costs no check, where passing the
    // double to wasm's i32 parameter would.
    const timer = cpu.timer;
    const fuel = timer < HARD_CHUNK ? timer | 0 : HARD_CHUNK;
    if (fuel < c.need) return false;
    cpu.stop = false;
    let n = r.run(c.index, fuel);
    const stats = this.stats;
    stats.runs++;
    const site = n >>> SITE_SHIFT;
    if (site !== 0) {
      // The run stopped before an IN or OUT (an exit site): execute it here, as the interpreter
      // would, keeping its VM exit. The common case records the exit directly (Cpu.ioExitFast).
      n &= (1 << SITE_SHIFT) - 1;
      const s = r.exitSites[site - 1];
      if (cpu.ioExitFast(s.eip, s.len, s.qual, s.port)) cpu.exitBlock = s.blk;
      else n += exitSiteSlow(cpu, r.table, s);
    }
    if (r.watched) this.watch(cpu, r, e);
    if (n === 0 && (cpu.st[St.RIP] >>> 0) === eip && !cpu.exitPending) {
      stats.declined++;
      return false;
    }
    stats.instructions += n;
    cpu.retire(n);
    // The run loop checks the wall clock every 4096 blocks; a run of compiled code can be many.
    if (n >= CHUNK >> 1) cpu.deadlinePassed();
    return true;
  }

  /** After a run of a region that left successors out or has guarded edges: compile again when it pays. */
  private watch(cpu: Cpu, r: Region, e: Entry): void {
    if ((r.unfetched.length !== 0 || r.cold.length !== 0) && ++r.runs === REDISCOVER_RUNS &&
        (this.nowFetchable(cpu, r) || r.cold.some((b) => this.hasRun(b)))) {
      // Code it could not look at then is mapped now (jit mode compiles on first sight, before a
      // call's target page was ever fetched), or a path left out as cold has run since: compile
      // this entry again, taking those blocks in.
      this.rediscover(e);
    } else if (r.guarded.size !== 0 && r.guarded.has(cpu.st[St.RIP] >>> 0) && ++r.guardMisses === REDISCOVER_RUNS) {
      // It keeps leaving at a guarded edge: that page maps elsewhere now. Compile again for the new mapping.
      this.rediscover(e);
    }
  }

  /** Decoded code on a host page was dropped: so is the compiled code for it. */
  invalidatePage(hostPage: number): void {
    const list = this.byPage.get(hostPage);
    if (list === undefined) return;
    for (const c of list) {
      if (c.region.valid) this.stats.invalidated++;
      c.region.valid = false;
    }
    this.byPage.delete(hostPage);
  }

  /** Some decoded blocks on a host page were dropped (a write hit their bytes): so is every region holding one. */
  invalidateBlocks(hostPage: number, blocks: Block[]): void {
    // Code that is written to is left out of other entries' regions from now on (it may still be
    // an entry itself): a loop that patches a block it only jumps to afterwards would otherwise
    // throw its own region away at every write.
    if (this.written.size >= MAX_WRITTEN) this.written.clear();
    for (const b of blocks) this.written.add(b.spans[0] * 0x1000 + b.spans[1]);
    const list = this.byPage.get(hostPage);
    if (list === undefined) return;
    for (const c of list) {
      if (c.region.valid && blocks.includes(c.blk)) {
        this.stats.invalidated++;
        c.region.valid = false;
      }
    }
    // Forget the entries of regions no longer valid (dropped here or through another page).
    const keep = list.filter((c) => c.region.valid);
    if (keep.length === 0) this.byPage.delete(hostPage);
    else this.byPage.set(hostPage, keep);
  }

  private newEntry(): Entry {
    return { engine: this, count: 0, since: 0, code: null, dead: false, recompiles: 0, rediscovered: 0 };
  }

  /** Compile `e`'s entry again at its next run (a few times at most). */
  private rediscover(e: Entry): void {
    if (++e.rediscovered > MAX_REDISCOVERIES) return;
    e.code = null;
    // At its next run, under auto too: counting up from 0 again would interpret the loop meanwhile,
    // and another block of it could reach the threshold first and become the entry.
    e.count = this.threshold - 1;
    e.since = this.cpu.icount;
  }

  /** Whether `b` has run under this engine: entries are made by enter() (the run loop offered the block) and for a region's entry. */
  private hasRun(b: Block): boolean {
    const e = b.engineData as Entry | null;
    return e !== null && e.engine === this;
  }

  private nowFetchable(cpu: Cpu, r: Region): boolean {
    const csBase = cpu.segBase[Seg.CS];
    return r.unfetched.some((t) => this.fetchable(cpu, (csBase + t) | 0));
  }

  private segsHold(cpu: Cpu, r: Region): boolean {
    if (r.segEpoch === cpu.segEpoch) return true; // no segment cache change since the last check
    for (let s = 0, u = r.usedSegs; u !== 0; s++, u >>>= 1) {
      if ((u & 1) === 0) continue;
      const sn = r.segs[s];
      if (cpu.segBase[s] !== sn.base || cpu.segLo[s] !== sn.lo || cpu.segHi[s] !== sn.hi || cpu.segNoWrite[s] !== sn.noWrite) return false;
    }
    r.segEpoch = cpu.segEpoch;
    return true;
  }

  /**
   * Whether decoding at linear address `la` needs no page walk (so looking ahead has no side
   * effects): its page hits in the TLB, and so does the next page unless the block cannot reach
   * it (a block is at most 64 instructions of at most 15 bytes, cpu.ts BLOCK_MAX_INSNS).
   */
  private fetchable(cpu: Cpu, la: number): boolean {
    if (!(cpu.st[St.CR0] & Cr0.PG)) return true;
    const p = la >>> 12, p1 = (p + 1) & 0xfffff;
    if (cpu.tlbR[p & (TLB_ENTRIES - 1)] !== p) return false;
    return (la & 0xfff) + MAX_BLOCK_BYTES <= 0x1000 || cpu.tlbR[p1 & (TLB_ENTRIES - 1)] === p1;
  }

  /**
   * `compile`, which no guest code can make throw: a region that fails to translate or compile
   * (a JIT bug, a binaryen abort, a wasm engine limit) is counted, reported once per process, and
   * left to the interpreter (null). Architectural events (faults, VM exits) are not failures.
   */
  private compileSafely(cpu: Cpu, blk: Block, eip: number, b: Binaryen): Compiled | null {
    const t0 = performance.now();
    try {
      return this.compile(cpu, blk, eip, b, t0);
    } catch (err) {
      if (err instanceof CpuFault || err === VmExitSignal.instance || this.opts.strict) throw err;
      this.stats.failures++;
      this.stats.compileMs += performance.now() - t0;
      // An abort of binaryen's instance (an assertion in its C++): stop using it, load a fresh one.
      if (err instanceof WebAssembly.RuntimeError) {
        this.stats.aborts++;
        binaryenAborted(b);
      }
      const msg = `the region at 0x${eip.toString(16)} did not compile and runs interpreted: ${err instanceof Error ? err.message : String(err)}`;
      this.firstFailure ??= msg;
      if (!failureReported) {
        failureReported = true;
        console.error(`vmxlab jit: ${msg} (further failures are counted in jitStats.failures, not printed)`);
      }
      return null;
    }
  }

  /** Discover the region around `blk`, translate and instantiate it; returns the code for `blk`. */
  private compile(cpu: Cpu, blk: Block, eip: number, b: Binaryen, t0: number): Compiled | null {
    const csBase = cpu.segBase[Seg.CS];
    // Blocks on every page reachable without a page walk; an edge to another page than its
    // source's is guarded in the code by the fetch TLB entry of the target's page (section 2).
    const fetchHost = (la: number) => cpu.tlbH[(la >>> 12) & (TLB_ENTRIES - 1)];
    const blocks: RegionBlock[] = [{ blk, eip, host: fetchHost((csBase + eip) | 0) }];
    const seen = new Set<number>([eip]);
    const unfetched: number[] = [];
    // Under auto, only blocks that have run: a hot block's static successors reach much code that
    // never runs (error paths, other callees), which costs compile time and nothing else. Paths
    // left out leave the region; if they run later, the entry is compiled again (watch()).
    const warmOnly = this.opts.mode === "auto";
    const cold: Block[] = [];
    // Under a compile budget (auto), a region is no larger than the budget left pays for, at the
    // process's running cost per block: lukewarm code gets small regions, a hot loop's fit anyway.
    const maxBlocks = this.opts.compileShare === Infinity ? this.opts.maxBlocks
      : Math.max(MIN_REGION_BLOCKS, Math.min(this.opts.maxBlocks, Math.floor(this.budgetMs / blockCostMs)));
    for (let q = 0; q < blocks.length && blocks.length < maxBlocks; q++) {
      // A call's return site counts as warm when the call is: the callee returns there.
      const ret = warmOnly ? callReturnSite(blocks[q]) : -1;
      for (const t of successors(blocks[q])) {
        if (seen.has(t)) continue;
        seen.add(t);
        const la = (csBase + t) | 0;
        if (t > cpu.segHi[Seg.CS]) continue;
        if (!this.fetchable(cpu, la)) {
          if (unfetched.length < 8) unfetched.push(t);
          continue;
        }
        if (this.written.size !== 0 && this.written.has(fetchHost(la) + (la & 0xfff))) continue; // code that is written to

        let b2: Block;
        try {
          b2 = cpu.getBlock(t);
        } catch (e) {
          if (e instanceof CpuFault) continue;
          throw e;
        }
        if (!b2.valid || blocks.length >= maxBlocks) continue;
        if (warmOnly && t !== ret && !this.hasRun(b2)) {
          if (cold.length < 8) cold.push(b2);
          continue;
        }
        blocks.push({ blk: b2, eip: t, host: fetchHost(la) });
      }
    }
    const segs: SegSnap[] = [];
    for (let s = 0; s < 8; s++) segs.push({ base: cpu.segBase[s], lo: cpu.segLo[s], hi: cpu.segHi[s], noWrite: cpu.segNoWrite[s] });
    const spec: RegionSpec = { area: cpu.area, code32: cpu.code32, stack32: cpu.stack32, segs, blocks, callout: this.opts.callout, softChunk: CHUNK };
    // The same code under the same assumptions compiles to the same module: take it from the
    // process's code cache when another machine (or this one, before a reset) compiled it already.
    const key = this.opts.codeCache ? regionKey(spec) : "";
    let code = key === "" ? undefined : codeCache.get(key);
    if (code === undefined || (this.opts.keepText && code.text === undefined)) {
      code = this.translate(b, spec, eip);
      if (key !== "") codeCache.set(key, code);
    } else if (code.module !== null) {
      this.stats.cached++;
    }
    if (code.module === null) {
      this.stats.compileMs += performance.now() - t0;
      return null;
    }
    // The code's blocks are the discovery's, in its order (translateRegion keeps it).
    const table: RegionBlock[] = [];
    const compiledBlocks: { rb: RegionBlock; index: number; need: number }[] = [];
    code.blocks.forEach((b, i) => {
      if (b.index < 0) return;
      table[b.index] = blocks[i];
      compiledBlocks.push({ rb: blocks[i], index: b.index, need: b.need });
    });
    const inst = new WebAssembly.Instance(code.module, {
      e: { mem: cpu.memory, slow: (la: number, size: number, write: number) => slow(cpu, la, size, write), callout: (i: number, k: number) => callout(cpu, table, i, k, 0) },
    });
    const exp = inst.exports as Record<string, unknown>;
    const text = code.text;
    const region: Region = {
      run: exp.run as (entry: number, fuel: number) => number,
      stack32: cpu.stack32, usedSegs: code.usedSegs, segs, table, text, valid: true,
      unfetched, cold, runs: 0, guarded: code.guarded, guardMisses: 0, segEpoch: -1,
      watched: unfetched.length !== 0 || cold.length !== 0 || code.guarded.size !== 0,
      exitSites: code.exitSites.map((x) => ({ ...x, blk: table[x.index].blk })),
    };
    if (text !== undefined) this.texts.push(text);
    let mine: Compiled | null = null;
    for (const { rb, index, need } of compiledBlocks) {
      const c: Compiled = { region, blk: rb.blk, index, eip: rb.eip >>> 0, need };
      // A region has one entry, the block it was compiled for: the relooper then gives plain
      // nested loops. (Entering at any block made every loop a label-dispatch loop, 2-3x slower.)
      // The other blocks get regions of their own if the run loop ever offers them.
      if (rb.blk === blk || code.allEntries) {
        let e = rb.blk.engineData as Entry | null;
        if (e === null || e.engine !== this) rb.blk.engineData = e = this.newEntry();
        e.code = c;
        if (rb.blk === blk) mine = c;
      } else {
        // A block inside the region counts again towards a region of its own: the counts it
        // gathered while interpreted belong to the entry's loop, and the first path into the loop
        // from outside the region (after a cold exit) would otherwise make it an entry in the loop's
        // middle (crc32's inner loop entered at its tail ran at 0.6x the speed).
        const e = rb.blk.engineData as Entry | null;
        if (e !== null && e.engine === this && e.code === null) e.count = 0;
      }
      for (const p of rb.blk.pages) {
        let list = this.byPage.get(p);
        if (list === undefined) this.byPage.set(p, list = []);
        list.push(c);
      }
    }
    this.stats.regions++;
    this.stats.blocks += compiledBlocks.length;
    this.stats.inline += code.inline;
    this.stats.callouts += code.callouts;
    this.stats.compileMs += performance.now() - t0;
    return mine;
  }

  /** Translate a region and compile its module (the code cache keeps the result). */
  private translate(b: Binaryen, spec: RegionSpec, eip: number): RegionCode {
    let tr: Translation, allEntries = false;
    this.opts.beforeTranslate?.(b);
    try {
      tr = translateRegion(b, spec);
    } catch (e) {
      // An abort (a RuntimeError) is a bug in the translation: not retried.
      if (e instanceof Error) throw e;
      // binaryen's relooper rejected the graph from one entry (an exception object from its C++
      // side): translate again with every block an entry, which it always accepts.
      allEntries = true;
      tr = translateRegion(b, { ...spec, allEntries });
    }
    const blocks = tr.blocks.map((t) => ({ index: t.index, need: t.need }));
    const exitSites = tr.exitSites.map(({ blk: _, ...x }) => x);
    const shape = { usedSegs: tr.usedSegs, inline: tr.inline, callouts: tr.callouts, guarded: tr.guarded, exitSites, blocks, allEntries };
    if (!tr.blocks.some((t) => t.index >= 0) || tr.blocks[0].index < 0) {
      releaseModule(tr.module);
      return { ...shape, module: null };
    }
    if (this.opts.validate && !tr.module.validate()) {
      const text = tr.module.emitText();
      releaseModule(tr.module);
      throw new Error(`Invalid wasm for the region at 0x${eip.toString(16)}:\n${text}`);
    }
    let text: string | undefined, bin: Uint8Array;
    try {
      text = this.opts.keepText ? tr.module.emitText() : undefined;
      bin = tr.module.emitBinary();
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) abandonModule(tr.module);
      else releaseModule(tr.module);
      throw e;
    }
    releaseModule(tr.module);
    return { ...shape, module: new WebAssembly.Module(bin as Uint8Array<ArrayBuffer>), text };
  }
}

/**
 * The memory slow path of compiled code: translate `la` (page walk, accessed and dirty bits, TLB
 * fill) and return the host offset, or -1 to hand the instruction back to the interpreter (a fault,
 * MMIO, an access straddling pages, a write to a page holding code, or code invalidated by the walk).
 */
function slow(cpu: Cpu, la: number, size: number, write: number): number {
  if ((la & 0xfff) + size > 0x1000) return -1;
  if (write) {
    // A page that has no write entry only because it holds code (data next to code): its bytes
    // that no decoded block covers are written without a page walk.
    const p = la >>> 12, e = p & (TLB_ENTRIES - 1);
    if (cpu.tlbWC[e] === p && cpu.tlbR[e] === p) {
      const h = cpu.tlbH[e] + (la & 0xfff);
      if (!cpu.touchesCode(h, size)) return h;
    }
  }
  try {
    if (write) {
      // Probe first: a write the interpreter will redo must leave no accessed or dirty bit behind.
      // A write to a page holding code is done here only when it touches none of the code's bytes
      // (Cpu.codeWritten keeps a bitmap per page); else the interpreter does it and drops the code.
      const p = cpu.translate(la, 1, true);
      if (p < 0 || cpu.touchesCode(p, size)) return -1;
    }
    const h = cpu.translate(la, write ? 1 : 0, false, size);
    if (h < 0 || cpu.stop) return -1;
    return h;
  } catch (e) {
    if (e instanceof CpuFault) return -1;
    throw e;
  }
}

/**
 * An exit site's instruction when `Cpu.ioExitFast` does not apply (the I/O permission bitmap, IO
 * exiting off): the interpreter's semantic function, keeping its exit.
 * @returns 1 when it completed without an exit (it retired), else 0
 */
function exitSiteSlow(cpu: Cpu, table: RegionBlock[], s: ExitSite): number {
  const st = callout(cpu, table, s.index, s.k, 1);
  if (st === 1 && !cpu.exitPending) cpu.st[St.RIP] = s.eip; // a fault: the interpreter raises it
  return st !== 1 ? 1 : 0;
}

/**
 * Run the interpreter's semantic function for instruction `k` of compiled block `index`: a callout
 * (an instruction outside the translated subset), or with `keepExit` an exit call (IN/OUT, whose
 * VM exit is recorded and kept pending; translate.ts isExitCall).
 * @returns 0 done; 1 not done: a fault (nothing changed, the interpreter runs it again and raises
 *   it), an exit from a callout (undone likewise), or the exit of an exit call (RIP back at the
 *   instruction, which has not retired); 2 done and the run must end (it wrote to a code page)
 */
function callout(cpu: Cpu, table: RegionBlock[], index: number, k: number, keepExit: number): number {
  const rb = table[index];
  const ins = rb.blk.insns[k];
  cpu.st[St.RIP] = (rb.eip + ins.nextOff) & rb.blk.ipMask;
  try {
    ins.exec(cpu, ins);
  } catch (e) {
    if (e instanceof CpuFault || e === VmExitSignal.instance) {
      cpu.exitPending = false;
      cpu.stop = false;
      cpu.mmioPos = 0;
      return 1;
    }
    throw e;
  }
  if (cpu.exitPending) {
    if (keepExit) {
      // As the interpreter does for an exit: the run loop resumes through this block's links.
      cpu.exitBlock = rb.blk;
    } else {
      cpu.exitPending = false;
      cpu.stop = false;
    }
    return 1;
  }
  return cpu.stop ? 2 : 0;
}

/**
 * A small loop (ALU, loads and stores, IMUL, a call and return, SETcc, an OUT) for `warmUp`:
 * mov ecx,100; l: mov eax,[ebx+4]; add eax,ecx; mov [ebx+8],eax; imul edx,eax,3; call f; dec ecx;
 * jnz l; out 0x80,al; hlt; nop; f: push ebp; shl eax,2; cmp eax,edx; setl al; pop ebp; ret
 */
const WARM_CODE = [
  0xb9, 0x64, 0, 0, 0, 0x8b, 0x43, 0x04, 0x01, 0xc8, 0x89, 0x43, 0x08, 0x6b, 0xd0, 0x03, 0xe8, 0x07, 0, 0, 0,
  0x49, 0x75, 0xed, 0xe6, 0x80, 0xf4, 0x90, 0x55, 0xc1, 0xe0, 0x02, 0x39, 0xd0, 0x0f, 0x9c, 0xc0, 0x5d, 0xc3,
];

/**
 * Translate and compile a small region once, right after binaryen loads: V8 compiles binaryen's
 * own wasm lazily, function by function, so the first region a process compiled cost 100–300 ms
 * (a run's first compile, counted against its time and its deadline) where later ones cost a few.
 * Failures are ignored (the first real compile is then just slower).
 */
export function warmUp(b: Binaryen): void {
  try {
    const blocks: RegionBlock[] = [];
    for (const start of [0, 0x15, 0x18, 0x1c]) {
      const insns = [];
      let off = start;
      for (;;) {
        const at = off;
        const ins = decode((k) => WARM_CODE[at + k] ?? 0x90, true);
        ins.bytes = WARM_CODE.slice(at, at + ins.len);
        off += ins.len;
        ins.nextOff = off - start;
        ins.pos = insns.length;
        insns.push(ins);
        if (ins.terminal) break;
      }
      blocks.push({ blk: new Block(start * 2 + 1, insns, [0], -1), eip: start, host: 0 });
    }
    const flat: SegSnap = { base: 0, lo: 0, hi: 0xffffffff, noWrite: 0 };
    const tr = translateRegion(b, { area: 0, code32: true, stack32: true, segs: Array.from({ length: 8 }, () => flat), blocks, callout: true, softChunk: CHUNK });
    const bin = tr.module.emitBinary();
    releaseModule(tr.module);
    new WebAssembly.Module(bin as Uint8Array<ArrayBuffer>);
  } catch {
    // Not needed for correctness.
  }
}

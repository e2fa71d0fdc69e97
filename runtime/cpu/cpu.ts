/**
 * The processor: guest state in the VM's WebAssembly.Memory, segmentation, paging with a software
 * TLB, lazy flags, exception and interrupt delivery, VM exits under the VMCS controls, and the
 * interpreter's block loop.
 *
 * Instructions are decoded once into blocks (straight-line runs ending at a control transfer, an
 * exiting instruction or a page end) and cached by host address; a write to a page that holds
 * decoded code goes through the slow path and drops that page's blocks (self-modifying code).
 *
 * Rules every semantic function (ops.ts) follows, so that a fault or an exit can restart the
 * instruction: read and check everything first, write memory next, commit registers last.
 */
import { decode } from "./decoder.ts";
import { innerStack } from "./far.ts";
import { TaskSwitchReason, taskSwitch } from "./task.ts";
import { CpuFault, VmExitSignal } from "./fault.ts";
import { descAttr, descBase, descLimit } from "./descriptor.ts";
import { Insn } from "./insn.ts";
import * as flagsMod from "./flags.ts";
import * as stateMod from "./state.ts";
import * as vmcsMod from "./vmcs.ts";
import { Vmcs } from "./vmcs.ts";

// Module-local bindings of the constant tables: V8 folds a module's own consts into optimised code
// but reads an imported binding from its module cell, with a TDZ check, at every use (DESIGN-NOTES.md).
const { Ar, ARITH_FLAGS, Cr0, Cr4, Fl, SEG_ATTR, SEG_BASE, SEG_LIMIT, SEG_SEL, SEG_WORDS, St, STATE_BYTES, TLB_ENTRIES, TLB_HOST, TLB_TAG_R, TLB_TAG_W, Vec, Seg } = stateMod;
const { CpuBased, EptQual, ExitReason, IntrInfo, IoQual, ioQualBits, PinBased, VmcsField, ExitCtl } = vmcsMod;

/** What the processor needs from the platform: guest-physical memory (the memslots, as EPT maps them). */
export interface PhysMap {
  /**
   * Translate a guest-physical address to a byte offset in the VM memory.
   * @returns the offset, or -1 when no memslot covers the address (an EPT violation)
   */
  gpaToHost(gpa: number): number;
  /** Whether the memslot holding `gpa` is read-only (KVM_MEM_READONLY): writes are EPT violations. */
  isReadonly(gpa: number): boolean;
}

const { carryOf, eflagsImage, LAZY_ALL, LAZY_NO_CF, LAZY_RES, LF, NUMBER_ALU, overflowWord } = flagsMod;

const PARITY = new Uint8Array(256);
for (let v = 0; v < 256; v++) {
  let b = v, p = 1;
  while (b) { p ^= b & 1; b >>= 1; }
  PARITY[v] = p ? Fl.PF : 0;
}

/**
 * A faster core for some blocks (the JIT, jit/engine.ts), set as `cpu.engine`. The run loop offers
 * it every block it is about to interpret (not while single-stepping, tracing instructions or in an
 * interrupt shadow); the engine runs compiled code and advances RIP, state and the instruction
 * count (`retire`) exactly as interpreting would, handing back before any instruction it cannot run.
 */
export interface BlockEngine {
  /** Run the block `blk` at `eip` (and maybe blocks after it); false when the interpreter should run it. */
  runBlock(cpu: Cpu, blk: Block, eip: number): boolean;
  /** The decoded blocks on a host page were dropped (a write hit the page). */
  invalidatePage(hostPage: number): void;
  /** These decoded blocks, with bytes on `hostPage`, were dropped (a write hit their bytes); the page's other blocks stay. */
  invalidateBlocks(hostPage: number, blocks: Block[]): void;
}

/** A decoded block. */
export class Block {
  constructor(
    readonly key: number,
    readonly insns: Insn[],
    /** Host pages the block's bytes occupy (one, or two when the last instruction straddles). */
    readonly pages: number[],
    /** EIP wraps at 64 KiB in 16-bit code. */
    readonly ipMask: number,
  ) {
    this.hasRep = insns.some((i) => i.rep !== 0);
  }
  valid = true;
  /**
   * The host bytes the block's instructions occupy, per page: `[page, lo, hi]` (offsets in the
   * page, hi exclusive), one triple, or two when the last instruction straddles into the next page.
   */
  spans: number[] = [];
  /** The block engine's record for this block (cpu.engine), dropped with the block. */
  engineData: unknown = null;
  /** Holds a REP-prefixed instruction (whose iterations share the preemption timer). */
  readonly hasRep: boolean;
  /**
   * Links to the blocks that followed this one (the taken and fall-through successors), so a hot
   * loop goes from block to block without the translate-and-look-up of getBlock. A link holds while
   * the processor's `linkEpoch` is the one it was made in (CS, paging and privilege unchanged).
   */
  link0: Block | null = null;
  link0Eip = -1;
  link1: Block | null = null;
  link1Eip = -1;
  linkEpoch = -1;
}

/** Access kinds for translation. */
const ACC_READ = 0, ACC_WRITE = 1, ACC_FETCH = 2;

/** What `Cpu.saveState` keeps (plain data: structured-cloneable). */
export interface CpuState {
  /** The state block, STATE_BYTES. */
  block: Uint8Array;
  mmioLog: MmioAccess[];
  mmioPending: MmioAccess | null;
  shutdownDetail: { vectors: number[]; rip: number; bytes: number[] } | null;
  nullVectorIsFatal: boolean;
  hostIntrAt: number;
}

/** A pending memory-mapped access (EPT violation) the VMM must complete; see `mmioLog`. */
export interface MmioAccess {
  gpa: number;
  size: number;
  isWrite: boolean;
  /** For writes: the value written; for reads: the value userspace returned. */
  value: number;
  /**
   * The access was made while delivering an event (an IDT, GDT or TSS read, a page walk, a push):
   * no instruction can be restarted to consume it, so the kernel reports it as KVM does an MMIO
   * access during event delivery (KVM_INTERNAL_ERROR_DELIVERY_EV).
   */
  duringDelivery?: boolean;
}

const BLOCK_MAX_INSNS = 64;
const CACHE_SIZE = 4096;

export class Cpu {
  /** The VM's memory; guest RAM and this vCPU's state area live in it. */
  readonly memory: WebAssembly.Memory;
  /** Byte offset of this vCPU's state area in `memory`. */
  readonly area: number;
  st!: Int32Array;
  st8!: Uint8Array;
  st16!: Uint16Array;
  stf!: Float64Array;
  m8!: Uint8Array;
  m32!: Int32Array;
  tlbR!: Int32Array;
  tlbW!: Int32Array;
  /**
   * Per TLB slot, the linear page when the page would have a write entry but for the code it holds
   * (writable, dirty, not read-only), else -1; valid only while `tlbR` holds the same page (both are
   * set at a fill). The JIT's slow path writes such a page's non-code bytes without a page walk.
   */
  readonly tlbWC = new Int32Array(TLB_ENTRIES).fill(-1);
  tlbH!: Int32Array;

  /** Segment cache derived from the segment registers: base, lowest and highest valid offset. */
  readonly segBase = new Float64Array(8);
  readonly segLo = new Float64Array(8);
  readonly segHi = new Float64Array(8);

  vmcs: Vmcs | null = null;
  phys: PhysMap;
  /** The JIT tier, when one is attached (see BlockEngine); null interprets everything. */
  engine: BlockEngine | null = null;

  /**
   * Instructions the loop may still run in this entry before something is due: the preemption
   * timer, or the host's timer interrupt (`hostIntrAt`); Infinity when neither is armed.
   */
  timer = Infinity;
  /** The instruction count at which the preemption timer expires in this entry (Infinity when off). */
  private ptEnd = Infinity;
  /**
   * The instruction count at which the host's timer interrupt arrives (KVM's in-kernel PIT, whose
   * time is derived from the instruction count); with external-interrupt exiting it is a VM exit
   * (reason 1) at exactly that instruction boundary. Infinity for none.
   */
  hostIntrAt = Infinity;
  /** CPU_BASED INTR_WINDOW_EXITING, cached at VM entry. */
  private intrWindow = false;
  /** Set by an instruction or a code-page write to end the current block after it. */
  stop = false;
  /** A VM exit has been recorded in the VMCS; the run loop returns. */
  exitPending = false;
  /** Iterations a REP string instruction may still run in this block (the preemption timer's share). */
  repLimit = 1 << 20;
  /** Extra instructions retired inside one exec (REP iterations beyond the first). */
  repExtra = 0;
  /** MMIO accesses the VMM has completed for the instruction being restarted, in order. */
  mmioLog: MmioAccess[] = [];
  mmioPos = 0;
  /** The access that caused the last EPT violation, for the kernel's MMIO emulation. */
  mmioPending: MmioAccess | null = null;
  /** Exceptions being delivered (for #DF and triple-fault detection). */
  private delivering = 0;
  private firstVector = -1;
  /** Vectors of the faults that led to the last triple fault, and the bytes of the faulting instruction. */
  shutdownDetail: { vectors: number[]; rip: number; bytes: number[] } | null = null;
  /** Treat a zero real-mode IVT entry as "no handler" (no BIOS is loaded): see DESIGN notes. */
  nullVectorIsFatal = true;
  /** Wall-clock deadline (performance.now()); exceeding it makes the run loop return, as a host signal would. */
  deadline = Infinity;
  interruptedByHost = false;
  /**
   * The FERR# output (x87 errors with CR0.NE = 0, x87/x87.ts): the PC routes it to IRQ13. Null when
   * nothing is wired (the x87 then behaves as if IGNNE# were asserted).
   */
  ferr: ((asserted: boolean) => void) | null = null;
  /** FERR# is asserted (until the error summary clears). */
  ferrAsserted = false;
  /** The kernel has handled an external-interrupt exit since FERR# was asserted (vmx.ts). */
  ferrExitTaken = false;
  /**
   * FISTTP (an SSE3 instruction) decodes. The processor implements SSE3 (CPUID reports it), so this
   * is on; off, FISTTP is #UD, as on a processor without SSE3.
   */
  sse3 = true;
  /** Trace hook for `--trace insn`: called before each instruction when set (slows the loop). */
  onInsn: ((cpu: Cpu, i: Insn, eip: number) => void) | null = null;

  // Block cache
  private readonly cache: (Block | null)[] = new Array(CACHE_SIZE).fill(null);
  private readonly blocks = new Map<number, Block>();
  private readonly pageBlocks = new Map<number, Block[]>();
  /** Host pages holding decoded code: writes to them take the slow path (no TLB write entry). */
  codePage!: Uint8Array;
  /**
   * Per code page, a bitmap of the bytes its decoded blocks cover (128 words, bit k of word w is
   * byte 32w + k): a write that touches none of them leaves the page's code alone, so data sharing
   * a page with code (loop variables next to the loop) costs a slow-path write, not the code.
   */
  private readonly codeBits = new Map<number, Int32Array>();
  /** Decoded blocks dropped because a write hit their bytes (or their page, from outside the processor). */
  codeInvalidations = 0;
  /** A scratch instruction for decoding outside the block cache. */
  private readonly scratch = new Insn();

  /** The instruction being executed: block entry EIP and index, for restarts. */
  private curBlockEip = 0;

  constructor(memory: WebAssembly.Memory, area: number, phys: PhysMap) {
    this.memory = memory;
    this.area = area;
    this.phys = phys;
    this.refreshViews();
    this.flushTlb();
  }

  /** Recreate typed-array views after the memory grew (memslots added). */
  refreshViews(): void {
    const buf = this.memory.buffer;
    this.st = new Int32Array(buf, this.area, STATE_BYTES / 4);
    this.st8 = new Uint8Array(buf, this.area, STATE_BYTES);
    this.st16 = new Uint16Array(buf, this.area, STATE_BYTES / 2);
    this.stf = new Float64Array(buf, this.area, STATE_BYTES / 8);
    this.m8 = new Uint8Array(buf);
    this.m32 = new Int32Array(buf);
    this.tlbR = new Int32Array(buf, this.area + TLB_TAG_R, TLB_ENTRIES);
    this.tlbW = new Int32Array(buf, this.area + TLB_TAG_W, TLB_ENTRIES);
    this.tlbH = new Int32Array(buf, this.area + TLB_HOST, TLB_ENTRIES);
    const pages = buf.byteLength >>> 12;
    if (!this.codePage || this.codePage.length !== pages) {
      const old = this.codePage;
      this.codePage = new Uint8Array(pages);
      if (old) this.codePage.set(old.subarray(0, Math.min(old.length, pages)));
    }
  }

  // ------------------------------------------------------------------------------------------
  // Registers
  // ------------------------------------------------------------------------------------------
  get eip(): number { return this.st[St.RIP] >>> 0; }
  set eip(v: number) { this.st[St.RIP] = v; }
  get icount(): number { return this.icountLive; }
  set icount(v: number) { this.icountLive = v; }
  get cpl(): number { return this.st[St.CPL]; }
  get cr0(): number { return this.st[St.CR0]; }
  get cr4(): number { return this.st[St.CR4]; }
  /** Read a general-purpose register by state index and size (see insn.ts regIndex). */
  getReg(idx: number, size: number): number {
    return size === 4 ? this.st[idx] : size === 2 ? this.st16[idx] : this.st8[idx];
  }
  setReg(idx: number, size: number, v: number): void {
    if (size === 4) this.st[idx] = v;
    else if (size === 2) this.st16[idx] = v;
    else this.st8[idx] = v;
  }
  reg32(r: number): number { return this.st[r << 1]; }
  setReg32(r: number, v: number): void { this.st[r << 1] = v; }
  /** The stack pointer as the current stack size sees it (SS.B, SDM 6.2.3). */
  /** SS.B and CS.D, cached by refreshSeg (read on every push, pop and block). */
  stack32 = false;
  code32 = false;
  get protectedMode(): boolean { return (this.st[St.CR0] & Cr0.PE) !== 0; }
  get v86(): boolean { return (this.st[St.RFLAGS] & Fl.VM) !== 0; }

  // ------------------------------------------------------------------------------------------
  // Flags: the last arithmetic operation is kept (op, result, operands) and flags are computed
  // only when read. LAZY_MASK says which arithmetic flags are pending; the rest are in RFLAGS.
  // ------------------------------------------------------------------------------------------
  setLazy(op: number, bits: number, res: number, dst: number, src: number, mask: number): void {
    const st = this.st;
    st[St.LAZY_OP] = op | (bits << 8);
    st[St.LAZY_RES] = res;
    st[St.LAZY_DST] = dst;
    st[St.LAZY_SRC] = src;
    st[St.LAZY_MASK] = mask;
  }
  /** Flags from an ADD of `size` bytes (also INC with keepCf). */
  flagsAdd(size: number, dst: number, src: number, res: number): void {
    this.setLazy(LF.ADD, size << 3, res, dst, src, LAZY_ALL);
  }
  flagsSub(size: number, dst: number, src: number, res: number): void {
    this.setLazy(LF.SUB, size << 3, res, dst, src, LAZY_ALL);
  }
  flagsAdc(size: number, dst: number, src: number, res: number, cin: number): void {
    this.setLazy(cin ? LF.ADC1 : LF.ADD, size << 3, res, dst, src, LAZY_ALL);
  }
  flagsSbb(size: number, dst: number, src: number, res: number, cin: number): void {
    this.setLazy(cin ? LF.SBB1 : LF.SUB, size << 3, res, dst, src, LAZY_ALL);
  }
  flagsIncDec(size: number, dst: number, res: number, dec: boolean): void {
    this.materializeCF();
    this.setLazy(dec ? LF.SUB : LF.ADD, size << 3, res, dst, 1, LAZY_NO_CF);
  }
  /** Logic ops: CF=OF=0, AF=0 (undefined by the SDM; 0 is what silicon shows), ZF SF PF from the result. */
  flagsLogic(size: number, res: number): void {
    const st = this.st;
    st[St.RFLAGS] &= ~(Fl.CF | Fl.OF | Fl.AF);
    this.setLazy(LF.RES, size << 3, res, 0, 0, LAZY_RES);
  }
  /** Set CF, OF, AF explicitly and ZF SF PF from a result (shifts, multiplies). */
  flagsResult(size: number, res: number, cf: number, of: number, af: number = 0): void {
    const st = this.st;
    st[St.RFLAGS] = (st[St.RFLAGS] & ~(Fl.CF | Fl.OF | Fl.AF)) | (cf ? Fl.CF : 0) | (of ? Fl.OF : 0) | (af ? Fl.AF : 0);
    this.setLazy(LF.RES, size << 3, res, 0, 0, LAZY_RES);
  }
  private materializeCF(): void {
    const st = this.st;
    if (st[St.LAZY_MASK] & Fl.CF) {
      st[St.RFLAGS] = (st[St.RFLAGS] & ~Fl.CF) | this.lazyCF();
      st[St.LAZY_MASK] &= ~Fl.CF;
    }
  }
  private lazyCF(): number {
    const st = this.st;
    const v = st[St.LAZY_OP], bits = v >> 8;
    const m = bits === 32 ? -1 : (1 << bits) - 1;
    return carryOf(NUMBER_ALU, v & 0xff, st[St.LAZY_RES] & m, st[St.LAZY_DST] & m, st[St.LAZY_SRC] & m);
  }
  private lazyOF(): number {
    const st = this.st;
    const v = st[St.LAZY_OP];
    return (overflowWord(NUMBER_ALU, v & 0xff, st[St.LAZY_RES], st[St.LAZY_DST], st[St.LAZY_SRC]) >>> ((v >> 8) - 1)) & 1;
  }
  getCF(): number { return this.st[St.LAZY_MASK] & Fl.CF ? this.lazyCF() : this.st[St.RFLAGS] & 1; }
  getZF(): number {
    const st = this.st;
    if (st[St.LAZY_MASK] & Fl.ZF) {
      const bits = st[St.LAZY_OP] >> 8;
      return (bits === 32 ? st[St.LAZY_RES] : st[St.LAZY_RES] & ((1 << bits) - 1)) === 0 ? 1 : 0;
    }
    return (st[St.RFLAGS] >> 6) & 1;
  }
  getSF(): number {
    const st = this.st;
    if (st[St.LAZY_MASK] & Fl.SF) return (st[St.LAZY_RES] >>> ((st[St.LAZY_OP] >> 8) - 1)) & 1;
    return (st[St.RFLAGS] >> 7) & 1;
  }
  getOF(): number { return this.st[St.LAZY_MASK] & Fl.OF ? this.lazyOF() : (this.st[St.RFLAGS] >> 11) & 1; }
  getPF(): number {
    return this.st[St.LAZY_MASK] & Fl.PF ? (PARITY[this.st[St.LAZY_RES] & 0xff] ? 1 : 0) : (this.st[St.RFLAGS] >> 2) & 1;
  }
  getAF(): number {
    const st = this.st;
    if (st[St.LAZY_MASK] & Fl.AF) return (st[St.LAZY_DST] ^ st[St.LAZY_SRC] ^ st[St.LAZY_RES]) & 0x10 ? 1 : 0;
    return (st[St.RFLAGS] >> 4) & 1;
  }
  /** The architectural EFLAGS value. */
  getFlags(): number {
    const st = this.st;
    const m = st[St.LAZY_MASK];
    let f = st[St.RFLAGS];
    if (m) {
      f &= ~m;
      if (m & Fl.CF) f |= this.lazyCF();
      if (m & Fl.PF) f |= this.getPF() << 2;
      if (m & Fl.AF) f |= this.getAF() << 4;
      if (m & Fl.ZF) f |= this.getZF() << 6;
      if (m & Fl.SF) f |= this.getSF() << 7;
      if (m & Fl.OF) f |= this.lazyOF() << 11;
    }
    return (f | Fl.FIXED1) >>> 0;
  }
  /** Write EFLAGS wholesale (reserved bits forced: bit 1 set, bits 3, 5, 15 clear). */
  setFlags(v: number): void {
    this.st[St.RFLAGS] = eflagsImage(v);
    this.st[St.LAZY_MASK] = 0;
  }
  /** Evaluate condition code `cc` (SDM appendix B.1.4.7). */
  cond(cc: number): boolean {
    let r: number;
    switch (cc >> 1) {
      case 0: r = this.getOF(); break;
      case 1: r = this.getCF(); break;
      case 2: r = this.getZF(); break;
      case 3: r = this.getCF() | this.getZF(); break;
      case 4: r = this.getSF(); break;
      case 5: r = this.getPF(); break;
      case 6: r = this.getSF() ^ this.getOF(); break;
      default: r = (this.getSF() ^ this.getOF()) | this.getZF(); break;
    }
    return (r ^ (cc & 1)) !== 0;
  }

  // ------------------------------------------------------------------------------------------
  // Segments
  // ------------------------------------------------------------------------------------------
  /** Load a segment register's hidden part directly (KVM_SET_SREGS, descriptor loads, real mode). */
  setSeg(seg: number, sel: number, base: number, limit: number, attr: number): void {
    const o = St.SEG + seg * SEG_WORDS;
    const st = this.st;
    st[o + SEG_SEL] = sel & 0xffff;
    st[o + SEG_ATTR] = attr;
    st[o + SEG_LIMIT] = limit;
    st[o + SEG_BASE] = base;
    st[o + SEG_BASE + 1] = 0;
    this.refreshSeg(seg);
    if (seg === Seg.CS) this.linkEpoch++;
    if (seg === Seg.CS || seg === Seg.SS) this.updateCpl();
  }
  getSegSel(seg: number): number { return this.st[St.SEG + seg * SEG_WORDS + SEG_SEL]; }
  getSegBase(seg: number): number { return this.st[St.SEG + seg * SEG_WORDS + SEG_BASE] >>> 0; }
  getSegLimit(seg: number): number { return this.st[St.SEG + seg * SEG_WORDS + SEG_LIMIT] >>> 0; }
  getSegAttr(seg: number): number { return this.st[St.SEG + seg * SEG_WORDS + SEG_ATTR]; }
  /** Bumped whenever the derived segment cache may change (the JIT revalidates its snapshots then). */
  segEpoch = 0;
  /** Recompute the derived segment cache for `seg` from its hidden part. */
  refreshSeg(seg: number): void {
    this.segEpoch++;
    const o = St.SEG + seg * SEG_WORDS;
    const attr = this.st[o + SEG_ATTR];
    const limit = this.st[o + SEG_LIMIT] >>> 0;
    this.segBase[seg] = this.st[o + SEG_BASE] >>> 0;
    if (seg === Seg.SS) this.stack32 = (attr & Ar.DB) !== 0;
    else if (seg === Seg.CS) this.code32 = (attr & Ar.DB) !== 0;
    const pm = (this.st[St.CR0] & Cr0.PE) !== 0 && (this.st[St.RFLAGS] & Fl.VM) === 0;
    this.segNoWrite[seg] = pm && ((attr & Ar.CODE) !== 0 || (attr & Ar.WRITABLE) === 0) ? 1 : 0;
    if (attr & Ar.UNUSABLE) {
      this.segLo[seg] = 1;
      this.segHi[seg] = 0;
    } else if ((attr & Ar.S) && !(attr & Ar.CODE) && (attr & Ar.EXPAND_DOWN)) {
      // Expand-down data segment: valid offsets are limit+1 .. 0xFFFF or 0xFFFFFFFF (SDM 3.4.5.1).
      this.segLo[seg] = limit + 1;
      this.segHi[seg] = attr & Ar.DB ? 0xffffffff : 0xffff;
    } else {
      this.segLo[seg] = 0;
      this.segHi[seg] = limit;
    }
  }
  refreshAllSegs(): void {
    for (let s = 0; s < 8; s++) this.refreshSeg(s);
    this.updateCpl();
  }
  updateCpl(): void {
    let cpl: number;
    if (!(this.st[St.CR0] & Cr0.PE)) cpl = 0;
    else if (this.st[St.RFLAGS] & Fl.VM) cpl = 3;
    else cpl = (this.st[St.SEG + Seg.SS * SEG_WORDS + SEG_ATTR] >> Ar.DPL_SHIFT) & 3;
    if (cpl !== this.st[St.CPL]) {
      this.st[St.CPL] = cpl;
      this.flushTlb();
    }
  }

  // ------------------------------------------------------------------------------------------
  // Memory: segment check → TLB → (slow) page walk → memslot
  // ------------------------------------------------------------------------------------------
  private segFault(seg: number): never {
    throw new CpuFault(seg === Seg.SS ? Vec.SS : Vec.GP, 0);
  }
  /** Linear address of seg:off for an access of `size` bytes, with the limit check (SDM 5.3). */
  lin(seg: number, off: number, size: number): number {
    off >>>= 0;
    if (off < this.segLo[seg] || off + size - 1 > this.segHi[seg]) this.segFault(seg);
    return (this.segBase[seg] + off) | 0;
  }
  /** Writes through a code or read-only data segment fault in protected mode (SDM 5.5). */
  checkWritable(seg: number): void {
    if (this.segNoWrite[seg]) this.segFault(seg);
  }
  /** Per segment: 1 when a write must fault (derived in refreshSeg). */
  readonly segNoWrite = new Uint8Array(8);
  rd8(seg: number, off: number): number { return this.rdLin8(this.lin(seg, off, 1)); }
  rd16(seg: number, off: number): number { return this.rdLin16(this.lin(seg, off, 2)); }
  rd32(seg: number, off: number): number { return this.rdLin32(this.lin(seg, off, 4)); }
  rd(seg: number, off: number, size: number): number {
    return size === 4 ? this.rd32(seg, off) : size === 2 ? this.rd16(seg, off) : this.rd8(seg, off);
  }
  wr8(seg: number, off: number, v: number): void { this.wrLin8(this.lin(seg, off, 1), v); }
  wr16(seg: number, off: number, v: number): void { this.wrLin16(this.lin(seg, off, 2), v); }
  wr32(seg: number, off: number, v: number): void { this.wrLin32(this.lin(seg, off, 4), v); }
  wr(seg: number, off: number, size: number, v: number): void {
    if (size === 4) this.wr32(seg, off, v);
    else if (size === 2) this.wr16(seg, off, v);
    else this.wr8(seg, off, v);
  }

  rdLin8(la: number): number {
    const p = la >>> 12, e = p & (TLB_ENTRIES - 1);
    if (this.tlbR[e] === p) return this.m8[this.tlbH[e] + (la & 0xfff)];
    const h = this.translate(la, ACC_READ);
    return h < 0 ? this.mmioRead(1) : this.m8[h];
  }
  rdLin16(la: number): number {
    const p = la >>> 12, e = p & (TLB_ENTRIES - 1);
    if (this.tlbR[e] === p && (la & 0xfff) < 0xfff) {
      const h = this.tlbH[e] + (la & 0xfff);
      return this.m8[h] | (this.m8[h + 1] << 8);
    }
    return this.rdSlow(la, 2);
  }
  rdLin32(la: number): number {
    const p = la >>> 12, e = p & (TLB_ENTRIES - 1);
    if (this.tlbR[e] === p && (la & 0xfff) <= 0xffc) {
      const h = this.tlbH[e] + (la & 0xfff);
      if ((h & 3) === 0) return this.m32[h >> 2];
      const m = this.m8;
      return m[h] | (m[h + 1] << 8) | (m[h + 2] << 16) | (m[h + 3] << 24);
    }
    return this.rdSlow(la, 4);
  }
  private rdSlow(la: number, size: number): number {
    if (((la & 0xfff) + size) <= 0x1000) {
      const h = this.translate(la, ACC_READ);
      if (h < 0) return this.mmioRead(size);
      let v = 0;
      for (let k = size - 1; k >= 0; k--) v = (v << 8) | this.m8[h + k];
      return v;
    }
    // Straddles a page: translate the first page, then the second at its start, before reading, so
    // a fault reports the address that caused it in CR2 (SDM 4.7): the access's own address when the
    // first page faults, the second page's first byte when only the second does.
    this.translate(la, ACC_READ);
    this.translate(((la + size - 1) & ~0xfff) | 0, ACC_READ);
    let v = 0;
    for (let k = size - 1; k >= 0; k--) v = (v << 8) | this.rdLin8((la + k) | 0);
    return size === 2 ? v & 0xffff : v;
  }
  wrLin8(la: number, v: number): void {
    const p = la >>> 12, e = p & (TLB_ENTRIES - 1);
    if (this.tlbW[e] === p) { this.m8[this.tlbH[e] + (la & 0xfff)] = v; return; }
    const h = this.translate(la, ACC_WRITE, false, 1);
    if (h < 0) this.mmioWrite(1, v & 0xff);
    else { this.m8[h] = v; }
  }
  wrLin16(la: number, v: number): void {
    const p = la >>> 12, e = p & (TLB_ENTRIES - 1);
    if (this.tlbW[e] === p && (la & 0xfff) < 0xfff) {
      const h = this.tlbH[e] + (la & 0xfff);
      this.m8[h] = v;
      this.m8[h + 1] = v >> 8;
      return;
    }
    this.wrSlow(la, 2, v);
  }
  wrLin32(la: number, v: number): void {
    const p = la >>> 12, e = p & (TLB_ENTRIES - 1);
    if (this.tlbW[e] === p && (la & 0xfff) <= 0xffc) {
      const h = this.tlbH[e] + (la & 0xfff);
      if ((h & 3) === 0) { this.m32[h >> 2] = v; return; }
      const m = this.m8;
      m[h] = v; m[h + 1] = v >> 8; m[h + 2] = v >> 16; m[h + 3] = v >> 24;
      return;
    }
    this.wrSlow(la, 4, v);
  }
  private wrSlow(la: number, size: number, v: number): void {
    if (((la & 0xfff) + size) <= 0x1000) {
      const h = this.translate(la, ACC_WRITE, false, size);
      if (h < 0) { this.mmioWrite(size, size === 4 ? v >>> 0 : v & 0xffff); return; }
      for (let k = 0; k < size; k++) this.m8[h + k] = v >> (8 * k);
      return;
    }
    // Straddles a page: check both pages are writable before writing either (no partial writes).
    this.translate(la, ACC_WRITE, true);
    this.translate(((la + size - 1) & ~0xfff) | 0, ACC_WRITE, true);
    for (let k = 0; k < size; k++) this.wrLin8((la + k) | 0, v >> (8 * k));
  }

  /**
   * Whether an access at seg:off would reach a guest-physical address without a memslot (MMIO), for
   * the kernel's string IO, which must not read a port it cannot store. Answers false where the
   * access would fault (segment limit, page not present): the access itself raises the fault.
   */
  isMmio(seg: number, off: number, size: number, write: boolean): boolean {
    try {
      return this.gpaOf(seg, off, size, write, true) >= 0;
    } catch (e) {
      if (e instanceof CpuFault) return false;
      throw e;
    }
  }
  /**
   * The guest-physical address without a memslot that an access at seg:off reaches (the first
   * such byte's page), or -1 when all of it is RAM. Raises the access's segment and page faults;
   * `probe` leaves the accessed and dirty bits alone.
   */
  gpaOf(seg: number, off: number, size: number, write: boolean, probe = false): number {
    if (write) this.checkWritable(seg);
    const la = this.lin(seg, off, size), acc = write ? ACC_WRITE : ACC_READ;
    if (this.translate(la, acc, probe) < 0) return this.lastGpa;
    if ((la & 0xfff) + size > 0x1000 && this.translate((la + size - 1) | 0, acc, probe) < 0) return this.lastGpa;
    return -1;
  }

  /** Flush the whole software TLB (MOV CR3, CR0/CR4 paging changes, CPL changes). */
  flushTlb(): void {
    this.linkEpoch++;
    this.tlbR.fill(-1);
    this.tlbW.fill(-1);
  }
  /** INVLPG: drop one linear page. */
  flushTlbPage(la: number): void {
    const p = la >>> 12, e = p & (TLB_ENTRIES - 1);
    if (this.tlbR[e] === p) this.tlbR[e] = -1;
    if (this.tlbW[e] === p) this.tlbW[e] = -1;
  }

  /** The guest-physical address of the last translation (valid when translate returned -1). */
  lastGpa = 0;
  private lastLa = 0;

  /**
   * Translate a linear address: paging (SDM 4.3, 32-bit paging), then the memslots.
   * @returns a host offset, or -1 when the guest-physical address has no memslot (MMIO)
   */
  translate(la: number, acc: number, probeOnly = false, size = 0x1000 - (la & 0xfff)): number {
    const st = this.st;
    let gpa: number;
    let writable = true;
    let dirty = true;
    if (st[St.CR0] & Cr0.PG) {
      const user = st[St.CPL] === 3;
      const wp = (st[St.CR0] & Cr0.WP) !== 0;
      const write = acc === ACC_WRITE;
      const pdeGpa = ((st[St.CR3] & ~0xfff) + ((la >>> 22) << 2)) >>> 0;
      const pde = this.physRead32(pdeGpa);
      const pfErr = (present: number) =>
        new CpuFault(Vec.PF, present | (write ? 2 : 0) | (user ? 4 : 0));
      if (!(pde & 1)) { st[St.CR2] = la; throw pfErr(0); }
      let rw = pde & 2, us = pde & 4;
      if ((pde & 0x80) && (st[St.CR4] & Cr4.PSE)) {
        // 4 MiB page (SDM 4.3, table 4-5).
        if (!this.accessOk(rw, us, user, write, wp)) { st[St.CR2] = la; throw pfErr(1); }
        gpa = ((pde & 0xffc00000) | (la & 0x3fffff)) >>> 0;
        const want = (pde | 0x20 | (write ? 0x40 : 0)) >>> 0;
        if ((want >>> 0) !== (pde >>> 0) && !probeOnly) this.physWrite32(pdeGpa, want);
        dirty = write || (pde & 0x40) !== 0;
      } else {
        // The PDE is used to reach the PTE: its accessed flag is set even when the PTE then
        // faults (SDM 4.8, "whenever the processor uses a paging-structure entry").
        if (!(pde & 0x20) && !probeOnly) this.physWrite32(pdeGpa, pde | 0x20);
        const pteGpa = ((pde & ~0xfff) + (((la >>> 12) & 0x3ff) << 2)) >>> 0;
        const pte = this.physRead32(pteGpa);
        if (!(pte & 1)) { st[St.CR2] = la; throw pfErr(0); }
        rw &= pte & 2; us &= pte & 4;
        if (!this.accessOk(rw, us, user, write, wp)) { st[St.CR2] = la; throw pfErr(1); }
        if (!probeOnly) {
          const want = pte | 0x20 | (write ? 0x40 : 0);
          if (want !== pte) this.physWrite32(pteGpa, want);
        }
        dirty = write || (pte & 0x40) !== 0;
        gpa = ((pte & ~0xfff) | (la & 0xfff)) >>> 0;
      }
      writable = this.accessOk(rw, us, user, true, wp);
    } else {
      gpa = la >>> 0;
    }
    const h = this.phys.gpaToHost(gpa);
    if (h < 0 || (acc === ACC_WRITE && this.phys.isReadonly(gpa))) {
      this.lastGpa = gpa;
      this.lastLa = la;
      return -1;
    }
    if (probeOnly) return h;
    // Fill the TLB. Writes get an entry only when the page is writable, already dirty, not read-only
    // memory and holds no decoded code, so every other write takes this slow path. The read and write
    // tags share one host pointer per slot: whatever page the write tag held before, it must not
    // survive the new host pointer (it would send writes to that page into this one).
    const p = la >>> 12, e = p & (TLB_ENTRIES - 1);
    const hp = h & ~0xfff;
    this.tlbR[e] = p;
    this.tlbH[e] = hp;
    const w = writable && dirty && !this.phys.isReadonly(gpa);
    this.tlbW[e] = w && !this.codePage[hp >>> 12] ? p : -1;
    this.tlbWC[e] = w ? p : -1;
    if (acc === ACC_WRITE && this.codePage[hp >>> 12]) this.codeWritten(h, size);
    return h;
  }
  private accessOk(rw: number, us: number, user: boolean, write: boolean, wp: boolean): boolean {
    if (user && !us) return false;
    if (write && !rw && (user || wp)) return false;
    return true;
  }
  /** Guest-physical 32-bit read (page tables, descriptor tables when unpaged). Unbacked reads as all ones. */
  physRead32(gpa: number): number {
    const h = this.phys.gpaToHost(gpa);
    if (h < 0 || ((gpa & 0xfff) > 0xffc)) {
      if (h < 0) return -1;
      let v = 0;
      for (let k = 3; k >= 0; k--) v = (v << 8) | this.physRead8(gpa + k);
      return v;
    }
    const m = this.m8;
    return m[h] | (m[h + 1] << 8) | (m[h + 2] << 16) | (m[h + 3] << 24);
  }
  physRead8(gpa: number): number {
    const h = this.phys.gpaToHost(gpa >>> 0);
    return h < 0 ? 0xff : this.m8[h];
  }
  physWrite32(gpa: number, v: number): void {
    for (let k = 0; k < 4; k++) {
      const h = this.phys.gpaToHost((gpa + k) >>> 0);
      if (h >= 0) {
        this.m8[h] = v >> (8 * k);
        if (this.codePage[h >>> 12]) this.codeWritten(h, 1);
      }
    }
  }

  // MMIO: an access to a guest-physical address without a memslot is an EPT violation. The
  // instruction is abandoned; the VMM completes the access and the instruction runs again,
  // consuming the completed accesses in order from mmioLog (so an instruction with two MMIO
  // accesses exits twice).
  private mmioRead(size: number): number {
    const log = this.mmioLog;
    if (this.mmioPos < log.length) {
      const a = log[this.mmioPos++];
      return a.value;
    }
    this.mmioExit(size, false, 0);
  }
  private mmioWrite(size: number, v: number): void {
    const log = this.mmioLog;
    if (this.mmioPos < log.length) { this.mmioPos++; return; }
    this.mmioExit(size, true, v);
  }
  private mmioExit(size: number, isWrite: boolean, value: number): never {
    this.mmioPending = { gpa: this.lastGpa, size, isWrite, value };
    const v = this.vmcs!;
    v.guestPhysicalAddress = this.lastGpa;
    v.guestLinearAddress = this.lastLa >>> 0;
    this.recordExit(ExitReason.EPT_VIOLATION, (isWrite ? EptQual.WRITE : EptQual.READ) | EptQual.GLA_VALID | EptQual.GLA_TRANSLATED);
    throw VmExitSignal.instance;
  }

  // ------------------------------------------------------------------------------------------
  // Stack
  // ------------------------------------------------------------------------------------------
  push(v: number, size: number): void {
    const st = this.st;
    if (this.stack32) {
      const sp = (st[Gpr4] - size) | 0;
      this.wr(Seg.SS, sp, size, v);
      st[Gpr4] = sp;
    } else {
      const sp = (this.st16[Gpr4 * 2] - size) & 0xffff;
      this.wr(Seg.SS, sp, size, v);
      this.st16[Gpr4 * 2] = sp;
    }
  }
  /** Read the value `pop` would return without moving the stack pointer (`depth` bytes in). */
  peek(size: number, depth = 0): number {
    const sp = this.stack32 ? (this.st[Gpr4] + depth) | 0 : (this.st16[Gpr4 * 2] + depth) & 0xffff;
    return this.rd(Seg.SS, sp, size);
  }
  /** Move the stack pointer by `delta` bytes (after a checked peek). */
  adjustSp(delta: number): void {
    if (this.stack32) this.st[Gpr4] = (this.st[Gpr4] + delta) | 0;
    else this.st16[Gpr4 * 2] = (this.st16[Gpr4 * 2] + delta) & 0xffff;
  }
  pop(size: number): number {
    const v = this.peek(size);
    this.adjustSp(size);
    return v;
  }

  // ------------------------------------------------------------------------------------------
  // VM exits
  // ------------------------------------------------------------------------------------------
  /** Record an exit in the VMCS (SDM 27.2). */
  recordExit(reason: number, qualification: number, instrLen = 0): void {
    const v = this.vmcs!;
    v.exitReason = reason;
    v.exitQualification = qualification;
    v.exitInstructionLen = instrLen;
    this.exitPending = true;
    this.stop = true;
  }
  /**
   * An instruction that exits unconditionally or under a control: RIP is left at the instruction
   * (the kernel skips it when it has emulated it) and the length is recorded.
   */
  exitAtInsn(i: Insn, reason: number, qualification = 0): void {
    this.st[St.RIP] = (this.st[St.RIP] - i.len) & (this.code32 ? -1 : 0xffff);
    this.recordExit(reason, qualification, i.len);
  }
  ctl(field: number): number {
    return this.vmcs!.read(field);
  }
  /** CPU-based controls are read at every exiting instruction; cache them per entry. */
  cpuBased = 0;
  pinBased = 0;
  exceptionBitmap = 0;

  /** IO instruction (SDM 25.1.3): exits under unconditional IO exiting or the IO bitmaps. */
  ioExits(_port: number, _size: number): boolean {
    // Under the I/O bitmaps every port is marked in ours, so either control means every port exits.
    return (this.cpuBased & (CpuBased.USE_IO_BITMAPS | CpuBased.UNCOND_IO_EXITING)) !== 0;
  }
  /**
   * An I/O instruction must consult the TSS permission bitmap: CPL > IOPL in protected mode, or
   * virtual-8086 mode (SDM vol. 1, 19.5).
   */
  ioNeedsBitmap(): boolean {
    const st = this.st;
    return ((st[St.CR0] & Cr0.PE) !== 0 && st[St.CPL] > ((st[St.RFLAGS] >> 12) & 3)) || (st[St.RFLAGS] & Fl.VM) !== 0;
  }
  /**
   * The common IN/OUT (not string) at `eip`, `len` bytes, whose VM exit needs nothing read from
   * guest memory: no permission bitmap to consult and IO exiting on. Then record the exit as
   * `ioExit` does and return true; otherwise false, and the instruction's semantics run. `qual` is
   * the exit qualification without the port; `port` < 0 means DX. The JIT's runner calls it at an
   * exit site, so an OUT from compiled code costs no dispatch through the instruction's semantics.
   */
  ioExitFast(eip: number, len: number, qual: number, port: number): boolean {
    if (this.ioNeedsBitmap()) return false;
    if (port < 0) port = this.st16[8]; // DX (RDX is the third 8-byte register slot)
    if (!this.ioExits(port, (qual & IoQual.SIZE_MASK) + 1)) return false;
    this.st[St.RIP] = eip;
    this.recordExit(ExitReason.IO_INSTRUCTION, (qual | (port << IoQual.PORT_SHIFT)) >>> 0, len);
    return true;
  }
  ioExit(i: Insn, port: number, size: number, isIn: boolean, string: boolean, immediate: boolean): void {
    const q = ioQualBits(size, isIn, string, i.rep !== 0, immediate) | (port << IoQual.PORT_SHIFT);
    if (string) {
      // VM-exit instruction information for INS/OUTS: address size (bits 9:7), segment (17:15) (SDM 27.2.5).
      this.vmcs!.vmxInstructionInfo = ((i.asz === 4 ? 1 : 0) << 7) | ((isIn ? Seg.ES : i.seg) << 15);
    }
    this.exitAtInsn(i, ExitReason.IO_INSTRUCTION, q >>> 0);
  }

  // ------------------------------------------------------------------------------------------
  // Exceptions and interrupts (SDM chapter 6)
  // ------------------------------------------------------------------------------------------
  /** Raise an exception from inside an instruction. */
  fault(vector: number, errorCode = -1): never {
    throw new CpuFault(vector, errorCode);
  }

  /**
   * Deliver an event to the guest: through the exception bitmap (a VM exit), or the IVT/IDT.
   * Contributory faults during delivery become #DF, and a fault during #DF a triple fault (SDM 6.15).
   * @param soft INT n / INT3 / INTO: RIP already points past the instruction; IDT gate DPL is checked
   */
  deliver(vector: number, errorCode: number, soft: boolean, insnLen = 0, type = -1): void {
    const hwException = !soft && type < 0;
    if ((hwException || (soft && (vector === Vec.BP || vector === Vec.OF) && type === IntrInfo.TYPE_SOFT_EXCEPTION)) &&
        vector < 32 && (this.exceptionBitmap & (1 << vector))) {
      const t = hwException ? IntrInfo.TYPE_HW_EXCEPTION : IntrInfo.TYPE_SOFT_EXCEPTION;
      const v = this.vmcs!;
      v.exitIntrInfo = (vector | (t << IntrInfo.TYPE_SHIFT) | (errorCode >= 0 ? IntrInfo.ERROR_CODE_VALID : 0) | IntrInfo.VALID) >>> 0;
      v.exitIntrErrorCode = errorCode >= 0 ? errorCode : 0;
      if (soft) this.st[St.RIP] = (this.st[St.RIP] - insnLen) & (this.code32 ? -1 : 0xffff);
      this.recordExit(ExitReason.EXCEPTION_NMI, vector === Vec.PF ? this.st[St.CR2] >>> 0 : 0, soft ? insnLen : 0);
      return;
    }
    if (soft) this.softIntDelivered = true;
    // The first event of a chain that can end in #DF; -2 for INT n and external interrupts, which
    // cannot (INT 8 is not a double fault).
    if (this.firstVector < 0) this.firstVector = hwException ? vector : -2;
    this.delivering++;
    try {
      if (this.protectedMode) this.deliverProtected(vector, errorCode, soft, type);
      else this.deliverReal(vector);
      this.delivering--;
      this.firstVector = -1;
    } catch (e) {
      this.delivering--;
      if (e === VmExitSignal.instance) {
        // Guest memory without a memslot on the delivery path: the EPT violation is recorded;
        // the event is not delivered (see MmioAccess.duringDelivery).
        this.firstVector = -1;
        if (this.mmioPending) this.mmioPending.duringDelivery = true;
        return;
      }
      if (!(e instanceof CpuFault)) throw e;
      const first = this.firstVector;
      if (first === Vec.DF || this.delivering > 0 && first === Vec.DF) {
        this.tripleFault([first, e.vector]);
        return;
      }
      if (vector === Vec.DF && hwException) {
        this.tripleFault([Vec.DF, e.vector]);
        return;
      }
      // A fault while delivering: benign combinations deliver the second; contributory or #PF pairs
      // become #DF (SDM table 6-5). In real mode there is no #DF: the processor shuts down.
      if (!this.protectedMode) {
        this.tripleFault([vector, e.vector]);
        return;
      }
      // Only a hardware exception can be the first of a double fault: a fault while starting INT n
      // (or an external interrupt) is delivered as itself (SDM 6.15, table 6-5), and for INT n,
      // INT3 and INTO it reports the EIP of that instruction (SDM 6.12.1.1), not of the next one.
      if (soft) this.st[St.RIP] = (this.st[St.RIP] - insnLen) & (this.code32 ? -1 : 0xffff);
      const contributory = (v: number) => v === 0 || (v >= 10 && v <= 13);
      const df = hwException && ((contributory(vector) && contributory(e.vector)) ||
        (vector === Vec.PF && (contributory(e.vector) || e.vector === Vec.PF)));
      this.firstVector = -1;
      if (df) {
        this.firstVector = Vec.DF;
        this.deliver(Vec.DF, 0, false);
        this.firstVector = -1;
      } else {
        this.deliver(e.vector, e.errorCode, false);
      }
    }
  }
  tripleFault(vectors: number[]): void {
    this.firstVector = -1;
    const rip = this.st[St.RIP] >>> 0;
    let bytes: number[] = [];
    try {
      bytes = this.peekCode(rip, 8);
    } catch {
      bytes = [];
    }
    this.shutdownDetail = { vectors, rip, bytes };
    this.recordExit(ExitReason.TRIPLE_FAULT, 0);
  }
  /** Read up to `n` instruction bytes at CS:rip without side effects (for exit details and traces). */
  peekCode(rip: number, n: number): number[] {
    const out: number[] = [];
    for (let k = 0; k < n; k++) {
      const off = (rip + k) >>> 0;
      if (off > this.segHi[Seg.CS]) break;
      const la = (this.segBase[Seg.CS] + off) | 0;
      let gpa = la >>> 0;
      if (this.st[St.CR0] & Cr0.PG) {
        try {
          const h = this.translate(la, ACC_READ, true);
          if (h < 0) break;
          out.push(this.m8[h]);
          continue;
        } catch {
          break;
        }
      }
      const h = this.phys.gpaToHost(gpa);
      if (h < 0) break;
      out.push(this.m8[h]);
      gpa++;
    }
    return out;
  }

  private deliverReal(vector: number): void {
    const st = this.st;
    const idtBase = st[St.IDTR_BASE] >>> 0, idtLimit = st[St.IDTR_LIMIT] >>> 0;
    if (vector * 4 + 3 > idtLimit) throw new CpuFault(Vec.GP, vector * 8 + 2);
    const entryLa = (idtBase + vector * 4) | 0;
    const ip = this.rdLin16(entryLa), cs = this.rdLin16((entryLa + 2) | 0);
    if (this.nullVectorIsFatal && ip === 0 && cs === 0) {
      // No BIOS is loaded, so an empty IVT entry has no handler: a triple fault, not a jump to 0:0.
      throw new CpuFault(vector, -1);
    }
    const flags = this.getFlags();
    this.push(flags, 2);
    this.push(this.getSegSel(Seg.CS), 2);
    this.push(st[St.RIP], 2);
    this.loadSegReal(Seg.CS, cs);
    st[St.RIP] = ip;
    st[St.RFLAGS] = this.getFlags() & ~(Fl.IF | Fl.TF | Fl.AC | Fl.RF);
    st[St.LAZY_MASK] = 0;
  }

  /**
   * Protected-mode delivery (SDM 6.12): through an interrupt or trap gate, to the same ring or an
   * inner one (the stack switched from the TSS), from virtual-8086 mode to ring 0 (the v86 frame,
   * SDM 20.3.1.1), or through a task gate (a task switch, task.ts).
   */
  private deliverProtected(vector: number, errorCode: number, soft: boolean, type = -1): void {
    const st = this.st;
    const idtBase = st[St.IDTR_BASE] >>> 0, idtLimit = st[St.IDTR_LIMIT] >>> 0;
    // External events (hardware exceptions, external interrupts) set EXT in error codes; INT n,
    // INT3 and INTO do not.
    const ext = soft ? 0 : 1;
    const idtErr = vector * 8 + 2 + ext;
    if (vector * 8 + 7 > idtLimit) throw new CpuFault(Vec.GP, idtErr);
    const la = (idtBase + vector * 8) | 0;
    const lo = this.sysRead(la, 4), hi = this.sysRead((la + 4) | 0, 4);
    const gtype = (hi >> 8) & 0x1f;
    const dpl = (hi >> 13) & 3;
    const present = (hi >> 15) & 1;
    const gate32 = gtype === 0x0e || gtype === 0x0f;
    const gate16 = gtype === 0x06 || gtype === 0x07;
    if (!gate32 && !gate16 && gtype !== 0x05) throw new CpuFault(Vec.GP, idtErr);
    // Software interrupts check the gate's DPL against the CPL (SDM 6.12.1.1); INT1 does not.
    if (soft && type !== 5 && dpl < st[St.CPL]) throw new CpuFault(Vec.GP, vector * 8 + 2);
    if (!present) throw new CpuFault(Vec.NP, idtErr);
    if (gtype === 0x05) {
      taskSwitch(this, lo >>> 16, TaskSwitchReason.INT, ext, errorCode);
      return;
    }
    const sel = lo >>> 16;
    const offset = gate32 ? ((hi & 0xffff0000) | (lo & 0xffff)) >>> 0 : lo & 0xffff;
    if ((sel & 0xfffc) === 0) throw new CpuFault(Vec.GP, ext);
    const desc = this.readDescriptor(sel, Vec.GP, ext)!;
    const [dlo, dhi] = desc;
    const dAttr = descAttr(dhi);
    if (!(dAttr & Ar.S) || !(dAttr & Ar.CODE)) throw new CpuFault(Vec.GP, (sel & 0xfffc) + ext);
    const cdpl = (dAttr >> Ar.DPL_SHIFT) & 3;
    if (cdpl > st[St.CPL]) throw new CpuFault(Vec.GP, (sel & 0xfffc) + ext);
    if (!(dAttr & Ar.P)) throw new CpuFault(Vec.NP, (sel & 0xfffc) + ext);
    const limit = descLimit(dlo, dhi);
    if (offset > limit) throw new CpuFault(Vec.GP, ext);
    const flags = this.getFlags();
    const oldCs = this.getSegSel(Seg.CS), oldEip = st[St.RIP];
    const size = gate32 ? 4 : 2;
    const conforming = (dAttr & Ar.CONFORMING) !== 0;
    const fromV86 = (flags & Fl.VM) !== 0;
    // From virtual-8086 mode the handler must be a ring-0, non-conforming code segment (SDM 20.3.1.1).
    if (fromV86 && (conforming || cdpl !== 0)) throw new CpuFault(Vec.GP, (sel & 0xfffc) + ext);
    const inner = !conforming && cdpl < st[St.CPL];
    // Everything below changes state: keep what is needed to undo it if a push faults.
    const savedSegs = st.slice(St.SEG, St.SEG + 8 * SEG_WORDS);
    const savedEsp = st[Gpr4];
    try {
      if (inner) {
        // Inter-privilege: switch to the inner stack from the TSS (SDM 6.12.1, 7.2.1).
        const { ss, esp, sd, sa } = innerStack(this, cdpl, ext);
        const oldSs = this.getSegSel(Seg.SS), oldEsp = st[Gpr4];
        if (fromV86) st[St.RFLAGS] &= ~Fl.VM; // segment loads below are protected-mode loads
        this.setSeg(Seg.SS, ss, descBase(sd[0], sd[1]), descLimit(sd[0], sd[1]), sa | Ar.ACCESSED);
        st[Gpr4] = this.stack32 ? esp : esp & 0xffff;
        if (fromV86) {
          for (const s of [Seg.GS, Seg.FS, Seg.DS, Seg.ES]) this.push(this.getSegSel(s), size);
        }
        this.push(oldSs, size);
        this.push(oldEsp, size);
      }
      this.push(flags, size);
      this.push(oldCs, size);
      this.push(oldEip, size);
      if (errorCode >= 0) this.push(errorCode, size);
    } catch (e) {
      st.set(savedSegs, St.SEG);
      st[Gpr4] = savedEsp;
      this.setFlags(flags);
      this.refreshAllSegs();
      throw e;
    }
    if (fromV86) {
      for (const s of [Seg.GS, Seg.FS, Seg.DS, Seg.ES]) this.setSeg(s, 0, 0, 0, Ar.UNUSABLE);
    }
    this.setDescriptorAccessed(sel, desc);
    this.setSeg(Seg.CS, (sel & 0xfffc) | (conforming ? st[St.CPL] : cdpl), descBase(dlo, dhi), limit, dAttr | Ar.ACCESSED);
    st[St.RIP] = offset;
    let nf = flags & ~(Fl.TF | Fl.NT | Fl.RF | Fl.VM);
    if (gtype === 0x0e || gtype === 0x06) nf &= ~Fl.IF;
    this.setFlags(nf);
    this.refreshAllSegs();
  }

  /**
   * A linear access with supervisor privilege, as the processor makes for descriptor tables and
   * the TSS (SDM 4.6: implicit supervisor-mode accesses), whatever the CPL. Accessed and dirty bits
   * are set as for any access.
   */
  sysRead(la: number, size: number): number {
    if (this.st[St.CPL] !== 3 || !(this.st[St.CR0] & Cr0.PG)) {
      return size === 4 ? this.rdLin32(la) : size === 2 ? this.rdLin16(la) : this.rdLin8(la);
    }
    this.st[St.CPL] = 0;
    try {
      return size === 4 ? this.rdLin32(la) : size === 2 ? this.rdLin16(la) : this.rdLin8(la);
    } finally {
      this.st[St.CPL] = 3;
      this.flushTlbPage(la);
      this.flushTlbPage((la + size - 1) | 0);
    }
  }
  sysWrite(la: number, size: number, v: number): void {
    const user = this.st[St.CPL] === 3 && (this.st[St.CR0] & Cr0.PG) !== 0;
    if (user) this.st[St.CPL] = 0;
    try {
      if (size === 4) this.wrLin32(la, v);
      else if (size === 2) this.wrLin16(la, v);
      else this.wrLin8(la, v);
    } finally {
      if (user) {
        this.st[St.CPL] = 3;
        this.flushTlbPage(la);
        this.flushTlbPage((la + size - 1) | 0);
      }
    }
  }

  /** Supervisor-privilege linear read used by the processor itself (descriptor tables, TSS). */
  rdLinSys32(la: number): number {
    const saved = this.st[St.CPL];
    if (saved === 3 && (this.st[St.CR0] & Cr0.PG)) {
      this.st[St.CPL] = 0;
      try {
        const h = this.translate(la, ACC_READ, true);
        if (h < 0) return -1;
        return this.m8[h] | (this.m8[h + 1] << 8) | (this.m8[h + 2] << 16) | (this.m8[h + 3] << 24);
      } finally {
        this.st[St.CPL] = saved;
      }
    }
    return this.rdLin32(la);
  }

  /**
   * Read a segment descriptor for selector `sel` from the GDT or LDT.
   * @returns [low dword, high dword], or null for a null selector
   */
  readDescriptor(sel: number, vec: number, ext = 0): [number, number] | null {
    if ((sel & 0xfffc) === 0) return null;
    const st = this.st;
    const ti = sel & 4;
    const base = ti ? this.getSegBase(Seg.LDTR) : st[St.GDTR_BASE] >>> 0;
    const limit = ti ? this.getSegLimit(Seg.LDTR) : st[St.GDTR_LIMIT] >>> 0;
    if (ti && (this.getSegAttr(Seg.LDTR) & Ar.UNUSABLE)) throw new CpuFault(vec, (sel & 0xfffc) + ext);
    if ((sel & ~7) + 7 > limit) throw new CpuFault(vec, (sel & 0xfffc) + ext);
    const la = (base + (sel & ~7)) | 0;
    return [this.rdLinSys32(la), this.rdLinSys32((la + 4) | 0)];
  }

  /** MOV/POP to a segment register in real or virtual-8086 mode: the base follows the selector. */
  loadSegReal(seg: number, sel: number): void {
    const o = St.SEG + seg * SEG_WORDS;
    const st = this.st;
    st[o + SEG_SEL] = sel & 0xffff;
    st[o + SEG_BASE] = (sel & 0xffff) << 4;
    if (seg === Seg.CS) this.linkEpoch++;
    if (this.v86) {
      st[o + SEG_LIMIT] = 0xffff;
      st[o + SEG_ATTR] = 0xf3;
    } else if (st[o + SEG_ATTR] & Ar.UNUSABLE) {
      st[o + SEG_ATTR] = seg === Seg.CS ? 0x9b : 0x93;
    }
    this.refreshSeg(seg);
  }

  /**
   * Load a segment register with the checks of MOV/POP/LDS (SDM 5.4–5.6 and the MOV instruction page).
   * CS is loaded by far transfers (ops.ts) through `loadCs`.
   */
  loadSeg(seg: number, sel: number): void {
    if (!this.protectedMode || this.v86) { this.loadSegReal(seg, sel); return; }
    const st = this.st;
    const cpl = st[St.CPL], rpl = sel & 3;
    if ((sel & 0xfffc) === 0) {
      if (seg === Seg.SS) throw new CpuFault(Vec.GP, 0);
      this.setSeg(seg, sel, 0, 0, Ar.UNUSABLE);
      return;
    }
    const d = this.readDescriptor(sel, Vec.GP)!;
    const attr = descAttr(d[1]);
    const dpl = (attr >> Ar.DPL_SHIFT) & 3;
    const err = sel & 0xfffc;
    if (!(attr & Ar.S)) throw new CpuFault(Vec.GP, err);
    if (seg === Seg.SS) {
      if (rpl !== cpl || dpl !== cpl || (attr & Ar.CODE) || !(attr & Ar.WRITABLE)) throw new CpuFault(Vec.GP, err);
      if (!(attr & Ar.P)) throw new CpuFault(Vec.SS, err);
    } else {
      if ((attr & Ar.CODE) && !(attr & Ar.READABLE)) throw new CpuFault(Vec.GP, err);
      const conformingCode = (attr & Ar.CODE) && (attr & Ar.CONFORMING);
      if (!conformingCode && (rpl > dpl || cpl > dpl)) throw new CpuFault(Vec.GP, err);
      if (!(attr & Ar.P)) throw new CpuFault(Vec.NP, err);
    }
    this.setDescriptorAccessed(sel, d);
    this.setSeg(seg, sel, descBase(d[0], d[1]), descLimit(d[0], d[1]), attr | Ar.ACCESSED);
  }
  setDescriptorAccessed(sel: number, d: [number, number]): void {
    if (d[1] & 0x100) return;
    const base = sel & 4 ? this.getSegBase(Seg.LDTR) : this.st[St.GDTR_BASE] >>> 0;
    const la = (base + (sel & ~7) + 4) | 0;
    try {
      const h = this.translate(la, ACC_WRITE, true);
      if (h >= 0) {
        this.m8[h + 1] |= 1;
        if (this.codePage[h >>> 12]) this.codeWritten(h + 1, 1);
      }
    } catch { /* a descriptor table the supervisor cannot write: leave the bit */ }
  }
  /** Load CS for a far transfer to a code segment at the same privilege (SDM 5.8.1). */
  loadCs(sel: number, eip: number): void {
    const st = this.st;
    if (!this.protectedMode || this.v86) {
      this.loadSegReal(Seg.CS, sel);
      st[St.RIP] = eip;
      return;
    }
    if ((sel & 0xfffc) === 0) throw new CpuFault(Vec.GP, 0);
    const d = this.readDescriptor(sel, Vec.GP)!;
    const attr = descAttr(d[1]);
    const err = sel & 0xfffc;
    const cpl = st[St.CPL], dpl = (attr >> Ar.DPL_SHIFT) & 3, rpl = sel & 3;
    if (!(attr & Ar.S) || !(attr & Ar.CODE)) throw new CpuFault(Vec.GP, err); // gates and TSSs are far.ts's
    if (attr & Ar.CONFORMING) { if (dpl > cpl) throw new CpuFault(Vec.GP, err); }
    else if (rpl > cpl || dpl !== cpl) throw new CpuFault(Vec.GP, err);
    if (!(attr & Ar.P)) throw new CpuFault(Vec.NP, err);
    const limit = descLimit(d[0], d[1]);
    if ((eip >>> 0) > limit) throw new CpuFault(Vec.GP, 0);
    this.setDescriptorAccessed(sel, d);
    this.setSeg(Seg.CS, (sel & 0xfffc) | cpl, descBase(d[0], d[1]), limit, attr | Ar.ACCESSED);
    st[St.RIP] = eip;
  }

  // ------------------------------------------------------------------------------------------
  // Control registers
  // ------------------------------------------------------------------------------------------
  setCr(n: number, v: number): void {
    const st = this.st;
    switch (n) {
      case 0: {
        if ((v & Cr0.PG) && !(v & Cr0.PE)) throw new CpuFault(Vec.GP, 0);
        const old = st[St.CR0];
        st[St.CR0] = v | Cr0.ET;
        if ((old ^ v) & (Cr0.PG | Cr0.WP | Cr0.PE)) this.flushTlb();
        if ((old ^ v) & Cr0.PE) this.refreshAllSegs();
        this.updateCpl();
        break;
      }
      case 2: st[St.CR2] = v; break;
      case 3: st[St.CR3] = v; this.flushTlb(); break;
      case 4:
        if (v & ~0x3fff & ~(1 << 13)) throw new CpuFault(Vec.GP, 0);
        st[St.CR4] = v;
        this.flushTlb();
        break;
      default: throw new CpuFault(Vec.UD);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Blocks
  // ------------------------------------------------------------------------------------------
  private fetchLa = 0;
  private fetchOff = 0;
  private fetchByte = (k: number): number => {
    const off = (this.fetchOff + k) >>> 0;
    const eoff = this.code32 ? off : off & 0xffff;
    if (eoff > this.segHi[Seg.CS] || eoff < this.segLo[Seg.CS]) throw new CpuFault(Vec.GP, 0);
    const la = (this.segBase[Seg.CS] + eoff) | 0;
    const p = la >>> 12, e = p & (TLB_ENTRIES - 1);
    if (this.tlbR[e] === p) return this.m8[this.tlbH[e] + (la & 0xfff)];
    const h = this.translate(la, ACC_FETCH);
    if (h < 0) {
      // Fetching from a guest-physical address with no memslot: nothing to execute there.
      this.lastFetchMmio = true;
      throw new CpuFault(Vec.GP, 0);
    }
    return this.m8[h];
  };
  lastFetchMmio = false;

  private hostOfFetch(eip: number): number {
    const la = (this.segBase[Seg.CS] + eip) | 0;
    const p = la >>> 12, e = p & (TLB_ENTRIES - 1);
    if (this.tlbR[e] === p) return this.tlbH[e] + (la & 0xfff);
    if (eip > this.segHi[Seg.CS]) throw new CpuFault(Vec.GP, 0);
    const h = this.translate(la, ACC_FETCH);
    if (h < 0) { this.lastFetchMmio = true; throw new CpuFault(Vec.GP, 0); }
    return h;
  }

  /** Find or decode the block at the current CS:EIP. */
  getBlock(eip: number): Block {
    const code32 = this.code32;
    const host = this.hostOfFetch(eip);
    const key = host * 2 + (code32 ? 1 : 0);
    const slot = (host ^ (host >>> 12)) & (CACHE_SIZE - 1);
    const c = this.cache[slot];
    if (c !== null && c.key === key && c.valid) return c;
    let b = this.blocks.get(key);
    if (b === undefined || !b.valid) b = this.decodeBlock(eip, host, key, code32);
    this.cache[slot] = b;
    return b;
  }

  private decodeBlock(eip: number, host: number, key: number, code32: boolean): Block {
    // Decoding costs about what running 64 cached blocks does: code that is always new (zeroed RAM,
    // a copy loop of code) reaches the wall-clock check as soon (see runLoop).
    this.sinceClockCheck += 63;
    const insns: Insn[] = [];
    const pages = new Set<number>();
    const startPage = host >>> 12;
    pages.add(startPage);
    let off = 0;
    const ipMask = code32 ? -1 : 0xffff;
    const la0 = (this.segBase[Seg.CS] + eip) | 0;
    for (;;) {
      this.fetchOff = (eip + off) & ipMask;
      let ins: Insn;
      try {
        ins = decode(this.fetchByte, code32);
      } catch (e) {
        // A fetch fault on the first instruction is raised now; later ones end the block and fault
        // when (if) execution reaches them.
        if (insns.length === 0) throw e;
        break;
      }
      ins.bytes = [];
      for (let k = 0; k < ins.len; k++) ins.bytes.push(this.fetchByte(k));
      off += ins.len;
      ins.nextOff = off;
      ins.pos = insns.length;
      insns.push(ins);
      const endLa = (la0 + off - 1) | 0;
      if ((endLa >>> 12) !== (la0 >>> 12)) {
        // The instruction straddles into the next page: record that page too, and stop here.
        try { pages.add(this.hostOfFetch((eip + off - 1) & ipMask) >>> 12); } catch { /* ends the block */ }
        break;
      }
      if (ins.terminal || insns.length >= BLOCK_MAX_INSNS || ((la0 + off) & 0xfff) === 0) break;
    }
    const b = new Block(key, insns, [...pages], ipMask);
    // The bytes it covers: from its start to the page end or its end, and the rest on the next page.
    const lo = host & 0xfff, first = Math.min(off, 0x1000 - lo);
    b.spans.push(startPage, lo, lo + first);
    if (first < off && b.pages.length > 1) b.spans.push(b.pages[1], 0, off - first);
    this.blocks.set(key, b);
    for (let k = 0; k < b.spans.length; k += 3) this.markCode(b.spans[k], b.spans[k + 1], b.spans[k + 2]);
    for (const p of pages) {
      let list = this.pageBlocks.get(p);
      if (!list) { list = []; this.pageBlocks.set(p, list); }
      list.push(b);
      if (!this.codePage[p]) {
        this.codePage[p] = 1;
        // Writes to this page must now take the slow path: drop write entries that point at it.
        const hp = p << 12;
        for (let e = 0; e < TLB_ENTRIES; e++) if (this.tlbW[e] !== -1 && this.tlbH[e] === hp) this.tlbW[e] = -1;
      }
    }
    return b;
  }

  /** Set the bits of bytes lo..hi-1 of host page `page` in its code bitmap. */
  private markCode(page: number, lo: number, hi: number): void {
    let bits = this.codeBits.get(page);
    if (bits === undefined) this.codeBits.set(page, bits = new Int32Array(128));
    for (let k = lo; k < hi; k++) bits[k >>> 5] |= 1 << (k & 31);
  }

  /**
   * A write of `size` bytes at host offset `h` (within one page) to a page holding decoded code:
   * drop the blocks whose bytes it touches (and their compiled code), keep the others. The
   * written bytes are checked against the page's bitmap first; a write next to code costs no more.
   */
  codeWritten(h: number, size: number): void {
    const page = h >>> 12, lo = h & 0xfff, hi = Math.min(lo + size, 0x1000);
    const bits = this.codeBits.get(page);
    if (bits !== undefined) {
      let hit = false;
      for (let k = lo; k < hi; k++) {
        if (bits[k >>> 5] & (1 << (k & 31))) { hit = true; break; }
      }
      if (!hit) return;
    }
    const list = this.pageBlocks.get(page);
    if (list === undefined || bits === undefined) return this.invalidateCodePage(page);
    const keep: Block[] = [], dropped: Block[] = [];
    for (const b of list) {
      if (!b.valid) continue; // dropped through its other page
      let overlaps = false;
      for (let k = 0; k < b.spans.length; k += 3) {
        if (b.spans[k] === page && b.spans[k + 1] < hi && lo < b.spans[k + 2]) overlaps = true;
      }
      (overlaps ? dropped : keep).push(b);
    }
    if (keep.length === 0) return this.invalidateCodePage(page);
    bits.fill(0);
    for (const b of keep) {
      for (let k = 0; k < b.spans.length; k += 3) if (b.spans[k] === page) this.markCode(page, b.spans[k + 1], b.spans[k + 2]);
    }
    this.pageBlocks.set(page, keep);
    if (dropped.length === 0) return; // the bits were stale (blocks dropped through another page)
    for (const b of dropped) {
      b.valid = false;
      if (this.blocks.get(b.key) === b) this.blocks.delete(b.key);
    }
    this.codeInvalidations += dropped.length;
    if (this.engine !== null) this.engine.invalidateBlocks(page, dropped);
    this.stop = true; // the running block may be one of them
  }

  /** Whether a write of `size` bytes at host offset `h` (within one page) would touch decoded code. */
  touchesCode(h: number, size: number): boolean {
    const page = h >>> 12;
    if (!this.codePage[page]) return false;
    const bits = this.codeBits.get(page);
    if (bits === undefined) return true;
    const lo = h & 0xfff, hi = Math.min(lo + size, 0x1000);
    for (let k = lo; k < hi; k++) if (bits[k >>> 5] & (1 << (k & 31))) return true;
    return false;
  }

  /** Drop every decoded block on a host page (a write hit it). */
  invalidateCodePage(hostPage: number): void {
    const list = this.pageBlocks.get(hostPage);
    this.codePage[hostPage] = 0;
    this.codeBits.delete(hostPage);
    if (this.engine !== null) this.engine.invalidatePage(hostPage);
    if (!list) return;
    for (const b of list) {
      if (b.valid) this.codeInvalidations++;
      b.valid = false;
      this.blocks.delete(b.key);
    }
    this.pageBlocks.delete(hostPage);
    this.stop = true; // the running block may be one of them
  }
  /** Drop all decoded code (memory changed behind the processor's back: loaders, userspace writes). */
  invalidateAllCode(): void {
    for (const p of [...this.pageBlocks.keys()]) this.invalidateCodePage(p);
    this.cache.fill(null);
    this.flushTlb();
  }
  /** Number of decoded blocks, for stats. */
  get blockCount(): number { return this.blocks.size; }

  // ------------------------------------------------------------------------------------------
  // Save and restore (between KVM_RUN calls: Machine.reset(), snapshots)
  // ------------------------------------------------------------------------------------------
  /**
   * The processor's state: the state block (registers, segment caches, lazy flags, the FPU and SSE
   * state, the instruction count), an MMIO access in flight and the last shutdown's record.
   * Everything else here is derived (segment limits, TLB, decoded blocks) or lives within one entry.
   */
  saveState(): CpuState {
    this.stf[St.ICOUNT_F64] = this.icountLive;
    return {
      block: this.st8.slice(0, STATE_BYTES),
      mmioLog: this.mmioLog.map((a) => ({ ...a })),
      mmioPending: this.mmioPending && { ...this.mmioPending },
      shutdownDetail: this.shutdownDetail && structuredClone(this.shutdownDetail),
      nullVectorIsFatal: this.nullVectorIsFatal,
      hostIntrAt: this.hostIntrAt,
    };
  }
  /** Put back what `saveState` saved; derived state is rebuilt, decoded and compiled code dropped. */
  restoreState(s: CpuState): void {
    this.st8.set(s.block);
    this.icountLive = this.stf[St.ICOUNT_F64];
    this.mmioLog = s.mmioLog.map((a) => ({ ...a }));
    this.mmioPos = 0;
    this.mmioPending = s.mmioPending && { ...s.mmioPending };
    this.shutdownDetail = s.shutdownDetail && structuredClone(s.shutdownDetail);
    this.nullVectorIsFatal = s.nullVectorIsFatal;
    this.hostIntrAt = s.hostIntrAt;
    // What a VM entry or the run loop sets up afresh.
    this.timer = Infinity;
    this.ptEnd = Infinity;
    this.stop = false;
    this.exitPending = false;
    this.exitBlock = null;
    this.repLimit = 1 << 20;
    this.repExtra = 0;
    this.delivering = 0;
    this.firstVector = -1;
    this.deadline = Infinity;
    this.interruptedByHost = false;
    this.lastFetchMmio = false;
    this.softIntDelivered = false;
    this.stepShadow = 0;
    this.ctlVersion = -1; // re-read the VMCS controls at the next entry
    this.refreshAllSegs();
    this.invalidateAllCode();
    this.segEpoch++;
    this.linkEpoch++;
  }

  // ------------------------------------------------------------------------------------------
  // VM entry and the run loop
  // ------------------------------------------------------------------------------------------
  /**
   * VMLAUNCH/VMRESUME: run the guest until a VM exit. Exit information is left in the VMCS.
   * The preemption timer, when active, counts retired instructions (IA32_VMX_MISC rate: every
   * instruction) and exits with reason 52 when it reaches zero.
   */
  private ctlVersion = -1;
  vmEnter(): void {
    // The hot path of every entry is kept small so that the JIT inlines it into KVM's run path:
    // the rare work (re-reading the controls, event injection) lives in functions of its own.
    const v = this.vmcs!;
    if (v.version !== this.ctlVersion) this.loadControls(v);
    const pt = this.pinBased & PinBased.PREEMPTION_TIMER ? v.preemptionTimerValue : Infinity;
    const live = this.icountLive;
    this.ptEnd = live + pt;
    const host = this.pinBased & PinBased.EXT_INTR_EXITING ? this.hostIntrAt - live : Infinity;
    this.timer = host < pt ? host : pt;
    this.exitPending = false;
    this.interruptedByHost = false;
    v.exitReason = 0;
    v.exitQualification = 0;
    v.exitInstructionLen = 0;
    v.exitIntrInfo = 0;
    if ((v.entryIntrInfo & IntrInfo.VALID) !== 0 && this.injectOnEntry(v)) return this.vmExitCommon();
    if (this.timer <= 0) {
      this.timerExit();
      return this.vmExitCommon();
    }
    if (this.exitBlock === null || this.engine === null || !this.resumeCompiled()) this.runLoop();
    this.vmExitCommon();
  }

  /** The controls the processor consults while running, re-read after a VMWRITE changed one. */
  private loadControls(v: Vmcs): void {
    this.cpuBased = v.cpuBasedCtl;
    this.pinBased = v.pinBasedCtl;
    this.exceptionBitmap = v.exceptionBitmap;
    this.intrWindow = (this.cpuBased & CpuBased.INTR_WINDOW_EXITING) !== 0;
    this.ctlVersion = v.version;
  }

  /**
   * Event injection (SDM 26.6): deliver what the VM-entry interruption-information field holds.
   * @returns true when the delivery itself exited (the exception bitmap, a triple fault)
   */
  private injectOnEntry(v: Vmcs): boolean {
    const inj = v.entryIntrInfo;
    v.write(VmcsField.VM_ENTRY_INTR_INFO_FIELD, 0);
    const vector = inj & 0xff, type = (inj >> 8) & 7;
    const ec = inj & IntrInfo.ERROR_CODE_VALID ? v.read(VmcsField.VM_ENTRY_EXCEPTION_ERROR_CODE) : -1;
    this.st[St.ACTIVITY] = 0;
    const soft = type === IntrInfo.TYPE_SOFT_INTR || type === IntrInfo.TYPE_SOFT_EXCEPTION;
    if (soft) this.st[St.RIP] = (this.st[St.RIP] + v.read(VmcsField.VM_ENTRY_INSTRUCTION_LEN)) & (this.code32 ? -1 : 0xffff);
    // Injected events are not intercepted by the exception bitmap (SDM 26.6.1).
    const bm = this.exceptionBitmap;
    this.exceptionBitmap = 0;
    this.deliver(vector, ec, soft, 0, type === IntrInfo.TYPE_HW_EXCEPTION ? -1 : type);
    this.exceptionBitmap = bm;
    return this.exitPending;
  }

  /**
   * The re-entry after an exit, when compiled code follows the exiting block: the first round of
   * `runLoop` for that case alone (same checks, same link), so that an exit loop (an OUT to a
   * device, a hypercall) runs compiled code straight from VM entry to its next exit. Returns false,
   * having changed nothing, when the run loop must decide; true when the guest exited; otherwise
   * the run loop goes on from where the compiled code left.
   */
  private resumeCompiled(): boolean {
    const st = this.st;
    const prev = this.exitBlock!;
    if (st[St.INTERRUPTIBILITY] !== 0 || this.onInsn !== null || (st[St.RFLAGS] & Fl.TF) !== 0 ||
        (this.intrWindow && (st[St.RFLAGS] & Fl.IF) !== 0) || this.sinceClockCheck >= 4095) return false;
    const blk = this.linkedBlock(prev, st[St.RIP]);
    if (blk === null) return false;
    this.exitBlock = null;
    // A block the engine declines is offered to it again by the run loop (under `auto` its count
    // towards compiling then moves by two).
    if (!this.engine!.runBlock(this, blk, st[St.RIP] >>> 0)) {
      this.exitBlock = prev;
      return false;
    }
    this.sinceClockCheck++;
    if (this.exitPending) return true;
    this.runLoop();
    return true;
  }

  /** The block `prev` links to at `eip`, if the link still holds. */
  private linkedBlock(prev: Block, eip: number): Block | null {
    if (prev.linkEpoch !== this.linkEpoch || !prev.valid) return null;
    const blk = prev.link0Eip === eip ? prev.link0 : prev.link1Eip === eip ? prev.link1 : null;
    return blk !== null && blk.valid ? blk : null;
  }

  private vmExitCommon(): void {
    const v = this.vmcs!;
    this.stf[St.ICOUNT_F64] = this.icountLive;
    if ((this.pinBased & PinBased.PREEMPTION_TIMER) && (v.exitCtl & ExitCtl.SAVE_PREEMPTION_TIMER)) {
      v.preemptionTimerValue = Math.max(0, this.ptEnd - this.icountLive);
    }
  }

  /**
   * `timer` reached zero: the preemption timer expired (reason 52), or the host's timer interrupt
   * arrived (reason 1, external-interrupt exiting); the preemption timer first when both are due.
   */
  private timerExit(): void {
    if (this.icountLive >= this.ptEnd) this.recordExit(ExitReason.PREEMPTION_TIMER, 0);
    else this.recordExit(ExitReason.EXTERNAL_INTERRUPT, 0);
  }

  /** Count `n` retired instructions against the instruction counter and the preemption timer. */
  retire(n: number): void {
    this.icountLive += n;
    this.timer -= n;
  }
  /** The instruction counter while running (written back to the state block by `icount`). */
  private icountLive = 0;

  /** Bumped when block links may be stale: TLB flushes (paging, CPL) and CS reloads. */
  linkEpoch = 0;

  private sinceClockCheck = 0;

  /**
   * The block whose instruction exited last, kept across the exit so that the block at the resume
   * point is found through its links rather than the block cache (the links are checked as usual).
   */
  exitBlock: Block | null = null;

  /**
   * Whether the host's wall-clock deadline has passed; if so the run ends as on a host interrupt
   * (an external-interrupt exit, `interruptedByHost`). The run loop and the JIT's runner ask.
   */
  deadlinePassed(): boolean {
    if (this.deadline === Infinity || performance.now() < this.deadline) return false;
    this.interruptedByHost = true;
    this.recordExit(ExitReason.EXTERNAL_INTERRUPT, 0);
    return true;
  }

  private runLoop(): void {
    const st = this.st;
    let prev: Block | null = this.exitBlock;
    this.exitBlock = null;
    for (;;) {
      if (this.timer <= 0) {
        this.timerExit();
        return;
      }
      // The clock is read every 4096 blocks, counted across entries, so a guest that exits often
      // (in-kernel PIO) still meets its deadline.
      if (++this.sinceClockCheck >= 4096) {
        this.sinceClockCheck = 0;
        if (this.deadlinePassed()) return;
      }
      // External interrupts are recognised between blocks (STI, MOV SS, POPF and IRET end one).
      // Blocking by STI or MOV SS covers the one instruction after it: that instruction runs as a
      // block of its own and the blocking ends with it (SDM 6.8.3, 24.4.2). With the blocking
      // gone and IF=1, interrupt-window exiting exits before the next instruction (SDM 25.2).
      const shadow = st[St.INTERRUPTIBILITY];
      if (shadow === 0 && this.intrWindow && (st[St.RFLAGS] & Fl.IF) !== 0) {
        this.recordExit(ExitReason.INTERRUPT_WINDOW, 0);
        return;
      }
      const eip = st[St.RIP];
      let blk = prev === null ? null : this.linkedBlock(prev, eip);
      if (blk === null) {
        try {
          blk = this.getBlock(eip >>> 0);
        } catch (e) {
          prev = null;
          if (!(e instanceof CpuFault)) throw e;
          if (shadow !== 0) st[St.INTERRUPTIBILITY] &= ~shadow;
          this.deliver(e.vector, e.errorCode, false);
          if (this.exitPending) return;
          continue;
        }
        if (prev !== null) {
          if (prev.linkEpoch !== this.linkEpoch) {
            prev.linkEpoch = this.linkEpoch;
            prev.link0 = prev.link1 = null;
            prev.link0Eip = prev.link1Eip = -1;
          }
          if (prev.link0 === null) { prev.link0 = blk; prev.link0Eip = eip; }
          else { prev.link1 = blk; prev.link1Eip = eip; }
        }
      }
      prev = blk;
      if (this.engine !== null && shadow === 0 && this.onInsn === null && (st[St.RFLAGS] & Fl.TF) === 0 &&
          this.engine.runBlock(this, blk, eip >>> 0)) {
        prev = null;
        if (this.exitPending) return;
        continue;
      }
      const insns = blk.insns;
      let n = insns.length;
      if (n > this.timer) n = this.timer;
      if (shadow !== 0) n = 1;
      const ipMask = blk.ipMask;
      if (blk.hasRep) this.repLimit = Math.min(this.timer - (n - 1), 1 << 20);
      const traced = st[St.RFLAGS] & Fl.TF;
      if (traced !== 0) n = this.beginStep();
      this.repExtra = 0;
      this.stop = false;
      this.curBlockEip = eip;
      let k = 0;
      try {
        if (this.onInsn === null) {
          for (; k < n;) {
            const ins = insns[k];
            st[St.RIP] = (eip + ins.nextOff) & ipMask;
            ins.exec(this, ins);
            k++;
            if (this.stop) break;
          }
        } else {
          for (; k < n;) {
            const ins = insns[k];
            this.onInsn(this, ins, (eip + ins.nextOff - ins.len) & ipMask);
            st[St.RIP] = (eip + ins.nextOff) & ipMask;
            ins.exec(this, ins);
            k++;
            if (this.stop) break;
          }
        }
      } catch (e) {
        const ins = insns[k];
        st[St.RIP] = (eip + ins.nextOff - ins.len) & ipMask;
        this.retire(k + this.repExtra);
        // Completed MMIO accesses belong to the instruction being restarted. One that restarts is
        // always first in its block, so when a later instruction exits the log holds only
        // accesses of instructions that completed: drop them.
        if (k > 0) this.mmioLog.length = 0;
        this.mmioPos = 0;
        if (e === VmExitSignal.instance) return;
        if (!(e instanceof CpuFault)) throw e;
        this.mmioLog.length = 0;
        if (shadow !== 0) st[St.INTERRUPTIBILITY] &= ~shadow;
        this.deliver(e.vector, e.errorCode, false);
        if (this.exitPending) return;
        continue;
      }
      if (this.mmioPos !== 0 || this.mmioLog.length !== 0) {
        this.mmioLog.length = 0;
        this.mmioPos = 0;
      }
      if (this.exitPending) {
        // The exiting instruction (last executed) has not retired; the kernel retires it if it
        // emulates it.
        this.retire(k - 1 + this.repExtra);
        this.exitBlock = blk;
        return;
      }
      const retired = k + this.repExtra;
      this.icountLive += retired;
      this.timer -= retired;
      if (shadow !== 0) {
        st[St.INTERRUPTIBILITY] &= ~shadow;
        prev = null; // the next block starts inside this one: do not link to it
      }
      if (traced !== 0) this.endStep();
    }
  }

  // Single-step (EFLAGS.TF, SDM vol. 3, 17.3.1.4): a block holds one instruction while TF is set,
  // so the loop above pays nothing per instruction when it is clear.
  private stepShadow = 0;
  /** Set when a software interrupt was delivered: its handler starts with TF clear and no trap follows. */
  softIntDelivered = false;
  private beginStep(): number {
    this.repLimit = 1; // a trap after each iteration of a REP string instruction
    this.stepShadow = this.st[St.INTERRUPTIBILITY] & 2;
    this.softIntDelivered = false;
    return 1;
  }
  /**
   * The single-step trap after an instruction that started with TF set: #DB with DR6.BS, RIP at
   * the next instruction. None after INT n/INT3/INTO (the delivery cleared TF), and none right
   * after MOV SS or POP SS (blocking by MOV SS holds it to the next instruction, SDM 6.8.3).
   */
  private endStep(): void {
    if (this.softIntDelivered) { this.softIntDelivered = false; return; }
    if ((this.st[St.INTERRUPTIBILITY] & 2) && !this.stepShadow) return;
    this.st[St.DR + 12] |= 0x4000;
    this.deliver(Vec.DB, -1, false);
  }

  /** The instruction at the current RIP, decoded without caching (for traces and exit details). */
  decodeAt(eip: number): Insn | null {
    this.fetchOff = eip;
    try {
      const i = decode(this.fetchByte, this.code32, this.scratch);
      return i;
    } catch {
      return null;
    }
  }
  get blockEip(): number { return this.curBlockEip; }
}

const Gpr4 = 4 << 1; // ESP's Int32Array index

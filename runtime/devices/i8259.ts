/**
 * The PC's pair of Intel 8259A programmable interrupt controllers, cascaded as on every PC/AT:
 * the master at ports 0x20/0x21 delivers to the processor, the slave at 0xA0/0xA1 drives the
 * master's IR2. The in-kernel irqchip of KVM_CREATE_IRQCHIP (arch/x86/kvm/i8259.c plays this part
 * in Linux), also usable as a plain device.
 *
 * What is modelled, from the 8259A data sheet (Intel order number 231468):
 * - initialization: ICW1 (A0=0, D4=1) resets the chip and starts the sequence ICW2 (vector base,
 *   T7–T3), ICW3 (only when SNGL=0), ICW4 (only when IC4=1: AEOI, SFNM; µPM is ignored, the vector
 *   is always the 8086 one);
 * - OCW1 (A0=1): the interrupt mask register; OCW2: non-specific and specific EOI, rotation on
 *   EOI, rotation in automatic-EOI mode, set priority; OCW3: read IRR or ISR, poll, special mask;
 * - edge-triggered requests (a low-to-high transition sets IRR, which then stays set until it is
 *   acknowledged, even if the line drops); level-triggered requests through ICW1.LTIM or the
 *   PIIX edge/level control registers (ELCR) at 0x4D0/0x4D1;
 * - fully nested priority with rotation, special mask mode, special fully nested mode;
 * - INTA (`readIrq`): the highest request moves from IRR to ISR (not for level-triggered
 *   lines: IRR follows the line) and its vector is returned; an automatic EOI follows in AEOI
 *   mode; a request that vanished before INTA gives the spurious IR7 vector with no ISR bit set;
 * - poll (OCW3 P=1): the next read of either port acknowledges like INTA and returns
 *   0x80 | level, or 0 when nothing is requested.
 *
 * The slave's INT output is a pulse on the master's IR2 each time it rises, so IR2 behaves as an
 * edge-triggered input regardless of the master's trigger mode.
 */
import type { PioDevice, PortRange } from "./device.ts";
import { portOutsideDevice } from "./ports.ts";

/** The master's ports, the slave's, and the ELCR pair (master, slave). */
export const PIC_MASTER_PORT = 0x20;
export const PIC_SLAVE_PORT = 0xa0;
export const PIC_ELCR_PORT = 0x4d0;
/** IRQs that can never be level triggered (PIIX ELCR: IRQ0, 1, 2, 8 and 13 are edge only). */
const ELCR_MASK = [0xf8, 0xde] as const;

/** What `I8259.saveState` keeps: the registers and the initialization sequence's progress. */
export interface I8259State {
  irr: number;
  isr: number;
  imr: number;
  lines: number;
  elcr: number;
  ltim: boolean;
  priorityAdd: number;
  vectorBase: number;
  icw3: number;
  initState: number;
  needIcw4: boolean;
  single: boolean;
  autoEoi: boolean;
  rotateOnAutoEoi: boolean;
  specialFullyNested: boolean;
  specialMask: boolean;
  readIsr: boolean;
  poll: boolean;
}

/** What `I8259Pair.saveState` keeps. */
export interface I8259PairState {
  master: I8259State;
  slave: I8259State;
  output: boolean;
  slaveOut: boolean;
}

/** One 8259A. */
export class I8259 {
  /** Interrupt request register: requests waiting for service. */
  irr = 0;
  /** In-service register: requests acknowledged and not yet ended. */
  isr = 0;
  /** Interrupt mask register (OCW1). */
  imr = 0;
  /** The input lines as last driven (edge detection). */
  lines = 0;
  /** Level-triggered inputs (ELCR bits, or all of them with ICW1.LTIM). */
  elcr = 0;
  ltim = false;
  /** The IR level with the highest priority (0 after initialization; rotation moves it). */
  priorityAdd = 0;
  /** ICW2: T7–T3 of the vector. */
  vectorBase = 0;
  /** ICW3: slaves present (master) or this slave's id. */
  icw3 = 0;
  /** 0 ready; 1, 2, 3 expecting ICW2, ICW3, ICW4. */
  initState = 0;
  needIcw4 = false;
  single = false;
  autoEoi = false;
  rotateOnAutoEoi = false;
  specialFullyNested = false;
  specialMask = false;
  /** OCW3 RIS: a read of the command port returns ISR (true) or IRR (false). */
  readIsr = false;
  /** OCW3 P: the next read is a poll. */
  poll = false;

  constructor(readonly isMaster: boolean) {}

  saveState(): I8259State {
    const { irr, isr, imr, lines, elcr, ltim, priorityAdd, vectorBase, icw3, initState, needIcw4, single, autoEoi, rotateOnAutoEoi, specialFullyNested, specialMask, readIsr, poll } = this;
    return { irr, isr, imr, lines, elcr, ltim, priorityAdd, vectorBase, icw3, initState, needIcw4, single, autoEoi, rotateOnAutoEoi, specialFullyNested, specialMask, readIsr, poll };
  }
  restoreState(s: I8259State): void {
    ({ irr: this.irr, isr: this.isr, imr: this.imr, lines: this.lines, elcr: this.elcr, ltim: this.ltim, priorityAdd: this.priorityAdd, vectorBase: this.vectorBase, icw3: this.icw3, initState: this.initState, needIcw4: this.needIcw4, single: this.single, autoEoi: this.autoEoi, rotateOnAutoEoi: this.rotateOnAutoEoi, specialFullyNested: this.specialFullyNested, specialMask: this.specialMask, readIsr: this.readIsr, poll: this.poll } = s);
  }

  /** The requests that are level-triggered. */
  get levelMask(): number {
    return this.ltim ? 0xff : this.elcr;
  }

  /**
   * Drive input line `irq` (0–7). An edge-triggered input latches a request on a low-to-high
   * transition; a level-triggered one requests while the line is high.
   */
  setLine(irq: number, level: boolean): void {
    const bit = 1 << irq;
    if (this.levelMask & bit) {
      if (level) this.irr |= bit;
      else this.irr &= ~bit;
    } else if (level && !(this.lines & bit)) {
      this.irr |= bit;
    }
    if (level) this.lines |= bit;
    else this.lines &= ~bit;
  }

  /** The highest-priority IR level set in `mask`, as a priority (0 highest), or 8 for none. */
  private priority(mask: number): number {
    if ((mask & 0xff) === 0) return 8;
    let p = 0;
    while ((mask & (1 << ((p + this.priorityAdd) & 7))) === 0) p++;
    return p;
  }

  /**
   * The IR level this chip requests the processor (or the master) for, or -1: the highest
   * unmasked request, if it has a higher priority than every level in service (fully nested
   * mode). In special mask mode masked levels in service do not block; in special fully nested
   * mode the master lets a slave's new request through while IR2 is in service.
   */
  pending(irr = this.irr): number {
    const p = this.priority(irr & ~this.imr);
    if (p === 8) return -1;
    let inService = this.isr;
    if (this.specialMask) inService &= ~this.imr;
    if (this.specialFullyNested && this.isMaster) inService &= ~(1 << 2);
    return p < this.priority(inService) ? (p + this.priorityAdd) & 7 : -1;
  }

  /** INTA: move level `irq` into service; automatic EOI in AEOI mode. */
  acknowledge(irq: number): void {
    const bit = 1 << irq;
    this.isr |= bit;
    if (!(this.levelMask & bit)) this.irr &= ~bit;
    if (this.autoEoi) {
      if (this.rotateOnAutoEoi) this.priorityAdd = (irq + 1) & 7;
      this.isr &= ~bit;
    }
  }

  /** A write to the command port (A0=0): ICW1, OCW2 or OCW3. */
  writeCommand(v: number): void {
    if (v & 0x10) {
      // ICW1: the initialization sequence starts (data sheet, "Initialization command words").
      this.initState = 1;
      this.needIcw4 = (v & 1) !== 0;
      this.single = (v & 2) !== 0;
      this.ltim = (v & 8) !== 0;
      this.imr = 0;
      this.isr = 0;
      // The edge sense latch is reset: a line held high must go low and high again.
      this.irr &= this.levelMask;
      this.priorityAdd = 0;
      this.specialMask = false;
      this.readIsr = false;
      this.poll = false;
      this.icw3 = this.isMaster ? 0 : 7;
      if (!this.needIcw4) {
        this.autoEoi = false;
        this.specialFullyNested = false;
      }
      this.rotateOnAutoEoi = false;
      return;
    }
    if (v & 0x08) {
      // OCW3
      if (v & 0x40) this.specialMask = (v & 0x20) !== 0;
      if (v & 0x04) this.poll = true;
      if (v & 0x02) this.readIsr = (v & 1) !== 0;
      return;
    }
    // OCW2: R, SL, EOI in bits 7:5, the level in bits 2:0.
    const level = v & 7;
    switch (v >> 5) {
      case 0: this.rotateOnAutoEoi = false; break; // clear rotate in AEOI mode
      case 4: this.rotateOnAutoEoi = true; break; // set rotate in AEOI mode
      case 1: case 5: { // non-specific EOI, optionally rotating
        const p = this.priority(this.isr);
        if (p === 8) break;
        const irq = (p + this.priorityAdd) & 7;
        this.isr &= ~(1 << irq);
        if (v & 0x80) this.priorityAdd = (irq + 1) & 7;
        break;
      }
      case 3: case 7: // specific EOI, optionally rotating
        this.isr &= ~(1 << level);
        if (v & 0x80) this.priorityAdd = (level + 1) & 7;
        break;
      case 6: this.priorityAdd = (level + 1) & 7; break; // set priority: `level` becomes the lowest
      default: break; // 2: no operation
    }
  }

  /** A write to the data port (A0=1): an ICW during initialization, else OCW1. */
  writeData(v: number): void {
    switch (this.initState) {
      case 0:
        this.imr = v;
        return;
      case 1:
        this.vectorBase = v & 0xf8;
        this.initState = this.single ? (this.needIcw4 ? 3 : 0) : 2;
        return;
      case 2:
        this.icw3 = v;
        this.initState = this.needIcw4 ? 3 : 0;
        return;
      default:
        this.autoEoi = (v & 2) !== 0;
        this.specialFullyNested = (v & 0x10) !== 0;
        this.initState = 0;
    }
  }

  /** A read of the command port: IRR or ISR as OCW3 selected. */
  readCommand(): number {
    return this.readIsr ? this.isr : this.irr;
  }
}

/**
 * The cascaded pair, as one device on the PIO bus (ports 0x20–0x21, 0xA0–0xA1, 0x4D0–0x4D1).
 * IRQs 0–7 are the master's inputs, 8–15 the slave's; the master's IR2 is the cascade.
 *
 * @example
 * ```ts
 * import { I8259Pair } from "./i8259.ts";
 *
 * const pic = new I8259Pair();
 * // ICW1 (edge, cascade, ICW4 needed), ICW2 vector base 0x20, ICW3 slave on IR2, ICW4 8086 mode
 * for (const [port, v] of [[0x20, 0x11], [0x21, 0x20], [0x21, 0x04], [0x21, 0x01]]) pic.write(port, 1, v);
 * pic.setIrq(0, true);
 * if (!pic.output || pic.readIrq() !== 0x20) throw new Error("IRQ0 should arrive as vector 0x20");
 * pic.write(0x20, 1, 0x20); // non-specific EOI
 * ```
 */
export class I8259Pair implements PioDevice {
  readonly name: string;
  readonly ports: readonly PortRange[] = [
    { first: PIC_MASTER_PORT, last: PIC_MASTER_PORT + 1 },
    { first: PIC_SLAVE_PORT, last: PIC_SLAVE_PORT + 1 },
    { first: PIC_ELCR_PORT, last: PIC_ELCR_PORT + 1 },
  ];
  readonly master = new I8259(true);
  readonly slave = new I8259(false);
  /** The INT line to the processor. */
  output = false;
  /** Called when `output` rises (KVM kicks the vCPU there). */
  onOutput: (() => void) | null = null;
  /** The slave's INT output as last seen, so that IR2 gets a pulse when it rises. */
  private slaveOut = false;

  constructor(opts: { name?: string } = {}) {
    this.name = opts.name ?? "pic";
  }

  saveState(): I8259PairState {
    return { master: this.master.saveState(), slave: this.slave.saveState(), output: this.output, slaveOut: this.slaveOut };
  }
  restoreState(s: I8259PairState): void {
    this.master.restoreState(s.master);
    this.slave.restoreState(s.slave);
    this.output = s.output;
    this.slaveOut = s.slaveOut;
  }

  /**
   * Drive IRQ line `irq` (0–15) to `level` (KVM_IRQ_LINE on the PIC pins).
   * @throws RangeError for an IRQ outside 0–15
   */
  setIrq(irq: number, level: boolean): void {
    if (!Number.isInteger(irq) || irq < 0 || irq > 15) throw new RangeError(`Invalid PIC IRQ: ${irq} (0-15)`);
    if (irq < 8) this.master.setLine(irq, level);
    else this.slave.setLine(irq - 8, level);
    this.update();
  }

  /** Recompute the cascade and the INT output after any change (pic_update_irq). */
  update(): void {
    const s = this.slave.pending() >= 0;
    if (s && !this.slaveOut) {
      // A rising slave INT is a new request on the master's IR2.
      this.master.setLine(2, true);
      this.master.setLine(2, false);
    }
    this.slaveOut = s;
    const out = this.master.pending() >= 0;
    const rose = out && !this.output;
    this.output = out;
    if (rose) this.onOutput?.();
  }

  /**
   * INTA: acknowledge the highest request and return its vector (kvm_pic_read_irq). When the
   * request is gone by then, the vector is the spurious IR7 of the chip asked, with no ISR bit set.
   */
  readIrq(): number {
    const m = this.master;
    const irq = m.pending();
    let vector: number;
    if (irq < 0) {
      vector = m.vectorBase | 7;
    } else {
      m.acknowledge(irq);
      if (irq === 2 && !m.single) {
        const s = this.slave;
        const irq2 = s.pending();
        if (irq2 >= 0) s.acknowledge(irq2);
        vector = s.vectorBase | (irq2 >= 0 ? irq2 : 7);
      } else {
        vector = m.vectorBase | irq;
      }
    }
    this.update();
    return vector;
  }

  /**
   * Whether a rising edge on `irq` now would raise INT to the processor (the wake-up test a
   * halted vCPU needs): the line is unmasked on its way up and nothing of equal or higher
   * priority is in service. False when the request is already latched and blocked.
   */
  wouldInterrupt(irq: number): boolean {
    if (this.output) return true;
    if (irq >= 8) {
      const s = this.slave;
      const bit = 1 << (irq - 8);
      if ((s.irr & bit) && !(s.levelMask & bit)) return false;
      if (s.pending(s.irr | bit) < 0) return false;
      irq = 2;
    }
    const m = this.master, bit = 1 << irq;
    if ((m.irr & bit) && !(m.levelMask & bit)) return false;
    return m.pending(m.irr | bit) >= 0;
  }

  read(port: number, _size: 1 | 2 | 4): number {
    if (port === PIC_ELCR_PORT || port === PIC_ELCR_PORT + 1) return this.chipOf(port).elcr;
    const c = this.chipOf(port);
    if (c.poll) return this.pollRead(c);
    return port & 1 ? c.imr : c.readCommand();
  }

  write(port: number, _size: 1 | 2 | 4, value: number): void {
    const v = value & 0xff;
    const c = this.chipOf(port);
    if (port === PIC_ELCR_PORT || port === PIC_ELCR_PORT + 1) {
      c.elcr = v & ELCR_MASK[c.isMaster ? 0 : 1];
    } else if (port & 1) {
      c.writeData(v);
    } else {
      c.writeCommand(v);
    }
    this.update();
  }

  /** Poll command: the read acts as INTA and returns 0x80 | level, or 0 with nothing requested. */
  private pollRead(c: I8259): number {
    c.poll = false;
    const irq = c.pending();
    if (irq < 0) return 0;
    c.acknowledge(irq);
    this.update();
    return 0x80 | irq;
  }

  private chipOf(port: number): I8259 {
    switch (port) {
      case PIC_MASTER_PORT: case PIC_MASTER_PORT + 1: case PIC_ELCR_PORT: return this.master;
      case PIC_SLAVE_PORT: case PIC_SLAVE_PORT + 1: case PIC_ELCR_PORT + 1: return this.slave;
    }
    throw portOutsideDevice(this.name, port, PIC_MASTER_PORT, PIC_ELCR_PORT + 1);
  }
}

/**
 * The Intel 8254 programmable interval timer at ports 0x40–0x43, with channel 0's OUT wired to
 * IRQ0 and the PC's port 0x61 (channel 2 gate, speaker data, OUT2, refresh toggle). The in-kernel
 * PIT of KVM_CREATE_PIT2 (arch/x86/kvm/i8254.c plays this part in Linux), also usable as a plain
 * device.
 *
 * Time is virtual and deterministic: the counters run on a clock function that returns virtual
 * nanoseconds (the KVM layer derives it from the retired-instruction count, see x86.ts), never on
 * host time. The input clock is the PC's 1.193182 MHz; clock pulse k happens at virtual time
 * ceil(k · 10^9 / 1193182) ns, with exact integer arithmetic up to 2^53 ns (104 days).
 *
 * From the 8254 data sheet (Intel order number 231164):
 * - control word (0x43): SC1–SC0 select a counter or the read-back command, RW1–RW0 the access
 *   (00 counter latch, 01 LSB, 10 MSB, 11 LSB then MSB), M2–M0 the mode (6 and 7 are modes 2 and
 *   3), BCD; writing it stops the counter and puts OUT in its initial state (low in mode 0, high
 *   otherwise) until a count is written;
 * - a new count is loaded into the counting element on the clock pulse after it is written; an
 *   initial count of 0 is the largest (2^16 binary, 10^4 BCD);
 * - modes 0 (interrupt on terminal count), 1 (hardware-retriggerable one-shot), 2 (rate
 *   generator: OUT low for the one clock when the count is 1), 3 (square wave: high for ⌈N/2⌉
 *   clocks, low for ⌊N/2⌋), 4 (software strobe), 5 (hardware strobe); in modes 2 and 3 a count
 *   written while counting takes effect at the end of the current period;
 * - GATE: low stops counting in modes 0, 2, 3, 4 (and forces OUT high in 2 and 3); a rising edge
 *   reloads the count in modes 2 and 3 and triggers modes 1 and 5. Channels 0 and 1 have GATE
 *   tied high; channel 2's is bit 0 of port 0x61;
 * - counter latch and read-back commands (count and status latches; a latched status is read
 *   before a latched count); LSB/MSB flip-flops for reads and writes.
 *
 * IRQ0 sees a pulse (high, then low) at each rising edge of channel 0's OUT: the PIC's edge
 * detection sees the rise, and the line is low again between edges.
 */
import type { PioDevice, PortRange } from "./device.ts";
import { portOutsideDevice, widenByte } from "./ports.ts";

/** The 8254's input clock on a PC, in Hz. */
export const PIT_HZ = 1_193_182;
const NS_PER_S = 1_000_000_000;

/** Clock pulses that have happened by virtual time `ns` (floor(ns · PIT_HZ / 10^9), exact). */
export function pitTicksAt(ns: number): number {
  const q = Math.floor(ns / NS_PER_S), r = ns - q * NS_PER_S;
  return q * PIT_HZ + Math.floor((r * PIT_HZ) / NS_PER_S);
}
/** The virtual time of clock pulse `tick` (ceil(tick · 10^9 / PIT_HZ), exact). */
export function pitTickTime(tick: number): number {
  const q = Math.floor(tick / PIT_HZ), r = tick - q * PIT_HZ;
  return q * NS_PER_S + Math.ceil((r * NS_PER_S) / PIT_HZ);
}

function toBcd(v: number): number {
  return (v % 10) | (Math.floor(v / 10) % 10) << 4 | (Math.floor(v / 100) % 10) << 8 | (Math.floor(v / 1000) % 10) << 12;
}
function fromBcd(v: number): number {
  return (v & 0xf) + ((v >> 4) & 0xf) * 10 + ((v >> 8) & 0xf) * 100 + ((v >> 12) & 0xf) * 1000;
}

/** What `I8254.saveState` keeps. */
export interface I8254State {
  channels: PitChannelState[];
  speakerData: boolean;
  nextEventTime: number;
}

/** What `PitChannel.saveState` keeps: the counter, its latches and where the byte sequences are. */
export interface PitChannelState {
  mode: number;
  bcd: boolean;
  access: number;
  count: number;
  loadTick: number;
  nextCount: number;
  nextLoadTick: number;
  suspended: boolean;
  gate: boolean;
  pausedTicks: number;
  pauseStart: number;
  heldValue: number;
  awaitingTrigger: boolean;
  writeLsb: boolean;
  lowByte: number;
  readLsb: boolean;
  latchedCount: number | null;
  latchedLsbNext: boolean;
  latchedStatus: number | null;
  edgeCursor: number;
}

/** One counter of the 8254. Times are clock-pulse numbers. */
export class PitChannel {
  /** Mode 0–5, or -1 before the first control word. */
  mode = -1;
  bcd = false;
  /** RW1–RW0: 1 LSB only, 2 MSB only, 3 LSB then MSB. */
  access = 3;
  /** The initial count N (1 .. 2^16 binary, 1 .. 10^4 BCD). */
  count = 0x10000;
  /** The pulse that loaded N into the counting element; Infinity while not counting. */
  loadTick = Infinity;
  /** Modes 2 and 3: a count written while counting, and the period end where it loads. */
  nextCount = 0;
  nextLoadTick = Infinity;
  /** Mode 0: a count is being written in two bytes, counting is suspended and OUT is low. */
  private suspended = false;
  gate: boolean;
  /** Modes 0 and 4: pulses spent with GATE low, and the pulse GATE went low (Infinity when high). */
  private pausedTicks = 0;
  private pauseStart = Infinity;
  /** Modes 2 and 3: the count the element held when GATE went low (counting stopped). */
  private heldValue = -1;
  /** Modes 1 and 5 wait for a GATE trigger before counting. */
  private awaitingTrigger = false;
  private writeLsb = true;
  private lowByte = 0;
  private readLsb = true;
  private latchedCount: number | null = null;
  private latchedLsbNext = true;
  private latchedStatus: number | null = null;
  /** Channel 0 only: the last rising edge of OUT already signalled. */
  edgeCursor = -1;

  constructor(readonly index: number) {
    this.gate = index !== 2;
  }

  saveState(): PitChannelState {
    const { mode, bcd, access, count, loadTick, nextCount, nextLoadTick, suspended, gate, pausedTicks, pauseStart, heldValue, awaitingTrigger, writeLsb, lowByte, readLsb, latchedCount, latchedLsbNext, latchedStatus, edgeCursor } = this;
    return { mode, bcd, access, count, loadTick, nextCount, nextLoadTick, suspended, gate, pausedTicks, pauseStart, heldValue, awaitingTrigger, writeLsb, lowByte, readLsb, latchedCount, latchedLsbNext, latchedStatus, edgeCursor };
  }
  restoreState(s: PitChannelState): void {
    ({ mode: this.mode, bcd: this.bcd, access: this.access, count: this.count, loadTick: this.loadTick, nextCount: this.nextCount, nextLoadTick: this.nextLoadTick, suspended: this.suspended, gate: this.gate, pausedTicks: this.pausedTicks, pauseStart: this.pauseStart, heldValue: this.heldValue, awaitingTrigger: this.awaitingTrigger, writeLsb: this.writeLsb, lowByte: this.lowByte, readLsb: this.readLsb, latchedCount: this.latchedCount, latchedLsbNext: this.latchedLsbNext, latchedStatus: this.latchedStatus, edgeCursor: this.edgeCursor } = s);
  }

  private get modulus(): number {
    return this.bcd ? 10000 : 0x10000;
  }

  /** Modes 2/3: promote a count that was waiting for the end of a period. */
  private settle(t: number): void {
    if (this.nextLoadTick <= t) {
      this.count = this.nextCount;
      this.loadTick = this.nextLoadTick;
      this.nextLoadTick = Infinity;
    }
  }

  /** Pulses counted since the load, at pulse `t`; -1 when not counting (or not yet loaded). */
  private elapsed(t: number): number {
    this.settle(t);
    if (this.loadTick === Infinity || this.suspended || t < this.loadTick) return -1;
    const upTo = this.pauseStart < t ? this.pauseStart : t;
    return upTo - this.loadTick - this.pausedTicks;
  }

  /** The counting element at pulse `t` (what a latch captures). */
  value(t: number): number {
    if (this.heldValue >= 0) return this.heldValue;
    const d = this.elapsed(t);
    const n = this.count, mod = this.modulus;
    if (d < 0) return n % mod;
    switch (this.mode) {
      case 2: return n - (d % n);
      case 3: {
        const h = Math.ceil(n / 2), p = d % n;
        return (n - 2 * (p < h ? p : p - h)) & ~1;
      }
      default: return (((n - d) % mod) + mod) % mod;
    }
  }

  /** OUT at pulse `t`. */
  out(t: number): boolean {
    if (this.mode < 0) return true;
    if (this.heldValue >= 0) return true;
    const d = this.elapsed(t);
    const n = this.count;
    switch (this.mode) {
      case 0: return d >= n;
      case 1: return d < 0 || d >= n;
      case 2: return d < 0 || d % n !== n - 1;
      case 3: return d < 0 || d % n < Math.ceil(n / 2);
      default: return d < 0 || d !== n; // modes 4 and 5: low for the one clock at terminal count
    }
  }

  /** The first pulse after `t` at which OUT rises, or Infinity. */
  nextRisingEdge(t: number): number {
    this.settle(t);
    if (this.mode < 0 || this.loadTick === Infinity || this.suspended || this.heldValue >= 0) return Infinity;
    if (this.pauseStart !== Infinity) return Infinity; // GATE low: not counting
    const n = this.count, base = this.loadTick + this.pausedTicks;
    let e: number;
    switch (this.mode) {
      case 0: case 1: e = base + n; break;
      case 2: case 3: {
        // Rising edges at base + k·n, k ≥ 1; a pending count reloads at nextLoadTick.
        const k = t < base ? 1 : Math.floor((t - base) / n) + 1;
        e = base + k * n;
        if (this.nextLoadTick < e) e = this.nextLoadTick;
        return e;
      }
      default: e = base + n + 1; break;
    }
    return e > t ? e : Infinity;
  }

  /** The last pulse at or before `t` at which OUT rose (for coalescing missed edges), or -1. */
  lastRisingEdge(t: number): number {
    this.settle(t);
    if (this.mode < 0 || this.loadTick === Infinity || this.suspended || this.heldValue >= 0) return -1;
    const n = this.count, base = this.loadTick + this.pausedTicks;
    switch (this.mode) {
      case 0: case 1: return base + n <= t ? base + n : -1;
      case 2: case 3: return t >= base + n ? base + Math.floor((t - base) / n) * n : -1;
      default: return base + n + 1 <= t ? base + n + 1 : -1;
    }
  }

  /** A control word for this counter (not a latch command): reset the counter to `mode`. */
  setMode(mode: number, access: number, bcd: boolean): void {
    this.mode = mode > 5 ? mode - 4 : mode;
    this.access = access;
    this.bcd = bcd;
    this.loadTick = Infinity;
    this.nextLoadTick = Infinity;
    this.suspended = false;
    this.heldValue = -1;
    this.pausedTicks = 0;
    this.pauseStart = Infinity;
    this.awaitingTrigger = false;
    this.writeLsb = true;
    this.readLsb = true;
  }

  /** Counter latch command: capture the count unless one is already latched. */
  latchCount(t: number): void {
    if (this.latchedCount !== null) return;
    this.latchedCount = this.value(t);
    this.latchedLsbNext = true;
  }
  /** Read-back status: OUT, null count, RW, mode, BCD. */
  latchStatus(t: number): void {
    if (this.latchedStatus !== null) return;
    const mode = this.mode < 0 ? 0 : this.mode;
    this.latchedStatus = (this.out(t) ? 0x80 : 0) | (this.nullCount(t) ? 0x40 : 0) | (this.access << 4) | (mode << 1) | (this.bcd ? 1 : 0);
  }
  /** Status bit 6: a count has been written (or the mode set) and not yet loaded into the element. */
  nullCount(t: number): boolean {
    this.settle(t);
    if (this.nextLoadTick !== Infinity || this.suspended) return true;
    if (this.heldValue >= 0) return false;
    return this.loadTick === Infinity || t < this.loadTick;
  }

  /** A byte written to the counter's port at pulse `t`. */
  writeByte(v: number, t: number): void {
    if (this.mode < 0) return; // no control word yet: the counter ignores counts
    let n: number;
    switch (this.access) {
      case 1: n = v; break;
      case 2: n = v << 8; break;
      default:
        if (this.writeLsb) {
          this.lowByte = v;
          this.writeLsb = false;
          // Mode 0: writing the first byte stops the count and sets OUT low.
          if (this.mode === 0) this.suspended = true;
          return;
        }
        this.writeLsb = true;
        n = this.lowByte | (v << 8);
    }
    if (this.bcd) n = fromBcd(n);
    if (n === 0) n = this.modulus;
    this.loadCount(n, t);
  }

  private loadCount(n: number, t: number): void {
    this.suspended = false;
    const counting = this.loadTick !== Infinity && this.heldValue < 0;
    if ((this.mode === 2 || this.mode === 3) && counting && t >= this.loadTick) {
      // The new count waits for the end of the current period (data sheet, modes 2 and 3).
      this.settle(t);
      const base = this.loadTick + this.pausedTicks;
      this.nextCount = n;
      this.nextLoadTick = base + (Math.floor((t - base) / this.count) + 1) * this.count;
      return;
    }
    this.count = n;
    this.pausedTicks = 0;
    this.pauseStart = !this.gate && (this.mode === 0 || this.mode === 4) ? t : Infinity;
    if (this.mode === 1 || this.mode === 5) {
      // Hardware-triggered: counting starts at the next GATE rising edge.
      this.awaitingTrigger = true;
      this.loadTick = Infinity;
      return;
    }
    this.loadTick = t + 1;
    if ((this.mode === 2 || this.mode === 3) && !this.gate) {
      this.heldValue = n;
      this.loadTick = Infinity;
    }
  }

  /** A byte read from the counter's port at pulse `t`. */
  readByte(t: number): number {
    if (this.latchedStatus !== null) {
      const s = this.latchedStatus;
      this.latchedStatus = null;
      return s;
    }
    let v: number;
    let lsb: boolean;
    if (this.latchedCount !== null) {
      v = this.latchedCount;
      if (this.access === 3) {
        lsb = this.latchedLsbNext;
        this.latchedLsbNext = !lsb;
        if (!lsb) this.latchedCount = null;
      } else {
        lsb = this.access === 1;
        this.latchedCount = null;
      }
    } else {
      v = this.value(t);
      if (this.access === 3) {
        lsb = this.readLsb;
        this.readLsb = !lsb;
      } else lsb = this.access === 1;
    }
    if (this.bcd) v = toBcd(v % 10000);
    return lsb ? v & 0xff : (v >> 8) & 0xff;
  }

  /** Drive GATE at pulse `t`. */
  setGate(level: boolean, t: number): void {
    if (level === this.gate) return;
    this.gate = level;
    if (this.mode < 0) return;
    switch (this.mode) {
      case 0: case 4:
        if (!level) this.pauseStart = t;
        else if (this.pauseStart !== Infinity) {
          this.pausedTicks += t - this.pauseStart;
          this.pauseStart = Infinity;
        }
        break;
      case 2: case 3:
        if (!level) {
          if (this.loadTick !== Infinity) this.heldValue = this.value(t);
        } else if (this.heldValue >= 0 || this.loadTick !== Infinity) {
          // A rising GATE reloads the count on the next pulse.
          this.heldValue = -1;
          if (this.nextLoadTick !== Infinity) { this.count = this.nextCount; this.nextLoadTick = Infinity; }
          this.loadTick = t + 1;
          this.pausedTicks = 0;
        }
        break;
      default: // 1 and 5: a rising GATE (re)triggers
        if (level && (this.awaitingTrigger || this.loadTick !== Infinity)) {
          this.awaitingTrigger = false;
          this.loadTick = t + 1;
          this.pausedTicks = 0;
        }
    }
  }

}

/** Options for `I8254`. */
export interface I8254Options {
  /** Virtual time in nanoseconds; must never go backwards. */
  clock: () => number;
  /** Receives channel 0's OUT as IRQ0 (a pulse at each rising edge). */
  irq0?: (level: boolean) => void;
  /** Claim port 0x61 (channel 2 gate, speaker, OUT2) as well (default true). */
  speakerPort?: boolean;
  name?: string;
}

/**
 * The PIT. `update()` signals the IRQ0 edges that are due by now; `nextEventTime` says when the
 * next one is (virtual ns, Infinity for none), so the kernel can stop the guest exactly there.
 *
 * @example
 * ```ts
 * import { I8254 } from "./i8254.ts";
 *
 * let now = 0, ticks = 0;
 * const pit = new I8254({ clock: () => now, irq0: (level) => { if (level) ticks++; } });
 * pit.write(0x43, 1, 0x34); // channel 0, LSB then MSB, mode 2
 * pit.write(0x40, 1, 1193 & 0xff);
 * pit.write(0x40, 1, 1193 >> 8); // about 1 kHz
 * now = 10_000_000; // 10 ms of virtual time
 * pit.update();
 * if (ticks !== 1) throw new Error("missed edges are coalesced into one pulse");
 * ```
 */
export class I8254 implements PioDevice {
  readonly name: string;
  readonly ports: readonly PortRange[];
  readonly channels = [new PitChannel(0), new PitChannel(1), new PitChannel(2)] as const;
  /** Port 0x61 bit 1: speaker data enable. */
  speakerData = false;
  /** Virtual time (ns) of the next IRQ0 rising edge, or Infinity. */
  nextEventTime = Infinity;
  private readonly clock: () => number;
  private readonly irq0: (level: boolean) => void;

  constructor(opts: I8254Options) {
    this.name = opts.name ?? "pit";
    this.clock = opts.clock;
    this.irq0 = opts.irq0 ?? (() => {});
    const ports: PortRange[] = [{ first: 0x40, last: 0x43 }];
    if (opts.speakerPort ?? true) ports.push({ first: 0x61, last: 0x61 });
    this.ports = ports;
  }

  saveState(): I8254State {
    return { channels: this.channels.map((c) => c.saveState()), speakerData: this.speakerData, nextEventTime: this.nextEventTime };
  }
  restoreState(s: I8254State): void {
    this.channels.forEach((c, i) => c.restoreState(s.channels[i]));
    this.speakerData = s.speakerData;
    this.nextEventTime = s.nextEventTime;
  }

  /** The current clock pulse. */
  now(): number {
    return pitTicksAt(this.clock());
  }

  /**
   * Signal channel 0's rising edges that happened by now (one IRQ0 pulse, however many edges
   * passed unobserved) and recompute `nextEventTime`.
   * @returns true when IRQ0 was pulsed
   */
  update(): boolean {
    const t = this.now();
    const c = this.channels[0];
    const e = c.nextRisingEdge(c.edgeCursor);
    let fired = false;
    if (e <= t) {
      c.edgeCursor = Math.max(e, c.lastRisingEdge(t));
      this.irq0(true);
      this.irq0(false);
      fired = true;
    }
    this.schedule();
    return fired;
  }

  private schedule(): void {
    const c = this.channels[0];
    const e = c.nextRisingEdge(c.edgeCursor);
    this.nextEventTime = e === Infinity ? Infinity : pitTickTime(e);
  }

  read(port: number, size: 1 | 2 | 4): number {
    const t = this.now();
    switch (port) {
      case 0x40: case 0x41: case 0x42:
        return widenByte(this.channels[port - 0x40].readByte(t), size);
      case 0x43:
        return widenByte(0xff, size); // the control word register cannot be read
      case 0x61: {
        const c2 = this.channels[2];
        // Bit 4 toggles with each DRAM refresh request (every 15.085 µs on a PC).
        const refresh = Math.floor(this.clock() / 15085) & 1;
        return widenByte((c2.gate ? 1 : 0) | (this.speakerData ? 2 : 0) | (refresh << 4) | (c2.out(t) ? 0x20 : 0), size);
      }
    }
    throw portOutsideDevice(this.name, port, 0x40, 0x61);
  }

  write(port: number, _size: 1 | 2 | 4, value: number): void {
    const t = this.now();
    const v = value & 0xff;
    switch (port) {
      case 0x40: case 0x41: case 0x42: {
        const c = this.channels[port - 0x40];
        c.writeByte(v, t);
        if (c.index === 0) c.edgeCursor = Math.max(c.edgeCursor, t);
        break;
      }
      case 0x43: this.control(v, t); break;
      case 0x61:
        this.speakerData = (v & 2) !== 0;
        this.channels[2].setGate((v & 1) !== 0, t);
        break;
      default:
        throw portOutsideDevice(this.name, port, 0x40, 0x61);
    }
    this.schedule();
  }

  private control(v: number, t: number): void {
    const sc = v >> 6, rw = (v >> 4) & 3;
    if (sc === 3) {
      // Read-back: bit 5 = 0 latches counts, bit 4 = 0 latches status, bits 3:1 select 2, 1, 0.
      for (let k = 0; k < 3; k++) {
        if (!(v & (2 << k))) continue;
        const c = this.channels[k];
        if (!(v & 0x10)) c.latchStatus(t);
        if (!(v & 0x20)) c.latchCount(t);
      }
      return;
    }
    const c = this.channels[sc];
    if (rw === 0) {
      c.latchCount(t);
      return;
    }
    c.setMode((v >> 1) & 7, rw, (v & 1) !== 0);
    if (sc === 0) c.edgeCursor = t;
  }
}

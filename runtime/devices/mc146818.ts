/**
 * The Motorola MC146818A real-time clock and its 128 bytes of CMOS RAM, behind the PC's index and
 * data ports 0x70/0x71 (QEMU's hw/rtc/mc146818rtc.c plays this part), on virtual time.
 *
 * From the MC146818A data sheet:
 * - registers 0–9: seconds, seconds alarm, minutes, minutes alarm, hours, hours alarm, day of week
 *   (1 = Sunday), day of month, month, year (00–99); BCD or binary (register B bit 2, DM), 24- or
 *   12-hour (register B bit 1; in 12-hour mode the hour is 1–12 with bit 7 set for PM);
 * - register A: bit 7 UIP (read only), bits 6–4 the divider (010 = the 32.768 kHz time base
 *   running; 11x holds the divider in reset and stops the clock), bits 3–0 RS, the periodic rate:
 *   2^(RS−1) / 32768 s for RS = 3..15, 3.90625 ms and 7.8125 ms for RS = 1, 2, none for 0;
 * - register B: SET (bit 7: the update cycle stops, so the time can be written), PIE, AIE, UIE
 *   (periodic, alarm and update-ended interrupt enables), SQWE, DM, 24/12, DSE;
 * - register C (read only, cleared by a read): IRQF (bit 7) = PF·PIE + AF·AIE + UF·UIE, PF (6),
 *   AF (5: the time matched the alarm; an alarm byte with bits 7–6 set matches any value), UF (4:
 *   an update cycle ended). The IRQ output is asserted while IRQF is set (`irq(true)`), and is
 *   released when register C is read;
 * - register D: VRT (bit 7), the battery is good;
 * - UIP is 1 from 244 µs before each update cycle until it ends. The update is modelled as
 *   instantaneous at each second boundary (as QEMU does), so UIP covers [s − 244 µs, s).
 *
 * The PC/AT CMOS layout on top (what a BIOS leaves there, and what operating systems read): base
 * memory in KiB at 0x15/0x16, extended memory above 1 MiB in KiB at 0x17/0x18 and 0x30/0x31 (at
 * most 0xFFFF), memory above 16 MiB in 64 KiB units at 0x34/0x35, the century (BCD) at 0x32, and
 * the checksum of 0x10–0x2D at 0x2E/0x2F (big-endian). Register 0x0F is the shutdown status.
 *
 * The date runs on virtual nanoseconds from the clock the owner gives (the VM's clock), starting
 * at `start` (Unix seconds, UTC) at virtual time 0. A guest write to a time register sets the
 * clock from then on (as a battery-backed clock keeps what it was set to).
 */
import type { PioDevice, PortRange } from "./device.ts";
import { portOutsideDevice, widenByte } from "./ports.ts";

/** Options for `Mc146818`. */
export interface Mc146818Options {
  /** Virtual time in nanoseconds; must never go backwards. */
  clock: () => number;
  /** The date at virtual time 0, in Unix seconds (UTC); default 2026-01-01T00:00:00Z. */
  start?: number;
  /** Guest RAM in bytes, for the memory-size bytes of the CMOS (default 0: left zero). */
  memSize?: number;
  /** The IRQ8 line: true while IRQF is set. */
  irq?: (level: boolean) => void;
  name?: string;
}

/** 2026-01-01T00:00:00Z, the default start of the clock (a fixed date keeps runs deterministic). */
export const RTC_DEFAULT_START = Date.UTC(2026, 0, 1) / 1000;

const NS = 1_000_000_000;
/** UIP rises this long before each update cycle (244 µs). */
const UIP_NS = 244_000;

// Register numbers.
const SEC = 0, SEC_ALARM = 1, MIN = 2, MIN_ALARM = 3, HOUR = 4, HOUR_ALARM = 5, WDAY = 6, MDAY = 7, MONTH = 8, YEAR = 9;
const REG_A = 0x0a, REG_B = 0x0b, REG_C = 0x0c, REG_D = 0x0d;
const CENTURY = 0x32;
// Register A, B and C bits.
const A_UIP = 0x80;
const B_SET = 0x80, B_PIE = 0x40, B_AIE = 0x20, B_UIE = 0x10, B_DM = 0x04, B_24H = 0x02;
const C_IRQF = 0x80, C_PF = 0x40, C_AF = 0x20, C_UF = 0x10;

function toBcd(v: number): number {
  return ((Math.floor(v / 10) % 10) << 4) | (v % 10);
}
function fromBcd(v: number): number {
  return (v >> 4) * 10 + (v & 0xf);
}

/** The MC146818A at ports 0x70 (index; bit 7 is the NMI mask, kept but not wired) and 0x71 (data). */
export class Mc146818 implements PioDevice {
  readonly name: string;
  readonly ports: readonly PortRange[] = [{ first: 0x70, last: 0x71 }];
  /** Virtual time (ns) of the next interrupt the chip will raise, or Infinity. */
  nextEventTime = Infinity;
  /** The CMOS RAM (registers 0x0E–0x7F; 0x00–0x0D are the clock's and are not read from here). */
  readonly cmos = new Uint8Array(128);
  /** The NMI mask bit written with the last index (port 0x70 bit 7). */
  nmiMasked = false;

  private readonly clock: () => number;
  private readonly irq: (level: boolean) => void;
  private index = 0;
  private regA = 0x26; // divider running (010), RS = 6 (1.024 kHz), as a BIOS leaves it
  private regB = B_24H;
  private regC = 0;
  private alarm = [0, 0, 0]; // seconds, minutes, hours alarm bytes, as written
  /** The date, in Unix seconds, at virtual time `baseNs`. */
  private baseSeconds: number;
  private baseNs = 0;
  /** While SET is 1 (or the divider is held), the clock stands still at `baseSeconds`. */
  private stopped = false;
  /** Flags have been accounted up to this virtual time. */
  private checkedNs = 0;
  private irqLevel = false;

  constructor(opts: Mc146818Options) {
    this.name = opts.name ?? "rtc";
    this.clock = opts.clock;
    this.irq = opts.irq ?? (() => {});
    const start = opts.start ?? RTC_DEFAULT_START;
    if (!Number.isFinite(start)) throw new RangeError(`Invalid RTC start: ${start} (expected Unix seconds)`);
    this.baseSeconds = Math.floor(start);
    this.baseNs = this.clock();
    this.checkedNs = this.baseNs;
    const year = new Date(this.baseSeconds * 1000).getUTCFullYear();
    this.cmos[CENTURY] = toBcd(Math.floor(year / 100));
    this.cmos[REG_D] = 0x80;
    if (opts.memSize) this.setMemorySize(opts.memSize);
  }

  /** Fill the PC/AT memory-size bytes and the checksum for `bytes` of RAM. */
  setMemorySize(bytes: number): void {
    const c = this.cmos;
    const base = Math.min(640, Math.floor(bytes / 1024));
    c[0x15] = base & 0xff; c[0x16] = base >> 8;
    const ext = Math.min(0xffff, Math.max(0, Math.floor((bytes - 0x100000) / 1024)));
    c[0x17] = c[0x30] = ext & 0xff; c[0x18] = c[0x31] = ext >> 8;
    const above16 = Math.min(0xffff, Math.max(0, Math.floor((bytes - 0x1000000) / 0x10000)));
    c[0x34] = above16 & 0xff; c[0x35] = above16 >> 8;
    let sum = 0;
    for (let r = 0x10; r <= 0x2d; r++) sum += c[r];
    c[0x2e] = (sum >> 8) & 0xff; c[0x2f] = sum & 0xff;
  }

  /** The clock's date now, in Unix seconds (whole seconds; the chip has no finer resolution). */
  seconds(): number {
    return this.secondsAt(this.clock());
  }

  private secondsAt(ns: number): number {
    if (this.stopped) return this.baseSeconds;
    return this.baseSeconds + Math.floor((ns - this.baseNs) / NS);
  }
  /** Virtual time of the first update (second boundary) after `ns`. */
  private nextUpdateAfter(ns: number): number {
    if (this.stopped) return Infinity;
    const k = Math.floor((ns - this.baseNs) / NS) + 1;
    return this.baseNs + k * NS;
  }
  /** The periodic interrupt's period in ns (Infinity when RS = 0 or the divider is not running). */
  private periodNs(): number {
    const rs = this.regA & 0x0f;
    if (rs === 0 || ((this.regA >> 4) & 7) !== 2) return Infinity;
    const ticks = rs <= 2 ? 1 << (rs + 6) : 1 << (rs - 1);
    return (ticks * NS) / 32768;
  }
  /** Virtual time of the first periodic edge after `ns` (edges at whole multiples of the period since time 0). */
  private nextPeriodAfter(ns: number): number {
    const p = this.periodNs();
    if (p === Infinity) return Infinity;
    return (Math.floor(ns / p) + 1) * p;
  }

  private alarmMatches(sec: number): boolean {
    const d = new Date(sec * 1000);
    const fields = [d.getUTCSeconds(), d.getUTCMinutes(), d.getUTCHours()];
    for (let i = 0; i < 3; i++) {
      const a = this.alarm[i];
      if ((a & 0xc0) === 0xc0) continue; // "don't care"
      if (this.encode(i === 2 ? HOUR : i * 2, fields[i]) !== a) return false;
    }
    return true;
  }
  /** The virtual time of the first alarm match after `ns` (within a day), or Infinity. */
  private nextAlarmAfter(ns: number): number {
    if (this.stopped) return Infinity;
    let t = this.nextUpdateAfter(ns);
    let sec = this.secondsAt(t);
    for (let i = 0; i < 86400; i++, t += NS, sec++) if (this.alarmMatches(sec)) return t;
    return Infinity;
  }

  /** Account the flags of everything that happened up to now; raise IRQ8 when IRQF rises. */
  private account(now: number): void {
    const from = this.checkedNs;
    if (now <= from) return;
    let c = this.regC;
    if (this.nextPeriodAfter(from) <= now) c |= C_PF;
    if (this.nextUpdateAfter(from) <= now) {
      c |= C_UF;
      if (!(c & C_AF) && this.nextAlarmAfter(from) <= now) c |= C_AF;
    }
    this.checkedNs = now;
    this.setFlags(c);
  }
  private setFlags(c: number): void {
    const b = this.regB;
    const irqf = ((c & C_PF) && (b & B_PIE)) || ((c & C_AF) && (b & B_AIE)) || ((c & C_UF) && (b & B_UIE));
    this.regC = irqf ? c | C_IRQF : c & ~C_IRQF;
    const level = (this.regC & C_IRQF) !== 0;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq(level);
    }
  }
  /** When the next interrupt can rise: the first enabled event, unless IRQF is already set. */
  private schedule(): void {
    if (this.regC & C_IRQF) {
      this.nextEventTime = Infinity;
      return;
    }
    const now = this.checkedNs, b = this.regB;
    let t = Infinity;
    if (b & B_PIE) t = Math.min(t, this.nextPeriodAfter(now));
    if (b & B_UIE) t = Math.min(t, this.nextUpdateAfter(now));
    if (b & B_AIE) t = Math.min(t, this.nextAlarmAfter(now));
    this.nextEventTime = t === Infinity ? Infinity : Math.ceil(t);
  }

  /** The timer callback: account what is due by now (raising IRQ8 when it is) and reschedule. */
  update(): void {
    this.account(this.clock());
    this.schedule();
  }

  /** A time field in the register encoding of the moment (BCD or binary; 12- or 24-hour). */
  private encode(reg: number, v: number): number {
    const binary = (this.regB & B_DM) !== 0;
    if (reg === HOUR && !(this.regB & B_24H)) {
      const pm = v >= 12;
      const h = v % 12 === 0 ? 12 : v % 12;
      return (binary ? h : toBcd(h)) | (pm ? 0x80 : 0);
    }
    return binary ? v : toBcd(v);
  }
  private decode(reg: number, raw: number): number {
    const binary = (this.regB & B_DM) !== 0;
    if (reg === HOUR && !(this.regB & B_24H)) {
      const h = binary ? raw & 0x7f : fromBcd(raw & 0x7f);
      return (h % 12) + (raw & 0x80 ? 12 : 0);
    }
    return binary ? raw : fromBcd(raw);
  }

  private readTime(reg: number): number {
    const d = new Date(this.seconds() * 1000);
    switch (reg) {
      case SEC: return this.encode(reg, d.getUTCSeconds());
      case MIN: return this.encode(reg, d.getUTCMinutes());
      case HOUR: return this.encode(reg, d.getUTCHours());
      case WDAY: return this.encode(reg, d.getUTCDay() + 1);
      case MDAY: return this.encode(reg, d.getUTCDate());
      case MONTH: return this.encode(reg, d.getUTCMonth() + 1);
      default: return this.encode(reg, d.getUTCFullYear() % 100);
    }
  }

  /** A guest write to a time register: the clock continues from the new date, in the same phase of its second. */
  private writeTime(reg: number, raw: number): void {
    const now = this.clock();
    const cur = this.secondsAt(now);
    const d = new Date(cur * 1000);
    let [y, mo, day, h, mi, s] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()];
    const v = this.decode(reg, raw);
    switch (reg) {
      case SEC: s = v; break;
      case MIN: mi = v; break;
      case HOUR: h = v; break;
      case WDAY: return; // derived from the date here; a written weekday is not kept
      case MDAY: day = v; break;
      case MONTH: mo = v - 1; break;
      default: y = fromBcd(this.cmos[CENTURY]) * 100 + v; break;
    }
    const secs = Date.UTC(y, mo, day, h, mi, s) / 1000;
    if (!Number.isFinite(secs)) return;
    if (!this.stopped) this.baseNs = now - ((now - this.baseNs) % NS);
    this.baseSeconds = secs;
  }

  read(port: number, size: 1 | 2 | 4): number {
    if (port === 0x70) return widenByte(0xff, size); // the index register is write-only
    if (port !== 0x71) throw portOutsideDevice(this.name, port, 0x70, 0x71);
    return widenByte(this.readRegister(this.index), size);
  }

  write(port: number, _size: 1 | 2 | 4, value: number): void {
    const v = value & 0xff;
    if (port === 0x70) {
      this.index = v & 0x7f;
      this.nmiMasked = (v & 0x80) !== 0;
      return;
    }
    if (port !== 0x71) throw portOutsideDevice(this.name, port, 0x70, 0x71);
    this.writeRegister(this.index, v);
  }

  private readRegister(r: number): number {
    const now = this.clock();
    switch (r) {
      case SEC: case MIN: case HOUR: case WDAY: case MDAY: case MONTH: case YEAR:
        return this.readTime(r);
      case SEC_ALARM: return this.alarm[0];
      case MIN_ALARM: return this.alarm[1];
      case HOUR_ALARM: return this.alarm[2];
      case REG_A: {
        const next = this.nextUpdateAfter(now);
        const uip = !(this.regB & B_SET) && next - now <= UIP_NS;
        return this.regA | (uip ? A_UIP : 0);
      }
      case REG_B: return this.regB;
      case REG_C: {
        this.account(now);
        const c = this.regC;
        this.setFlags(0);
        this.schedule();
        return c;
      }
      case REG_D: return 0x80;
      default: return this.cmos[r];
    }
  }

  private writeRegister(r: number, v: number): void {
    const now = this.clock();
    switch (r) {
      case SEC: case MIN: case HOUR: case WDAY: case MDAY: case MONTH: case YEAR:
        this.writeTime(r, v);
        break;
      case SEC_ALARM: this.alarm[0] = v; break;
      case MIN_ALARM: this.alarm[1] = v; break;
      case HOUR_ALARM: this.alarm[2] = v; break;
      case REG_A: {
        this.account(now);
        const wasRunning = !this.stopped;
        this.regA = v & 0x7f;
        this.setStopped(wasRunning, now);
        break;
      }
      case REG_B: {
        this.account(now);
        const wasRunning = !this.stopped;
        // Setting SET clears UIE (data sheet: "UIE is cleared when SET is written to 1").
        this.regB = v & B_SET ? v & ~B_UIE : v;
        this.setStopped(wasRunning, now);
        this.setFlags(this.regC);
        break;
      }
      case REG_C: case REG_D: return; // read only
      default: this.cmos[r] = v; return;
    }
    this.schedule();
  }

  /** SET or a held divider stops the clock; clearing them restarts it, with a new second starting now. */
  private setStopped(wasRunning: boolean, now: number): void {
    const stop = (this.regB & B_SET) !== 0 || ((this.regA >> 4) & 7) !== 2;
    if (stop && wasRunning) {
      this.baseSeconds = this.secondsAt(now);
      this.stopped = true;
    } else if (!stop && !wasRunning) {
      this.stopped = false;
      this.baseNs = now;
    }
  }
}

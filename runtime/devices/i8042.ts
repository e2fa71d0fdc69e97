/**
 * The PC's 8042 keyboard controller at ports 0x60 (data) and 0x64 (status and command), with a
 * keyboard that answers the basic commands, as far as an operating system needs it to boot, find
 * the controller and reset the machine through it (QEMU's hw/input/pckbd.c plays this part).
 *
 * From the IBM PC/AT technical reference and the 8042 controller's command set:
 * - status (read 0x64): bit 0 OBF (a byte waits at 0x60), bit 1 IBF (always 0: commands complete
 *   at once), bit 2 SYS (the system flag, set as after a passed power-on self-test), bit 3 A2 (the
 *   last write was a command), bit 4 the keyboard is not inhibited, bit 5 the byte waiting comes
 *   from the auxiliary (mouse) port;
 * - commands (write 0x64): 0x20 read the command byte, 0x60 write it (next byte at 0x60), 0xA7/0xA8
 *   disable/enable the aux port, 0xA9 test the aux port, 0xAA self-test (0x55), 0xAB test the
 *   keyboard port (0x00), 0xAD/0xAE disable/enable the keyboard, 0xC0 read the input port, 0xD0 read
 *   the output port, 0xD1 write the output port (bit 0: system reset, active low; bit 1: A20 gate),
 *   0xD2/0xD3 write the keyboard/aux output buffer, 0xD4 write to the aux device (none is attached:
 *   the byte is dropped), 0xDD/0xDF A20 off/on, 0xF0–0xFF pulse output-port bits 0–3 low for those
 *   of bits 0–3 that are 0 (0xFE pulses the reset line);
 * - the command byte: bit 0 keyboard interrupt (IRQ1 while a keyboard byte waits), bit 1 aux
 *   interrupt (IRQ12), bit 2 system flag, bit 4 keyboard disabled, bit 5 aux disabled, bit 6
 *   scan-code translation;
 * - a data byte with no command pending goes to the keyboard, which acknowledges it (0xFA), answers
 *   0xFF (reset) with 0xFA 0xAA, 0xF2 (identify) with 0xFA 0xAB 0x83 and 0xEE (echo) with 0xEE.
 *
 * A reset (the 0xFE pulse, or bit 0 written as 0 through 0xD1) calls `onReset`; the machine ends its
 * run there with a `reset` exit, as `qemu -no-reboot` does. The A20 gate is kept and reads back (the
 * output port, status of 0xD0) but guest memory is not aliased when it is off.
 */
import type { PioDevice, PortRange } from "./device.ts";
import { portOutsideDevice, widenByte } from "./ports.ts";

/** Options for `I8042`. */
export interface I8042Options {
  /** The reset line was pulsed (or driven low); `source` says how, for the run's report. */
  onReset?: (source: string) => void;
  /** IRQ1 (keyboard byte waiting, command byte bit 0). */
  irq1?: (level: boolean) => void;
  /** IRQ12 (aux byte waiting, command byte bit 1). */
  irq12?: (level: boolean) => void;
  name?: string;
}

const ST_OBF = 0x01, ST_SYS = 0x04, ST_CMD = 0x08, ST_UNLOCKED = 0x10, ST_AUX = 0x20;
const CB_KBD_INT = 0x01, CB_AUX_INT = 0x02, CB_SYS = 0x04, CB_KBD_OFF = 0x10, CB_AUX_OFF = 0x20, CB_XLATE = 0x40;
const OUT_RESET = 0x01, OUT_A20 = 0x02;

/** The 8042 at 0x60 and 0x64. */
export class I8042 implements PioDevice {
  readonly name: string;
  readonly ports: readonly PortRange[] = [{ first: 0x60, last: 0x60 }, { first: 0x64, last: 0x64 }];
  /** The command byte (0x20 reads it, 0x60 writes it). */
  commandByte = CB_KBD_INT | CB_SYS | CB_XLATE;
  /** The output port: bit 0 system reset (1 = running), bit 1 A20 gate. */
  outputPort = OUT_RESET | OUT_A20;
  private readonly queue: { byte: number; aux: boolean }[] = [];
  private pending = 0; // the command waiting for its data byte, or 0
  private lastWasCommand = false;
  private irq1Level = false;
  private irq12Level = false;
  private readonly onReset: (source: string) => void;
  private readonly irq1: (level: boolean) => void;
  private readonly irq12: (level: boolean) => void;

  constructor(opts: I8042Options = {}) {
    this.name = opts.name ?? "i8042";
    this.onReset = opts.onReset ?? (() => {});
    this.irq1 = opts.irq1 ?? (() => {});
    this.irq12 = opts.irq12 ?? (() => {});
  }

  /** Whether the A20 gate is open (output port bit 1). */
  get a20(): boolean {
    return (this.outputPort & OUT_A20) !== 0;
  }

  /** The status register. */
  status(): number {
    const head = this.queue[0];
    return (head ? ST_OBF | (head.aux ? ST_AUX : 0) : 0) | (this.commandByte & CB_SYS ? ST_SYS : 0) |
      (this.lastWasCommand ? ST_CMD : 0) | ST_UNLOCKED;
  }

  read(port: number, size: 1 | 2 | 4): number {
    if (port === 0x64) return widenByte(this.status(), size);
    if (port !== 0x60) throw portOutsideDevice(this.name, port, 0x60, 0x64);
    const head = this.queue.shift();
    this.updateIrq();
    return widenByte(head ? head.byte : 0, size);
  }

  write(port: number, _size: 1 | 2 | 4, value: number): void {
    const v = value & 0xff;
    if (port === 0x64) {
      this.lastWasCommand = true;
      this.command(v);
    } else if (port === 0x60) {
      this.lastWasCommand = false;
      this.data(v);
    } else {
      throw portOutsideDevice(this.name, port, 0x60, 0x64);
    }
    this.updateIrq();
  }

  private push(byte: number, aux = false): void {
    this.queue.push({ byte, aux });
  }

  private command(c: number): void {
    this.pending = 0;
    switch (c) {
      case 0x20: this.push(this.commandByte); return;
      case 0x60: case 0xd1: case 0xd2: case 0xd3: case 0xd4: this.pending = c; return;
      case 0xa7: this.commandByte |= CB_AUX_OFF; return;
      case 0xa8: this.commandByte &= ~CB_AUX_OFF; return;
      case 0xa9: this.push(0x00); return; // aux interface test: no error
      case 0xaa: // controller self-test: passed; the controller comes back with the system flag set
        this.commandByte |= CB_SYS;
        this.push(0x55);
        return;
      case 0xab: this.push(0x00); return; // keyboard interface test: no error
      case 0xad: this.commandByte |= CB_KBD_OFF; return;
      case 0xae: this.commandByte &= ~CB_KBD_OFF; return;
      case 0xc0: this.push(0x80); return; // input port: keyboard not inhibited
      case 0xd0: this.push(this.outputPort | (this.queue.length ? 0x10 : 0)); return;
      case 0xdd: this.outputPort &= ~OUT_A20; return;
      case 0xdf: this.outputPort |= OUT_A20; return;
    }
    if (c >= 0xf0) {
      // Pulse the output-port lines whose bits are 0 in the command's low nibble; line 0 is reset.
      if (!(c & 1)) this.onReset(`i8042 command 0x${c.toString(16)} (pulse reset line)`);
      return;
    }
    // Other commands (vendor-specific, password, diagnostics) are accepted and do nothing.
  }

  private data(v: number): void {
    const cmd = this.pending;
    this.pending = 0;
    switch (cmd) {
      case 0x60: this.commandByte = v; return;
      case 0xd1:
        this.outputPort = v;
        if (!(v & OUT_RESET)) this.onReset("i8042 output port write with bit 0 clear");
        return;
      case 0xd2: this.push(v); return;
      case 0xd3: this.push(v, true); return;
      case 0xd4: return; // no aux device attached
    }
    this.keyboard(v);
  }

  /** A byte for the keyboard itself. */
  private keyboard(v: number): void {
    switch (v) {
      case 0xff: this.push(0xfa); this.push(0xaa); return; // reset, self-test passed
      case 0xf2: this.push(0xfa); this.push(0xab); this.push(0x83); return; // identify: MF2 keyboard
      case 0xee: this.push(0xee); return; // echo
      default: this.push(0xfa); return; // acknowledge
    }
  }

  private updateIrq(): void {
    const head = this.queue[0];
    const k = head !== undefined && !head.aux && (this.commandByte & CB_KBD_INT) !== 0;
    const a = head !== undefined && head.aux && (this.commandByte & CB_AUX_INT) !== 0;
    if (k !== this.irq1Level) { this.irq1Level = k; this.irq1(k); }
    if (a !== this.irq12Level) { this.irq12Level = a; this.irq12(a); }
  }
}

/**
 * The PIIX reset control register at port 0xCF9: bit 1 chooses a hard reset, and bit 2 going from 0
 * to 1 resets the system (Intel 82371AB data sheet, RC register). `onReset` ends the run as for the 8042.
 */
export class ResetControl implements PioDevice {
  readonly name: string;
  readonly ports: readonly PortRange[] = [{ first: 0xcf9, last: 0xcf9 }];
  value = 0;
  private readonly onReset: (source: string) => void;

  constructor(opts: { onReset?: (source: string) => void; name?: string } = {}) {
    this.name = opts.name ?? "reset-control";
    this.onReset = opts.onReset ?? (() => {});
  }

  read(port: number, size: 1 | 2 | 4): number {
    if (port !== 0xcf9) throw portOutsideDevice(this.name, port, 0xcf9, 0xcf9);
    return widenByte(this.value, size);
  }

  write(port: number, _size: 1 | 2 | 4, value: number): void {
    if (port !== 0xcf9) throw portOutsideDevice(this.name, port, 0xcf9, 0xcf9);
    const v = value & 0xff;
    const rise = (v & 4) !== 0 && (this.value & 4) === 0;
    this.value = v & 0x0a; // bit 2 is a trigger, not kept
    if (rise) this.onReset(`port 0xcf9 write 0x${v.toString(16)} (${v & 2 ? "hard" : "soft"} reset)`);
  }
}

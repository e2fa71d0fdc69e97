/**
 * A 16550A-compatible UART (the PC's COM port), reduced to what a virtual console needs: bytes are
 * transmitted instantly, received bytes come from the host through `feed()`, and there is no line
 * timing. Register layout per the 16550A datasheet:
 *
 * | offset | read                    | write                  |
 * |--------|-------------------------|------------------------|
 * | 0      | RBR (DLAB=0) / DLL      | THR (DLAB=0) / DLL     |
 * | 1      | IER (DLAB=0) / DLM      | IER (DLAB=0) / DLM     |
 * | 2      | IIR                     | FCR                    |
 * | 3      | LCR (bit 7 = DLAB)      | LCR                    |
 * | 4      | MCR (bit 4 = loopback)  | MCR                    |
 * | 5      | LSR                     | ignored                |
 * | 6      | MSR                     | ignored                |
 * | 7      | SCR                     | SCR                    |
 */
import type { ByteSink, PioDevice, PortRange } from "./device.ts";
import { checkBase, portOutsideDevice, widenByte } from "./ports.ts";

/** Options for `Uart16550`. */
export interface Uart16550Options {
  /** The first of the 8 ports, 0x3F8 (COM1) by default. */
  base?: number;
  /** The device name, "serial" by default. */
  name?: string;
  /** Called with the new level whenever `interruptPending()` changes (for an interrupt controller). */
  onInterrupt?: (pending: boolean) => void;
  /**
   * Wire the interrupt as a PC does: the level `onInterrupt` sees is the chip's INTR AND MCR bit 3
   * (OUT2), which gates the UART's interrupt onto the ISA bus (default false: INTR itself).
   */
  out2Gate?: boolean;
}

// IER bits.
const IER_RDA = 0x01; // received data available
const IER_THRE = 0x02; // transmitter holding register empty
// IIR values (bit 0 clear = interrupt pending).
const IIR_NONE = 0x01;
const IIR_THRE = 0x02;
const IIR_RDA = 0x04;
const IIR_FIFO = 0xc0;
// FCR bits.
const FCR_ENABLE = 0x01;
const FCR_CLEAR_RX = 0x02;
// LCR/MCR/LSR bits.
const LCR_DLAB = 0x80;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;
const LSR_DR = 0x01;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;
// MSR with the lines of a connected terminal asserted: DCD, DSR, CTS.
const MSR_CONNECTED = 0xb0;

/**
 * 16550A UART at 8 consecutive ports (0x3F8-0x3FF by default).
 *
 * - Transmit: a write to THR (DLAB=0) sends the byte to the sink at once, so LSR.THRE and LSR.TEMT
 *   always read 1. In loopback mode (MCR bit 4) the byte goes to the receive FIFO instead.
 * - Receive: `feed()` appends to an unbounded receive FIFO (no overrun, whatever FCR says); LSR.DR
 *   is 1 while it is non-empty; reading RBR pops a byte, or returns 0 when it is empty. FCR bit 1
 *   empties it.
 * - Interrupts (IIR, `interruptPending()`): "received data available" (0x04) while IER bit 0 is set
 *   and the FIFO holds data, else "THR empty" (0x02) while IER bit 1 is set and that condition is
 *   pending. As on the 16550, THR-empty becomes pending when IER bit 1 is set and after each THR
 *   write, and is cleared by reading IIR when IIR reports it. No line-status or modem-status
 *   interrupts, no receive trigger levels or character timeouts. IIR bits 6-7 are set while FCR
 *   bit 0 (FIFO enable) is set. The level is the chip's INTR pin, or with `out2Gate` (a PC's wiring)
 *   INTR while MCR bit 3 (OUT2) is set.
 * - MSR reads 0xB0 (DCD, DSR, CTS asserted); in loopback mode bits 4-7 reflect MCR bits 1, 0, 2, 3
 *   as the datasheet specifies. The delta bits are always 0.
 * - The divisor latch (DLL/DLM with LCR.DLAB=1) is stored and readable; it does not affect timing.
 *   It starts at 1 (115200 baud).
 * - 2- and 4-byte accesses act on the register at the port only (a 2-byte IN at the base pops one
 *   byte and does not read IER); the upper bytes of an IN read as 0xFF and those of an OUT are
 *   ignored.
 */
export class Uart16550 implements PioDevice {
  readonly name: string;
  readonly ports: readonly PortRange[];
  /** The first port. */
  readonly base: number;
  readonly #sink: ByteSink;
  readonly #onInterrupt: ((pending: boolean) => void) | undefined;
  readonly #out2Gate: boolean;

  #rx: number[] = [];
  #rxHead = 0;
  #ier = 0;
  #lcr = 0;
  #mcr = 0;
  #scr = 0;
  #fifoEnabled = false;
  #divisor = 1;
  #thrPending = false;
  #irq = false;
  #line = false;

  /** @throws DeviceError("range") when `options.base` leaves no room for 8 ports below 0x10000 */
  constructor(sink: ByteSink, options: Uart16550Options = {}) {
    this.name = options.name ?? "serial";
    this.base = options.base ?? 0x3f8;
    checkBase(this.name, this.base, 8);
    this.ports = [{ first: this.base, last: this.base + 7 }];
    this.#sink = sink;
    this.#onInterrupt = options.onInterrupt;
    this.#out2Gate = options.out2Gate ?? false;
  }

  /** Appends bytes to the receive FIFO; a string is encoded as UTF-8. */
  feed(bytes: Uint8Array | string): void {
    const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
    for (let i = 0; i < data.length; i++) this.#rx.push(data[i]);
    this.#update();
  }

  /** The interrupt enable register (bit 0: received data, bit 1: THR empty). */
  get interruptEnable(): number {
    return this.#ier;
  }

  /** How many received bytes wait in the FIFO. */
  get pendingInput(): number {
    return this.#rx.length - this.#rxHead;
  }

  /** The divisor latch value (DLM << 8 | DLL); the line rate is 115200 / divisor. */
  get divisor(): number {
    return this.#divisor;
  }

  /** True while the UART requests an interrupt (IIR bit 0 reads 0). */
  interruptPending(): boolean {
    return this.#irq;
  }

  read(port: number, size: 1 | 2 | 4): number {
    const offset = port - this.base;
    if (offset < 0 || offset > 7) throw portOutsideDevice(this.name, port, this.base, this.base + 7);
    return widenByte(this.#readRegister(offset), size);
  }

  write(port: number, _size: 1 | 2 | 4, value: number): void {
    const offset = port - this.base;
    if (offset < 0 || offset > 7) throw portOutsideDevice(this.name, port, this.base, this.base + 7);
    this.#writeRegister(offset, value & 0xff);
  }

  #readRegister(offset: number): number {
    switch (offset) {
      case 0:
        if (this.#lcr & LCR_DLAB) return this.#divisor & 0xff;
        return this.#popReceived();
      case 1:
        if (this.#lcr & LCR_DLAB) return this.#divisor >> 8;
        return this.#ier;
      case 2: {
        const iir = this.#iir();
        if ((iir & 0x0f) === IIR_THRE) {
          this.#thrPending = false;
          this.#update();
        }
        return iir;
      }
      case 3:
        return this.#lcr;
      case 4:
        return this.#mcr;
      case 5:
        return (this.pendingInput > 0 ? LSR_DR : 0) | LSR_THRE | LSR_TEMT;
      case 6:
        return this.#msr();
      default:
        return this.#scr;
    }
  }

  #writeRegister(offset: number, value: number): void {
    switch (offset) {
      case 0:
        if (this.#lcr & LCR_DLAB) {
          this.#divisor = (this.#divisor & 0xff00) | value;
        } else {
          this.#transmit(value);
        }
        return;
      case 1:
        if (this.#lcr & LCR_DLAB) {
          this.#divisor = (value << 8) | (this.#divisor & 0xff);
        } else {
          const enabling = (value & IER_THRE) !== 0 && (this.#ier & IER_THRE) === 0;
          this.#ier = value & 0x0f;
          // The holding register is always empty, so enabling its interrupt raises it at once.
          if (enabling) this.#thrPending = true;
          this.#update();
        }
        return;
      case 2:
        this.#fifoEnabled = (value & FCR_ENABLE) !== 0;
        if (value & FCR_CLEAR_RX) {
          this.#rx = [];
          this.#rxHead = 0;
        }
        this.#update();
        return;
      case 3:
        this.#lcr = value;
        return;
      case 4:
        this.#mcr = value & 0x1f;
        if (this.#out2Gate) this.#update();
        return;
      case 7:
        this.#scr = value;
        return;
      default:
        // LSR and MSR writes (factory test on real parts) are ignored.
        return;
    }
  }

  #transmit(byte: number): void {
    if (this.#mcr & MCR_LOOP) {
      this.#rx.push(byte);
    } else {
      this.#sink(byte);
    }
    // Transmission is instantaneous: the holding register is empty again.
    this.#thrPending = true;
    this.#update();
  }

  #popReceived(): number {
    if (this.#rxHead >= this.#rx.length) return 0;
    const byte = this.#rx[this.#rxHead++];
    if (this.#rxHead === this.#rx.length) {
      this.#rx = [];
      this.#rxHead = 0;
    } else if (this.#rxHead >= 4096 && this.#rxHead * 2 >= this.#rx.length) {
      this.#rx = this.#rx.slice(this.#rxHead);
      this.#rxHead = 0;
    }
    this.#update();
    return byte;
  }

  #iir(): number {
    let id = IIR_NONE;
    if ((this.#ier & IER_RDA) && this.pendingInput > 0) {
      id = IIR_RDA;
    } else if ((this.#ier & IER_THRE) && this.#thrPending) {
      id = IIR_THRE;
    }
    return this.#fifoEnabled ? id | IIR_FIFO : id;
  }

  #msr(): number {
    if (!(this.#mcr & MCR_LOOP)) return MSR_CONNECTED;
    const mcr = this.#mcr;
    return ((mcr & 0x02) << 3) | // RTS -> CTS (bit 4)
      ((mcr & 0x01) << 5) | // DTR -> DSR (bit 5)
      ((mcr & 0x04) << 4) | // OUT1 -> RI (bit 6)
      ((mcr & 0x08) << 4); // OUT2 -> DCD (bit 7)
  }

  /** Recomputes the interrupt level and reports a change of the line (INTR, gated by OUT2 when wired so). */
  #update(): void {
    const pending = (this.#iir() & IIR_NONE) === 0;
    this.#irq = pending;
    const line = pending && (!this.#out2Gate || (this.#mcr & MCR_OUT2) !== 0);
    if (line !== this.#line) {
      this.#line = line;
      this.#onInterrupt?.(line);
    }
  }
}

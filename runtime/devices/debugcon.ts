/**
 * The Bochs/QEMU debug console: a write-only character port, 0xE9 by default.
 */
import type { ByteSink, PioDevice, PortRange } from "./device.ts";
import { checkBase, portOutsideDevice, widenByte } from "./ports.ts";

/** Options for `DebugCon`. */
export interface DebugConOptions {
  /** The port, 0xE9 by default. */
  port?: number;
  /** The device name, "debugcon" by default. */
  name?: string;
  /** The value an IN returns, 0xE9 by default (the Bochs/QEMU detection convention). */
  readback?: number;
}

/**
 * Debug console port. An OUT sends the low byte of the value to the sink (the upper bytes of a 2- or
 * 4-byte OUT are ignored). An IN returns 0xE9, so guests can detect the port by reading it back;
 * the upper bytes of a 2- or 4-byte IN read as 0xFF.
 */
export class DebugCon implements PioDevice {
  readonly name: string;
  readonly ports: readonly PortRange[];
  /** The port the console answers. */
  readonly port: number;
  readonly #sink: ByteSink;
  readonly #readback: number;

  /** @throws DeviceError("range") when `options.port` is not in 0..0xffff */
  constructor(sink: ByteSink, options: DebugConOptions = {}) {
    this.name = options.name ?? "debugcon";
    this.port = options.port ?? 0xe9;
    checkBase(this.name, this.port, 1);
    this.ports = [{ first: this.port, last: this.port }];
    this.#sink = sink;
    this.#readback = (options.readback ?? 0xe9) & 0xff;
  }

  read(port: number, size: 1 | 2 | 4): number {
    if (port !== this.port) throw portOutsideDevice(this.name, port, this.port, this.port);
    return widenByte(this.#readback, size);
  }

  write(port: number, _size: 1 | 2 | 4, value: number): void {
    if (port !== this.port) throw portOutsideDevice(this.name, port, this.port, this.port);
    this.#sink(value & 0xff);
  }
}

/**
 * The POST (power-on self-test) diagnostic port, 0x80 by default. Firmware writes progress codes
 * there; on real boards a POST card shows them. Linux also writes to it as an I/O delay
 * (`outb %al, $0x80`), so the write count of a Linux guest grows steadily.
 */
import type { PioDevice, PortRange } from "./device.ts";
import { checkBase, portOutsideDevice, widenByte } from "./ports.ts";

/** Options for `PostCodePort`. */
export interface PostCodePortOptions {
  /** The port, 0x80 by default. */
  port?: number;
  /** The device name, "post" by default. */
  name?: string;
  /** Called with each code written, after it is recorded. */
  onCode?: (code: number) => void;
}

/**
 * Records POST codes. An OUT stores the low byte as `lastCode` (the upper bytes of a 2- or 4-byte
 * OUT are ignored), increments `count` and calls `onCode`. An IN returns the last code written, as
 * many chipsets do (they latch the byte), or 0xFF before the first write; the upper bytes of a 2- or
 * 4-byte IN read as 0xFF.
 */
export class PostCodePort implements PioDevice {
  readonly name: string;
  readonly ports: readonly PortRange[];
  /** The port the device answers. */
  readonly port: number;
  #lastCode: number | undefined = undefined;
  #count = 0;
  readonly #onCode: ((code: number) => void) | undefined;

  /** @throws DeviceError("range") when `options.port` is not in 0..0xffff */
  constructor(options: PostCodePortOptions = {}) {
    this.name = options.name ?? "post";
    this.port = options.port ?? 0x80;
    checkBase(this.name, this.port, 1);
    this.ports = [{ first: this.port, last: this.port }];
    this.#onCode = options.onCode;
  }

  /** The last code written, or undefined before the first write. */
  get lastCode(): number | undefined {
    return this.#lastCode;
  }

  /** How many writes the port has received. */
  get count(): number {
    return this.#count;
  }

  read(port: number, size: 1 | 2 | 4): number {
    if (port !== this.port) throw portOutsideDevice(this.name, port, this.port, this.port);
    return widenByte(this.#lastCode ?? 0xff, size);
  }

  write(port: number, _size: 1 | 2 | 4, value: number): void {
    if (port !== this.port) throw portOutsideDevice(this.name, port, this.port, this.port);
    const code = value & 0xff;
    this.#lastCode = code;
    this.#count++;
    this.#onCode?.(code);
  }
}

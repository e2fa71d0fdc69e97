/**
 * Small helpers shared by the port-I/O devices: port formatting for messages, range validation and
 * the multi-byte access convention.
 */
import { DeviceError } from "./device.ts";

/** Highest I/O port number. */
export const MAX_PORT = 0xffff;

/** Formats a port as `0x3f8`. */
export function hexPort(port: number): string {
  return "0x" + port.toString(16);
}

/** Formats an inclusive port range as `port 0xe9` or `ports 0x3f8-0x3ff`. */
export function describePorts(first: number, last: number): string {
  return first === last ? `port ${hexPort(first)}` : `ports ${hexPort(first)}-${hexPort(last)}`;
}

/** True when `port` is an integer in 0..0xffff. */
export function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= MAX_PORT;
}

/**
 * Checks that a device's base port leaves room for `width` consecutive ports.
 * @throws DeviceError("range") naming the device and the base
 */
export function checkBase(name: string, base: number, width: number): void {
  if (!Number.isInteger(base) || base < 0 || base + width - 1 > MAX_PORT) {
    const last = MAX_PORT - width + 1;
    throw new DeviceError(
      "range",
      `Invalid ${width === 1 ? "port" : "base port"} for device "${name}": ${
        String(base)
      } (expected an integer in 0x0..${hexPort(last)})`,
    );
  }
}

/**
 * The devices' convention for 2- and 4-byte accesses: they act on the register at `port` only, and
 * the upper bytes of an IN read as 0xFF (as an unclaimed, floating bus does).
 * @returns `byte` widened to `size` bytes with the upper bytes set
 */
export function widenByte(byte: number, size: number): number {
  if (size === 1) return byte;
  if (size === 2) return 0xff00 | byte;
  return (0xffffff00 | byte) >>> 0;
}

/** The error a device throws when called for a port it does not claim (a bus routing bug). */
export function portOutsideDevice(name: string, port: number, first: number, last: number): DeviceError {
  return new DeviceError(
    "argument",
    `Port ${hexPort(port)} is outside device "${name}" (${describePorts(first, last)})`,
  );
}

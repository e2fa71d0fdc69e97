/**
 * An I/O-port bus: maps each of the 65536 ports to at most one attached device. The same class
 * serves as KVM's in-kernel PIO bus and as the userspace one.
 */
import { DeviceError, type PioDevice, type PortRange } from "./device.ts";
import { describePorts, hexPort, isPort, MAX_PORT } from "./ports.ts";

interface Attachment {
  device: PioDevice;
  /** A copy of the device's ranges taken at attach time, so detach frees exactly what was claimed. */
  ranges: PortRange[];
}

/**
 * Maps I/O ports to `PioDevice`s. Lookup is a single typed-array index (`find`), so it is cheap
 * enough for the path of every IN/OUT; attach and detach rewrite the table and are not.
 */
export class PioBus {
  /**
   * Slot number (index into #slots) per port, 0 meaning unclaimed, in pages of 256 ports that are
   * allocated when a device first claims a port in them (a bus is cheap to create). 32-bit because
   * 65536 one-port devices plus "unclaimed" need 65537 values.
   */
  // null marks a page no device claims: an array filled with undefined would be stored as doubles
  // and every read boxed (DESIGN-NOTES.md).
  #pages: (Uint32Array | null)[] = new Array((MAX_PORT + 1) >> 8).fill(null);
  /** Devices by slot. Slot 0 is never used, so `#slots[0]` is undefined. */
  #slots: (PioDevice | undefined)[] = [undefined];
  #attached = new Map<PioDevice, { slot: number; attachment: Attachment }>();
  #freeSlots: number[] = [];

  /**
   * Attaches `dev` at its `ports`.
   * @throws DeviceError("range") when a range is not within 0..0xffff, has first > last, or two of
   *   the device's own ranges overlap; DeviceError("argument") when it claims no ports;
   *   DeviceError("conflict") when a port is already claimed (including by `dev` itself)
   */
  attach(dev: PioDevice): void {
    const ranges = dev.ports.map((r) => ({ first: r.first, last: r.last }));
    const refuse = (kind: DeviceError["kind"], why: string) =>
      new DeviceError(kind, `Cannot attach device "${dev.name}"${why}`);
    if (ranges.length === 0) throw refuse("argument", ": it claims no ports");
    for (const r of ranges) {
      if (!isValidRange(r)) {
        throw refuse("range", `: invalid port range ${formatRaw(r)} (expected first <= last within 0x0-0xffff)`);
      }
    }
    const sorted = [...ranges].sort((a, b) => a.first - b.first);
    for (let i = 1; i < sorted.length; i++) {
      const [a, b] = [sorted[i - 1], sorted[i]];
      if (b.first <= a.last) {
        const both = `${describePorts(a.first, a.last)} and ${describePorts(b.first, b.last)}`;
        throw refuse("range", `: its ${both} overlap`);
      }
    }
    if (this.#attached.has(dev)) {
      throw refuse("conflict", ` at ${describePorts(ranges[0].first, ranges[0].last)}: the device is already attached`);
    }
    for (const r of ranges) {
      const taken = this.#overlap(r.first, r.last);
      if (taken) {
        const verb = taken.first === taken.last ? "is" : "are";
        const who = `${describePorts(taken.first, taken.last)} ${verb} claimed by device "${taken.device.name}"`;
        throw refuse("conflict", ` at ${describePorts(r.first, r.last)}: ${who}`);
      }
    }
    const slot = this.#freeSlots.pop() ?? this.#slots.length;
    this.#slots[slot] = dev;
    for (const r of ranges) this.#fill(slot, r.first, r.last);
    this.#attached.set(dev, { slot, attachment: { device: dev, ranges } });
  }

  /**
   * Detaches `dev`, freeing the ports it claimed when it was attached.
   * @returns false when `dev` was not attached
   */
  detach(dev: PioDevice): boolean {
    const entry = this.#attached.get(dev);
    if (!entry) return false;
    for (const r of entry.attachment.ranges) this.#fill(0, r.first, r.last);
    this.#slots[entry.slot] = undefined;
    this.#freeSlots.push(entry.slot);
    this.#attached.delete(dev);
    return true;
  }

  /** The device that claims `port`, or undefined (also for values outside 0..0xffff). */
  find(port: number): PioDevice | undefined {
    const page = this.#pages[port >>> 8]; // undefined past 0xffff
    return page === null || page === undefined ? undefined : this.#slots[page[port & 0xff]];
  }

  #slotAt(port: number): number {
    const page = this.#pages[port >>> 8];
    return page === null || page === undefined ? 0 : page[port & 0xff];
  }

  #fill(slot: number, first: number, last: number): void {
    for (let p = first; p <= last; p++) {
      let page = this.#pages[p >>> 8];
      if (page === null) {
        if (slot === 0) continue;
        page = this.#pages[p >>> 8] = new Uint32Array(256);
      }
      page[p & 0xff] = slot;
    }
  }

  /** The attached devices, in attach order. */
  devices(): PioDevice[] {
    return [...this.#attached.keys()];
  }

  /**
   * The attached device claiming the lowest port in `first..last` (inclusive), or undefined when the
   * range is free. For other registries checking their own claims against this bus.
   * @throws DeviceError("range") when the range is not first <= last within 0..0xffff
   */
  claimed(first: number, last: number): PioDevice | undefined {
    if (!isValidRange({ first, last })) {
      throw new DeviceError(
        "range",
        `Invalid port range ${formatRaw({ first, last })} (expected first <= last within 0x0-0xffff)`,
      );
    }
    return this.#overlap(first, last)?.device;
  }

  /** The first run of ports in `first..last` claimed by one device, or undefined. */
  #overlap(first: number, last: number): { device: PioDevice; first: number; last: number } | undefined {
    for (let p = first; p <= last; p++) {
      const slot = this.#slotAt(p);
      if (slot === 0) continue;
      let end = p;
      while (end < last && this.#slotAt(end + 1) === slot) end++;
      return { device: this.#slots[slot]!, first: p, last: end };
    }
    return undefined;
  }
}

function isValidRange(r: PortRange): boolean {
  return isPort(r.first) && isPort(r.last) && r.first <= r.last;
}

function formatRaw(r: PortRange): string {
  const f = (n: number) => (Number.isInteger(n) && n >= 0 ? hexPort(n) : String(n));
  return `${f(r.first)}-${f(r.last)}`;
}

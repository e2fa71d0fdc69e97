/**
 * The device contract shared by the in-kernel PIO bus (`runtime/kvm`) and userspace (`runtime/vmm`).
 *
 * A device claims one or more inclusive port ranges. The same class can be attached to either side:
 * on the in-kernel bus an OUT to its port never leaves KVM_RUN (the seed's `kernelPio` branch); in
 * userspace it is reached through `kvmHandleIo` after KVM_RUN returned `KVM_EXIT_IO`.
 */
export interface PortRange {
  /** First port, 0..0xffff. */
  first: number;
  /** Last port (inclusive), first..0xffff. */
  last: number;
}

export interface PioDevice {
  /** A short name used in error messages and traces, e.g. "debugcon", "serial". */
  readonly name: string;
  /** The port ranges the device answers. */
  readonly ports: readonly PortRange[];
  /**
   * Handle an IN of `size` bytes (1, 2 or 4) from `port`.
   * @returns the value, zero-extended; bits beyond `size` are ignored by the caller
   */
  read(port: number, size: 1 | 2 | 4): number;
  /** Handle an OUT of `size` bytes (1, 2 or 4) of `value` to `port`. */
  write(port: number, size: 1 | 2 | 4, value: number): void;
}

/** Receives console bytes from devices that print (debug console, UART transmitter). */
export type ByteSink = (byte: number) => void;

/** Error thrown by device attachment and bus operations; `kind` says which. */
export class DeviceError extends Error {
  constructor(readonly kind: "conflict" | "range" | "argument", message: string) {
    super(message);
    this.name = "DeviceError";
  }
}

/**
 * What a loader makes of a guest image: the bytes to place in guest-physical memory and where the
 * CPU should start. Loaders (`loader.ts`) produce it; `Machine` consumes it.
 */
import type { BzImageInfo } from "./bzimage.ts";

export type ImageFormat = "raw" | "elf" | "multiboot" | "rom" | "bzimage";

export interface LoadSegment {
  /** Guest-physical address of the first byte. */
  addr: number;
  /** Bytes to copy there. */
  data: Uint8Array;
  /** Size in memory (>= data.length); the rest is zero-filled (ELF .bss). */
  memSize: number;
}

export interface LoadedImage {
  format: ImageFormat;
  segments: LoadSegment[];
  /** Entry point (guest-physical = linear in the flat modes vmrun sets up). */
  entry: number;
  /** For multiboot: the info structure's guest-physical address, which the loader placed in a segment. */
  multibootInfo?: number;
  /** For ROM images: the image size; it is mapped to end at 1 MiB and at 4 GiB. */
  romSize?: number;
  /** For a bzImage: the zero page's guest-physical address (ESI at entry), and what the setup header says. */
  bootParams?: number;
  bzImage?: BzImageInfo;
}

/** A malformed or unplaceable image. `kind` names the failure for callers that map it (CLI exit 2, HTTP 400). */
export class ImageError extends Error {
  constructor(readonly kind: "empty" | "truncated" | "malformed" | "unsupported" | "placement", message: string) {
    super(message);
    this.name = "ImageError";
  }
}

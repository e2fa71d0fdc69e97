/**
 * What a bare-metal guest finds at its first instruction beyond the loader's segments: the boot
 * mode an image needs, the initial stack `Machine.load` gives ELF and multiboot guests, and what
 * to do about an image that does not fit in RAM. Pure functions over an image's bytes or segments.
 */
import { detectFormat, loadImage, type BootMode } from "./loader.ts";
import type { ImageFormat, LoadSegment } from "./image.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
/** The room the initial stack is given below its top: no loaded byte lies in it. */
export const INITIAL_STACK_ROOM = 64 * KiB;

/**
 * The boot mode an image needs when none is asked for: protected for a multiboot kernel (the
 * Multiboot specification enters it in 32-bit protected mode) and for an ELF executable whose
 * entry point is at or above 1 MiB (unreachable in real mode); real otherwise (raw images, ROMs,
 * ELF below 1 MiB).
 */
export function bootModeFor(bytes: Uint8Array, format: ImageFormat | "auto" = "auto"): BootMode {
  const f = format === "auto" ? detectFormat(bytes) : format;
  if (f === "multiboot") return "protected";
  if (f === "elf" && bytes.length >= 28) {
    const entry = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(24, true);
    if (entry >= MiB) return "protected";
  }
  return "real";
}

/**
 * The initial ESP of an ELF or multiboot guest started in protected or paged mode: `top` (the top
 * of RAM, below the page directory in paged mode), moved down below any segment that reaches into
 * the 64 KiB under it, 16-byte aligned; null when no such place is left above 64 KiB.
 */
export function initialStackTop(segments: readonly LoadSegment[], top: number): number | null {
  let t = Math.floor(top / 16) * 16;
  for (;;) {
    if (t < INITIAL_STACK_ROOM + 0x1000) return null;
    const hit = segments.find((s) => s.addr < t && s.addr + s.memSize > t - INITIAL_STACK_ROOM);
    if (hit === undefined) return t;
    t = Math.floor(hit.addr / 16) * 16;
  }
}

/**
 * What to do about an image that ends past RAM: the memory it needs (its end and the initial
 * stack's 64 KiB, in whole MiB), and for an ELF linked where gcc's default link puts i386 programs
 * (0x08048000), how to link it at 1 MiB instead. Empty when the image is not an ELF or multiboot
 * one, or needs more than 3 GiB.
 */
export function fitHint(bytes: Uint8Array, format: ImageFormat | "auto", memSize: number): string {
  const f = format === "auto" ? detectFormat(bytes) : format;
  if (f !== "elf" && f !== "multiboot") return "";
  let segs: LoadSegment[];
  try {
    segs = loadImage(bytes, { format: f, memSize: 2 ** 32, mode: "protected" }).segments;
  } catch {
    return "";
  }
  const end = Math.max(...segs.map((s) => s.addr + s.memSize));
  const need = Math.ceil((end + INITIAL_STACK_ROOM) / MiB);
  if (need * MiB <= memSize || need * MiB > 3 * 1024 * MiB) return "";
  let hint = `: give the guest ${need} MiB of RAM or more (vmrun --mem ${need}M; Machine: { memSize: ${need} * 2 ** 20 })`;
  const lowest = Math.min(...segs.map((s) => s.addr));
  if (lowest >= 0x08000000) {
    hint += `, or link the program at 1 MiB: gcc's default link put it at 0x${lowest.toString(16)}; ` +
      `add -Wl,-Ttext-segment=0x100000 (see "C guests" in the README)`;
  }
  return hint;
}

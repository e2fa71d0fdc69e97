/**
 * A loader for Linux bzImage kernels through the 32-bit boot protocol (Documentation/x86/boot.rst in
 * the kernel source, "32-bit Boot Protocol"; the zero page in Documentation/x86/zero-page.rst).
 *
 * What a boot loader does, and what this one does:
 * - reads the setup header at 0x1F1 ("HdrS" at 0x202, the protocol version at 0x206) and refuses
 *   images that are not a bzImage of protocol 2.10 or later (2.10 added `init_size` and
 *   `pref_address`, without which a loader cannot tell whether the kernel fits);
 * - builds `struct boot_params` (the zero page), all zero but for a copy of the setup header
 *   (0x1F1 up to 0x202 + the byte at 0x201), `type_of_loader` 0xFF (no assigned id), the initrd's
 *   address and size, the command line pointer, `alt_mem_k` and an e820 memory map of the
 *   machine's RAM: [0, 0x9FC00) usable, [0x9FC00, 0xA0000) and [0xF0000, 0x100000) reserved (where
 *   a PC's EBDA and BIOS would be), [1 MiB, end of RAM) usable;
 * - loads the protected-mode kernel (the file from sector `setup_sects + 1` on) at 1 MiB, checks that
 *   the kernel's runtime range (`pref_address`, or 1 MiB aligned up to `kernel_alignment` for a
 *   relocatable kernel, plus `init_size`) lies inside RAM, and places the initrd at the highest
 *   4 KiB-aligned address below both the end of RAM and `initrd_addr_max`, above the kernel;
 * - writes a GDT with flat 4 GiB code at __BOOT_CS (0x10) and data at __BOOT_DS (0x18); the
 *   caller loads it and enters at `code32_start` with ESI = boot_params, EBX = EBP = EDI = 0,
 *   interrupts off and paging off (`Machine.load` does).
 *
 * Layout in low memory: GDT at 0x6000, boot_params at 0x7000, the command line at 0x20000.
 * Pure: no guest memory is touched here.
 */
import { ImageError, type LoadedImage, type LoadSegment } from "./image.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Where the protected-mode kernel is loaded (LOADED_HIGH). */
export const BZIMAGE_KERNEL_ADDR = 0x100000;
/** Where the zero page goes; ESI at entry. */
export const BOOT_PARAMS_ADDR = 0x7000;
/** Where the GDT goes (null, null, __BOOT_CS, __BOOT_DS). */
export const BOOT_GDT_ADDR = 0x6000;
/** Where the command line goes. */
export const CMDLINE_ADDR = 0x20000;
/** __BOOT_CS and __BOOT_DS, the selectors the 32-bit boot protocol enters with. */
export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;
/** The oldest boot protocol accepted (2.10: init_size and pref_address). */
export const MIN_BOOT_PROTOCOL = 0x020a;

/** Top of usable conventional memory in the e820 map (the last KiB below 640 KiB is an EBDA's). */
const LOW_MEM_TOP = 0x9fc00;
const E820_RAM = 1;
const E820_RESERVED = 2;

// Setup header fields (offsets in the image and in boot_params alike).
const HDR_SETUP_SECTS = 0x1f1;
const HDR_BOOT_FLAG = 0x1fe;
const HDR_JUMP = 0x200;
const HDR_MAGIC = 0x202;
const HDR_VERSION = 0x206;
const HDR_TYPE_OF_LOADER = 0x210;
const HDR_LOADFLAGS = 0x211;
const HDR_CODE32_START = 0x214;
const HDR_RAMDISK_IMAGE = 0x218;
const HDR_RAMDISK_SIZE = 0x21c;
const HDR_CMD_LINE_PTR = 0x228;
const HDR_INITRD_ADDR_MAX = 0x22c;
const HDR_KERNEL_ALIGNMENT = 0x230;
const HDR_RELOCATABLE = 0x234;
const HDR_CMDLINE_SIZE = 0x238;
const HDR_PREF_ADDRESS = 0x258;
const HDR_INIT_SIZE = 0x260;
// boot_params fields outside the header.
const BP_ALT_MEM_K = 0x1e0;
const BP_E820_ENTRIES = 0x1e8;
const BP_E820_TABLE = 0x2d0;
const BP_SIZE = 4096;

const LOADED_HIGH = 0x01;
const HDRS = 0x53726448; // "HdrS"

/** What the setup header says, for messages, tests and `vmrun --json`. */
export interface BzImageInfo {
  /** Boot protocol version, e.g. 0x020f for 2.15. */
  protocol: number;
  /** The kernel's version string (from `kernel_version`), or "" when absent. */
  version: string;
  setupSects: number;
  code32Start: number;
  /** Where the kernel runs while it decompresses: [runtimeStart, runtimeStart + initSize). */
  runtimeStart: number;
  initSize: number;
  relocatable: boolean;
  initrdAddrMax: number;
  cmdlineSize: number;
}

/** Options for `loadBzImage`. */
export interface BzImageOptions {
  /** Guest RAM in bytes (mapped at 0). */
  memSize: number;
  /** The initial RAM disk (a cpio archive, possibly compressed), if any. */
  initrd?: Uint8Array;
  /** The kernel command line (ASCII; at most `cmdline_size` bytes). Default "". */
  cmdline?: string;
}

/** True when the bytes carry a boot sector flag and the "HdrS" signature of the Linux boot protocol. */
export function isBzImage(bytes: Uint8Array): boolean {
  if (bytes.length < 0x208) return false;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return dv.getUint16(HDR_BOOT_FLAG, true) === 0xaa55 && dv.getUint32(HDR_MAGIC, true) === HDRS;
}

function hex(n: number): string {
  return "0x" + n.toString(16).toUpperCase();
}
function mib(n: number): string {
  return n % MiB === 0 ? `${n / MiB} MiB` : `${(n / MiB).toFixed(1)} MiB`;
}
function protocolText(v: number): string {
  return `${v >> 8}.${(v & 0xff).toString().padStart(2, "0")}`;
}

/**
 * Read and check the setup header.
 * @throws ImageError("malformed") without the boot flag or "HdrS"; ("unsupported") for a protocol
 *   older than 2.10 or a zImage (not LOADED_HIGH); ("truncated") when the file ends inside the setup
 */
export function parseBzImage(bytes: Uint8Array): BzImageInfo {
  if (bytes.length < 0x208) throw new ImageError("truncated", `Kernel image of ${bytes.length} bytes is too short for a Linux setup header (needs at least 520)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint16(HDR_BOOT_FLAG, true) !== 0xaa55) {
    throw new ImageError("malformed", `Not a Linux kernel image: no boot flag 0xAA55 at offset 0x1FE (found ${hex(dv.getUint16(HDR_BOOT_FLAG, true))})`);
  }
  if (dv.getUint32(HDR_MAGIC, true) !== HDRS) {
    throw new ImageError("unsupported", `Linux kernel with the old boot protocol (no "HdrS" at offset 0x202): only bzImage kernels of boot protocol ${protocolText(MIN_BOOT_PROTOCOL)} or later can be loaded`);
  }
  const protocol = dv.getUint16(HDR_VERSION, true);
  if (protocol < MIN_BOOT_PROTOCOL) {
    throw new ImageError("unsupported", `Linux boot protocol ${protocolText(protocol)} is too old: ${protocolText(MIN_BOOT_PROTOCOL)} or later is needed (Linux 2.6.31 and later)`);
  }
  if (!(bytes[HDR_LOADFLAGS] & LOADED_HIGH)) {
    throw new ImageError("unsupported", "Linux zImage (loadflags.LOADED_HIGH clear): only bzImage kernels, loaded at 1 MiB, are supported");
  }
  const setupSects = bytes[HDR_SETUP_SECTS] || 4;
  const pmOffset = (setupSects + 1) * 512;
  if (bytes.length <= pmOffset) throw new ImageError("truncated", `Kernel image ends at ${bytes.length} bytes, inside its ${setupSects}-sector setup (the protected-mode kernel starts at ${pmOffset})`);
  const headerEnd = HDR_JUMP + 2 + bytes[HDR_JUMP + 1];
  if (headerEnd > pmOffset || headerEnd < HDR_INIT_SIZE + 4) throw new ImageError("malformed", `Linux setup header ends at ${hex(headerEnd)}, outside the setup sectors`);
  const relocatable = bytes[HDR_RELOCATABLE] !== 0;
  const align = dv.getUint32(HDR_KERNEL_ALIGNMENT, true);
  const pref = Number(dv.getBigUint64(HDR_PREF_ADDRESS, true));
  const runtimeStart = relocatable ? alignUp(BZIMAGE_KERNEL_ADDR, align || 1) : pref;
  const versionPtr = dv.getUint16(0x20e, true);
  let version = "";
  if (versionPtr !== 0 && versionPtr + 0x200 < bytes.length) {
    for (let i = versionPtr + 0x200; i < bytes.length && bytes[i] !== 0 && version.length < 256; i++) version += String.fromCharCode(bytes[i]);
  }
  return {
    protocol, version, setupSects,
    code32Start: dv.getUint32(HDR_CODE32_START, true),
    runtimeStart, initSize: dv.getUint32(HDR_INIT_SIZE, true), relocatable,
    initrdAddrMax: dv.getUint32(HDR_INITRD_ADDR_MAX, true),
    cmdlineSize: dv.getUint32(HDR_CMDLINE_SIZE, true),
  };
}

function alignUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

/**
 * Lay out a bzImage, its initrd and command line in guest memory for the 32-bit boot protocol.
 * @returns the segments (GDT, boot_params, command line, kernel, initrd), the entry point
 *   (`code32_start`), `bootParams` (ESI at entry) and the header's facts in `bzImage`
 * @throws ImageError as `parseBzImage`, or ("placement") when the kernel or the initrd does not fit
 *   in RAM, or the command line is longer than the kernel accepts
 * @example
 * ```ts
 * import { loadBzImage } from "./bzimage.ts";
 *
 * const kernel = Deno.readFileSync("tests/guests/linux/bzImage");
 * const img = loadBzImage(kernel, { memSize: 128 << 20, cmdline: "console=ttyS0" });
 * if (img.entry !== 0x100000 || img.bootParams !== 0x7000) throw new Error("unexpected layout");
 * ```
 */
export function loadBzImage(bytes: Uint8Array, opts: BzImageOptions): LoadedImage & { bootParams: number; bzImage: BzImageInfo } {
  const { memSize } = opts;
  if (!Number.isSafeInteger(memSize) || memSize <= 0) throw new RangeError(`Invalid guest memory size ${memSize}: expected a positive whole number of bytes`);
  const info = parseBzImage(bytes);
  const pm = bytes.subarray((info.setupSects + 1) * 512);

  // The kernel: loaded at 1 MiB, and running (decompressing) in [runtimeStart, +init_size).
  const loadedEnd = BZIMAGE_KERNEL_ADDR + pm.length;
  const runtimeEnd = info.runtimeStart + info.initSize;
  const kernelEnd = Math.max(loadedEnd, runtimeEnd);
  if (kernelEnd > memSize) {
    throw new ImageError("placement", `Linux kernel does not fit in ${mib(memSize)} of RAM: it needs memory up to ${hex(kernelEnd)} (loaded at 1 MiB, ${pm.length} bytes; runs at ${hex(info.runtimeStart)} with init_size ${hex(info.initSize)}); give the machine at least ${Math.ceil(kernelEnd / MiB)} MiB`);
  }

  // The command line, NUL-terminated.
  const cmdline = opts.cmdline ?? "";
  for (let i = 0; i < cmdline.length; i++) {
    const c = cmdline.charCodeAt(i);
    if (c === 0 || c > 0x7e) throw new ImageError("malformed", `Kernel command line has a character the boot protocol cannot carry at index ${i} (printable ASCII only)`);
  }
  const maxCmdline = info.cmdlineSize || 255;
  if (cmdline.length > maxCmdline) throw new ImageError("placement", `Kernel command line of ${cmdline.length} bytes is longer than the kernel's cmdline_size (${maxCmdline})`);
  const cmdBytes = new Uint8Array(cmdline.length + 1);
  for (let i = 0; i < cmdline.length; i++) cmdBytes[i] = cmdline.charCodeAt(i);

  // The initrd: as high as RAM and initrd_addr_max allow, page aligned, above the kernel.
  let initrdAddr = 0;
  const initrd = opts.initrd;
  if (initrd !== undefined && initrd.length > 0) {
    const top = Math.min(memSize, info.initrdAddrMax + 1);
    initrdAddr = Math.floor((top - initrd.length) / 4096) * 4096;
    if (initrdAddr < kernelEnd) {
      throw new ImageError("placement", `Initrd of ${initrd.length} bytes does not fit in ${mib(memSize)} of RAM above the kernel (which ends at ${hex(kernelEnd)}; the initrd must end below ${hex(top)}); give the machine more memory`);
    }
  }

  // boot_params: zero, the setup header copied in, then the loader's fields.
  const bp = new Uint8Array(BP_SIZE);
  const dv = new DataView(bp.buffer);
  const headerEnd = HDR_JUMP + 2 + bytes[HDR_JUMP + 1];
  bp.set(bytes.subarray(HDR_SETUP_SECTS, headerEnd), HDR_SETUP_SECTS);
  bp[HDR_TYPE_OF_LOADER] = 0xff;
  dv.setUint32(HDR_CMD_LINE_PTR, CMDLINE_ADDR, true);
  dv.setUint32(HDR_RAMDISK_IMAGE, initrdAddr, true);
  dv.setUint32(HDR_RAMDISK_SIZE, initrd?.length ?? 0, true);
  dv.setUint32(BP_ALT_MEM_K, Math.max(0, Math.floor((memSize - MiB) / KiB)), true);
  const e820: [number, number, number][] = [[0, Math.min(memSize, LOW_MEM_TOP), E820_RAM]];
  if (memSize > LOW_MEM_TOP) e820.push([LOW_MEM_TOP, 0xa0000 - LOW_MEM_TOP, E820_RESERVED]);
  e820.push([0xf0000, 0x10000, E820_RESERVED]);
  if (memSize > MiB) e820.push([MiB, memSize - MiB, E820_RAM]);
  bp[BP_E820_ENTRIES] = e820.length;
  e820.forEach(([addr, size, type], i) => {
    const o = BP_E820_TABLE + i * 20;
    dv.setBigUint64(o, BigInt(addr), true);
    dv.setBigUint64(o + 8, BigInt(size), true);
    dv.setUint32(o + 16, type, true);
  });

  // The GDT: flat 4 GiB code (execute/read) at 0x10 and data (read/write) at 0x18.
  const gdt = new Uint8Array(32);
  const gv = new DataView(gdt.buffer);
  gv.setUint32(BOOT_CS, 0x0000ffff, true);
  gv.setUint32(BOOT_CS + 4, 0x00cf9a00, true);
  gv.setUint32(BOOT_DS, 0x0000ffff, true);
  gv.setUint32(BOOT_DS + 4, 0x00cf9200, true);

  const segments: LoadSegment[] = [
    { addr: BOOT_GDT_ADDR, data: gdt, memSize: gdt.length },
    { addr: BOOT_PARAMS_ADDR, data: bp, memSize: BP_SIZE },
    { addr: CMDLINE_ADDR, data: cmdBytes, memSize: cmdBytes.length },
    { addr: BZIMAGE_KERNEL_ADDR, data: pm.slice(), memSize: pm.length },
  ];
  if (initrd !== undefined && initrd.length > 0) segments.push({ addr: initrdAddr, data: initrd.slice(), memSize: initrd.length });
  if (memSize < CMDLINE_ADDR + cmdBytes.length) throw new ImageError("placement", `Guest memory of ${memSize} bytes is too small for the boot parameters`);
  return { format: "bzimage", segments, entry: info.code32Start, bootParams: BOOT_PARAMS_ADDR, bzImage: info };
}

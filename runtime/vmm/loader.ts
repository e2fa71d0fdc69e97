/**
 * Guest image loaders: turn the bytes of a raw binary, an ELF32 executable, a Multiboot (v1) kernel
 * or a BIOS-style ROM into a `LoadedImage` (segments to copy into guest-physical memory, an entry
 * point, and for Multiboot the address of the information structure the loader built).
 *
 * Everything here is pure: no I/O, no guest memory. The caller copies the segments and sets up the
 * CPU (for Multiboot: EAX = 0x2BADB002, EBX = `multibootInfo`).
 */
import { ImageError, type ImageFormat, type LoadedImage, type LoadSegment } from "./image.ts";
import { isBzImage, loadBzImage } from "./bzimage.ts";

/** CPU mode the machine will start the guest in; it only changes the default raw load address. */
export type BootMode = "real" | "protected" | "paged" | "long";

/** Options for `loadImage`. */
export interface LoadOptions {
  /** Image format, or "auto" to use `detectFormat` (which never answers "rom"). */
  format: ImageFormat | "auto";
  /** Raw images only: guest-physical load address (default 0x1000 in real mode, 0x100000 otherwise). Ignored for other formats. */
  loadAddr?: number;
  /** Guest RAM size in bytes. */
  memSize: number;
  /** CPU mode the guest starts in. */
  mode: BootMode;
  /** bzImage only: the initial RAM disk and the kernel command line. */
  initrd?: Uint8Array;
  cmdline?: string;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Default load address of a raw image in real mode (above the IVT and BDA, below the usual boot sector). */
export const RAW_REAL_MODE_LOAD_ADDR = 0x1000;
/** Default load address of a raw image in the other modes (1 MiB, where kernels conventionally go). */
export const RAW_LOAD_ADDR = 0x100000;

/** Value of EAX a Multiboot v1 loader hands to the kernel. */
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
/**
 * Where `loadImage` places the Multiboot information structure (free conventional memory), unless
 * the kernel covers it: then at the first 4 KiB page after the kernel's last byte, as QEMU places
 * it after the kernel.
 */
export const MULTIBOOT_INFO_ADDR = 0x9000;

const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
/** The Multiboot header must lie entirely within the first 8192 bytes of the image, 4-byte aligned. */
const MULTIBOOT_SEARCH_LIMIT = 8192;
const MB_FLAG_PAGE_ALIGN = 1 << 0;
const MB_FLAG_MEMORY_INFO = 1 << 1;
const MB_FLAG_VIDEO_MODE = 1 << 2;
const MB_FLAG_AOUT_KLUDGE = 1 << 16;

/** Multiboot information flags we fill in. */
const MBI_FLAG_MEM = 1 << 0;
const MBI_FLAG_MMAP = 1 << 6;
const MBI_FLAG_LOADER_NAME = 1 << 9;
/** Size of the Multiboot v1 information structure up to and including the VBE fields. */
const MBI_SIZE = 88;
const MBI_MMAP_ENTRY_SIZE = 24; // u32 size (20, excluding itself) + u64 base + u64 length + u32 type
const BOOT_LOADER_NAME = "vmxlab";
/** Top of usable conventional memory reported in the memory map (the last KiB below 640 KiB is left to an EBDA). */
const LOW_MEM_TOP = 0x9fc00;

const ROM_MIN_SIZE = 4 * KiB;
const ROM_MAX_SIZE = 1 * MiB;
/** ROM entry: the real-mode alias of the reset vector (F000:FFF0), 16 bytes below the end of the low alias. */
const ROM_ENTRY = 0xffff0;

const ELF_HEADER_SIZE = 52;
const ELF_PHDR_SIZE = 32;
const ELFCLASS32 = 1;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ELFDATA2MSB = 2;
const EV_CURRENT = 1;
const ET_EXEC = 2;
const EM_386 = 3;
const PT_LOAD = 1;

const ELF_TYPE_NAMES: Record<number, string> = {
  0: "ET_NONE",
  1: "ET_REL (a relocatable object file)",
  3: "ET_DYN (a shared object or position-independent executable)",
  4: "ET_CORE (a core dump)",
};
const ELF_MACHINE_NAMES: Record<number, string> = {
  8: "MIPS",
  20: "PowerPC",
  21: "PowerPC64",
  40: "ARM",
  62: "x86-64",
  183: "AArch64",
  243: "RISC-V",
};

/** `0x`-prefixed upper-case hex, the form all messages use. */
function hex(n: number): string {
  return "0x" + n.toString(16).toUpperCase();
}

/** A memory size for messages: "16 MiB", "640 KiB", or hex bytes when not a whole number of KiB. */
function sizeText(n: number): string {
  if (n > 0 && n % GiB === 0) return `${n / GiB} GiB`;
  if (n > 0 && n % MiB === 0) return `${n / MiB} MiB`;
  if (n > 0 && n % KiB === 0) return `${n / KiB} KiB`;
  return `${hex(n)} bytes`;
}

function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

interface MultibootHeaderScan {
  /** File offset of the first valid header (magic + flags + checksum == 0 mod 2^32), or -1. */
  offset: number;
  /** File offset of the first magic whose checksum did not match, or -1 (for error messages). */
  badChecksumOffset: number;
}

/** Scans the 4-byte-aligned words of the first 8192 bytes for a Multiboot v1 header. */
function scanMultibootHeader(bytes: Uint8Array): MultibootHeaderScan {
  const dv = view(bytes);
  const limit = Math.min(bytes.length, MULTIBOOT_SEARCH_LIMIT);
  let badChecksumOffset = -1;
  for (let off = 0; off + 12 <= limit; off += 4) {
    if (dv.getUint32(off, true) !== MULTIBOOT_HEADER_MAGIC) continue;
    const flags = dv.getUint32(off + 4, true);
    const checksum = dv.getUint32(off + 8, true);
    if (((MULTIBOOT_HEADER_MAGIC + flags + checksum) >>> 0) === 0) return { offset: off, badChecksumOffset };
    if (badChecksumOffset < 0) badChecksumOffset = off;
  }
  return { offset: -1, badChecksumOffset };
}

/**
 * Guesses an image's format from its contents: "multiboot" when a valid Multiboot v1 header (magic
 * 0x1BADB002, matching checksum, 4-byte aligned) lies within the first 8192 bytes, whether or not the
 * file is also ELF; else "elf" for the ELF magic; else "raw". Never answers "rom": the user names it.
 */
export function detectFormat(bytes: Uint8Array): ImageFormat {
  if (isBzImage(bytes)) return "bzimage";
  if (scanMultibootHeader(bytes).offset >= 0) return "multiboot";
  if (isElf(bytes)) return "elf";
  return "raw";
}

/**
 * Parses an image and places it in guest-physical memory.
 *
 * Throws `ImageError` for images that are empty, truncated, malformed, unsupported or do not fit,
 * and `RangeError` for invalid options (`memSize`, `loadAddr`). The entry point must lie inside one
 * of the image's own loaded segments (not merely somewhere in RAM).
 */
export function loadImage(bytes: Uint8Array, opts: LoadOptions): LoadedImage {
  const { memSize } = opts;
  if (!Number.isSafeInteger(memSize) || memSize <= 0) {
    throw new RangeError(`Invalid guest memory size ${memSize}: expected a positive whole number of bytes`);
  }
  if (bytes.length === 0) throw new ImageError("empty", "Image is empty");
  const format = opts.format === "auto" ? detectFormat(bytes) : opts.format;

  let image: LoadedImage;
  switch (format) {
    case "raw":
      image = loadRaw(bytes, opts);
      break;
    case "elf":
      image = { format, ...loadElf(bytes) };
      break;
    case "multiboot":
      image = loadMultiboot(bytes, memSize);
      break;
    case "bzimage":
      // The boot protocol's own placement rules (bzimage.ts) decide what fits.
      return loadBzImage(bytes, { memSize, initrd: opts.initrd, cmdline: opts.cmdline });
    case "rom":
      // The ROM is checked against its own window below 1 MiB, not against RAM.
      return loadRom(bytes);
    default:
      throw new ImageError("unsupported", `Unknown image format ${JSON.stringify(format)}`);
  }
  checkPlacement(image, memSize);
  return image;
}

function loadRaw(bytes: Uint8Array, opts: LoadOptions): LoadedImage {
  const addr = opts.loadAddr ?? (opts.mode === "real" ? RAW_REAL_MODE_LOAD_ADDR : RAW_LOAD_ADDR);
  if (!Number.isSafeInteger(addr) || addr < 0 || addr > 0xffffffff) {
    throw new RangeError(`Invalid load address ${addr}: expected a whole number from 0 to 0xFFFFFFFF`);
  }
  return { format: "raw", segments: [{ addr, data: bytes.slice(), memSize: bytes.length }], entry: addr };
}

/**
 * A power of two from 4 KiB to 1 MiB, because the image must end exactly at 1 MiB (its real-mode
 * alias, holding the reset vector at 0xFFFF0) and at 4 GiB, as a PC BIOS does; power-of-two sizes keep
 * both windows naturally aligned, and anything above 1 MiB cannot fit below 1 MiB at all.
 */
function loadRom(bytes: Uint8Array): LoadedImage {
  const size = bytes.length;
  if (size > ROM_MAX_SIZE) {
    throw new ImageError(
      "placement",
      `ROM image of ${sizeText(size)} does not fit below 1 MiB: it must be at most 1 MiB`,
    );
  }
  if (size < ROM_MIN_SIZE || (size & (size - 1)) !== 0) {
    throw new ImageError(
      "malformed",
      `ROM image size ${hex(size)} bytes is not a power of two from 4 KiB to 1 MiB`,
    );
  }
  return {
    format: "rom",
    segments: [{ addr: 0x100000 - size, data: bytes.slice(), memSize: size }],
    entry: ROM_ENTRY,
    romSize: size,
  };
}

interface ElfLoad {
  segments: LoadSegment[];
  entry: number;
}

function loadElf(bytes: Uint8Array): ElfLoad {
  const n = bytes.length;
  if (!isElf(bytes)) throw new ImageError("malformed", "Not an ELF file: the first bytes are not 0x7F 'E' 'L' 'F'");
  if (n < 16) {
    throw new ImageError(
      "truncated",
      `Truncated ELF: the identification needs 0x10 bytes but the file has ${hex(n)} bytes`,
    );
  }
  const cls = bytes[4];
  if (cls === ELFCLASS64) {
    throw new ImageError(
      "unsupported",
      "64-bit ELF images need long mode, which vmxlab does not implement: only ELF32 (i386) is supported",
    );
  }
  if (cls !== ELFCLASS32) throw new ImageError("malformed", `Invalid ELF class ${cls}: expected 1 (ELFCLASS32)`);
  const data = bytes[5];
  if (data === ELFDATA2MSB) {
    throw new ImageError("unsupported", "Big-endian ELF images are not supported: i386 is little-endian");
  }
  if (data !== ELFDATA2LSB) {
    throw new ImageError("malformed", `Invalid ELF data encoding ${data}: expected 1 (little-endian)`);
  }
  if (bytes[6] !== EV_CURRENT) {
    throw new ImageError("malformed", `Invalid ELF identification version ${bytes[6]}: expected 1`);
  }
  if (n < ELF_HEADER_SIZE) {
    throw new ImageError(
      "truncated",
      `Truncated ELF: the header needs ${hex(ELF_HEADER_SIZE)} bytes but the file has ${hex(n)} bytes`,
    );
  }

  const dv = view(bytes);
  const type = dv.getUint16(16, true);
  const machine = dv.getUint16(18, true);
  const version = dv.getUint32(20, true);
  const entry = dv.getUint32(24, true);
  const phoff = dv.getUint32(28, true);
  const ehsize = dv.getUint16(40, true);
  const phentsize = dv.getUint16(42, true);
  const phnum = dv.getUint16(44, true);

  if (type !== ET_EXEC) {
    const name = ELF_TYPE_NAMES[type] ?? `type ${type}`;
    throw new ImageError("unsupported", `Unsupported ELF file type ${name}: only ET_EXEC executables can be loaded`);
  }
  if (machine !== EM_386) {
    const name = ELF_MACHINE_NAMES[machine] ? `${machine} (${ELF_MACHINE_NAMES[machine]})` : `${machine}`;
    throw new ImageError("unsupported", `Unsupported ELF machine ${name}: only i386 (3) is supported`);
  }
  if (version !== EV_CURRENT) throw new ImageError("malformed", `Invalid ELF version ${version}: expected 1`);
  if (ehsize !== ELF_HEADER_SIZE) {
    throw new ImageError("malformed", `Invalid ELF header size ${ehsize}: expected ${ELF_HEADER_SIZE}`);
  }
  if (phnum === 0) throw new ImageError("malformed", "ELF has no program headers, so no PT_LOAD segment to load");
  if (phentsize !== ELF_PHDR_SIZE) {
    throw new ImageError("malformed", `Invalid ELF program header size ${phentsize}: expected ${ELF_PHDR_SIZE}`);
  }
  if (phoff < ELF_HEADER_SIZE) {
    throw new ImageError("malformed", `ELF program header table at ${hex(phoff)} overlaps the ELF header`);
  }
  if (phoff + phnum * ELF_PHDR_SIZE > n) {
    // Name the first program header that does not fit.
    const i = Math.max(0, Math.floor((n - phoff) / ELF_PHDR_SIZE));
    const end = phoff + (i + 1) * ELF_PHDR_SIZE;
    throw new ImageError(
      "truncated",
      `Truncated ELF: program header ${i} extends to byte ${hex(end)} but the file has ${hex(n)} bytes`,
    );
  }

  interface Placed extends LoadSegment {
    index: number;
  }
  const placed: Placed[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * ELF_PHDR_SIZE;
    if (dv.getUint32(ph, true) !== PT_LOAD) continue; // Other types (PT_NOTE, PT_GNU_STACK, ...) place nothing.
    const offset = dv.getUint32(ph + 4, true);
    const vaddr = dv.getUint32(ph + 8, true);
    const paddr = dv.getUint32(ph + 12, true);
    const filesz = dv.getUint32(ph + 16, true);
    const memsz = dv.getUint32(ph + 20, true);
    if (filesz > memsz) {
      throw new ImageError(
        "malformed",
        `Malformed ELF: program header ${i} has p_filesz ${hex(filesz)} larger than p_memsz ${hex(memsz)}`,
      );
    }
    if (offset + filesz > n) {
      throw new ImageError(
        "truncated",
        `Truncated ELF: the data of program header ${i} extends to byte ${hex(offset + filesz)} but the file has ${
          hex(n)
        } bytes`,
      );
    }
    if (memsz === 0) continue; // An empty PT_LOAD occupies no memory.
    // Segments go at their physical address (the guest runs with paging off or identity-mapped at
    // entry). Some linkers leave p_paddr 0 when the script never sets a load address; then we fall
    // back to p_vaddr, which for such images equals the intended physical address.
    const addr = paddr !== 0 ? paddr : vaddr;
    placed.push({ index: i, addr, data: bytes.slice(offset, offset + filesz), memSize: memsz });
  }
  if (placed.length === 0) throw new ImageError("malformed", "ELF has no PT_LOAD segment with a non-zero size");

  const sorted = [...placed].sort((a, b) => a.addr - b.addr);
  for (let k = 1; k < sorted.length; k++) {
    const a = sorted[k - 1];
    const b = sorted[k];
    if (a.addr + a.memSize > b.addr) {
      throw new ImageError(
        "malformed",
        `Overlapping ELF segments: program header ${a.index} (${
          rangeText(a.addr, a.memSize)
        }) overlaps program header ${b.index} (${rangeText(b.addr, b.memSize)})`,
      );
    }
  }
  return { segments: placed.map(({ addr, data, memSize }) => ({ addr, data, memSize })), entry };
}

function rangeText(addr: number, size: number): string {
  return `${hex(addr)}..${hex(addr + size)}`;
}

function loadMultiboot(bytes: Uint8Array, memSize: number): LoadedImage {
  const scan = scanMultibootHeader(bytes);
  if (scan.offset < 0) {
    if (scan.badChecksumOffset >= 0) {
      const dv = view(bytes);
      const o = scan.badChecksumOffset;
      const flags = dv.getUint32(o + 4, true);
      const checksum = dv.getUint32(o + 8, true);
      const want = -(MULTIBOOT_HEADER_MAGIC + flags) >>> 0;
      throw new ImageError(
        "malformed",
        `Multiboot header at offset ${hex(o)} has a bad checksum ${hex(checksum)}: with flags ${
          hex(flags)
        } it must be ${hex(want)}`,
      );
    }
    throw new ImageError("malformed", "No Multiboot header (magic 0x1BADB002, 4-byte aligned) in the first 8192 bytes");
  }
  const hdr = scan.offset;
  const dv = view(bytes);
  const flags = dv.getUint32(hdr + 4, true);

  // Bits 0-15 are requirements the loader must understand; bits 16-31 are optional features.
  if (flags & MB_FLAG_VIDEO_MODE) {
    throw new ImageError(
      "unsupported",
      "Multiboot header requests a video mode (flag bit 2), which vmxlab does not set up",
    );
  }
  const unknown = flags & 0xffff & ~(MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMORY_INFO | MB_FLAG_VIDEO_MODE);
  if (unknown !== 0) {
    const bit = 31 - Math.clz32(unknown & -unknown);
    throw new ImageError(
      "unsupported",
      `Multiboot header requires feature flag bit ${bit}, which vmxlab does not support`,
    );
  }

  let kernel: ElfLoad;
  if (flags & MB_FLAG_AOUT_KLUDGE) {
    kernel = loadAoutKludge(bytes, hdr);
  } else if (isElf(bytes)) {
    kernel = loadElf(bytes);
  } else {
    throw new ImageError(
      "malformed",
      "Multiboot image is not ELF and its header does not set the a.out kludge (flag bit 16) to give load addresses",
    );
  }
  const size = buildMultibootInfo(0, memSize).memSize;
  const at = multibootInfoAddr(kernel.segments, size);
  const info = buildMultibootInfo(at, memSize);
  return {
    format: "multiboot",
    segments: [...kernel.segments, info],
    entry: kernel.entry,
    multibootInfo: at,
  };
}

/** MULTIBOOT_INFO_ADDR, or the first page after the kernel when the kernel covers that address. */
function multibootInfoAddr(kernel: LoadSegment[], size: number): number {
  const clear = (a: number) => kernel.every((s) => a + size <= s.addr || s.addr + s.memSize <= a);
  if (clear(MULTIBOOT_INFO_ADDR)) return MULTIBOOT_INFO_ADDR;
  const end = Math.max(...kernel.map((s) => s.addr + s.memSize));
  return Math.ceil(end / 4096) * 4096;
}

/** Flag bit 16: the header carries header_addr, load_addr, load_end_addr, bss_end_addr and entry_addr. */
function loadAoutKludge(bytes: Uint8Array, hdr: number): ElfLoad {
  const n = bytes.length;
  if (hdr + 32 > n) {
    throw new ImageError(
      "truncated",
      `Truncated multiboot header: the a.out kludge fields extend to byte ${hex(hdr + 32)} but the file has ${
        hex(n)
      } bytes`,
    );
  }
  const dv = view(bytes);
  const headerAddr = dv.getUint32(hdr + 12, true);
  const loadAddr = dv.getUint32(hdr + 16, true);
  const loadEndAddr = dv.getUint32(hdr + 20, true);
  const bssEndAddr = dv.getUint32(hdr + 24, true);
  const entry = dv.getUint32(hdr + 28, true);

  if (loadAddr > headerAddr) {
    throw new ImageError(
      "malformed",
      `Malformed multiboot header: load_addr ${hex(loadAddr)} is above header_addr ${hex(headerAddr)}`,
    );
  }
  // The header's file offset corresponds to header_addr, so load_addr is (header_addr - load_addr) bytes before it.
  const fileStart = hdr - (headerAddr - loadAddr);
  if (fileStart < 0) {
    throw new ImageError(
      "malformed",
      `Malformed multiboot header: load_addr ${hex(loadAddr)} lies ${
        hex(headerAddr - loadAddr)
      } bytes before header_addr, but the header is only ${hex(hdr)} bytes into the file`,
    );
  }
  let loadSize: number;
  if (loadEndAddr === 0) {
    loadSize = n - fileStart; // 0 means the text and data run to the end of the file.
  } else {
    if (loadEndAddr < loadAddr) {
      throw new ImageError(
        "malformed",
        `Malformed multiboot header: load_end_addr ${hex(loadEndAddr)} is below load_addr ${hex(loadAddr)}`,
      );
    }
    loadSize = loadEndAddr - loadAddr;
    if (fileStart + loadSize > n) {
      throw new ImageError(
        "truncated",
        `Truncated multiboot image: load_addr..load_end_addr needs bytes up to ${
          hex(fileStart + loadSize)
        } but the file has ${hex(n)} bytes`,
      );
    }
  }
  let memSize = loadSize;
  if (bssEndAddr !== 0) {
    if (bssEndAddr < loadAddr + loadSize) {
      throw new ImageError(
        "malformed",
        `Malformed multiboot header: bss_end_addr ${hex(bssEndAddr)} is below the end of the loaded data ${
          hex(loadAddr + loadSize)
        }`,
      );
    }
    memSize = bssEndAddr - loadAddr;
  }
  if (memSize === 0) {
    throw new ImageError("malformed", "Malformed multiboot header: the a.out kludge addresses load no bytes");
  }
  return {
    segments: [{ addr: loadAddr, data: bytes.slice(fileStart, fileStart + loadSize), memSize }],
    entry,
  };
}

/**
 * The Multiboot v1 information structure (88 bytes: flags through the VBE fields, unused ones zero),
 * followed by the memory map and the boot loader name, as one segment at `addr`.
 */
function buildMultibootInfo(addr: number, memSize: number): LoadSegment {
  const regions: Array<[number, number]> = [];
  const lowTop = Math.min(memSize, LOW_MEM_TOP);
  if (lowTop > 0) regions.push([0, lowTop]);
  if (memSize > MiB) regions.push([MiB, memSize - MiB]);

  const mmapOff = MBI_SIZE;
  const mmapLength = regions.length * MBI_MMAP_ENTRY_SIZE;
  const nameOff = mmapOff + mmapLength;
  const total = nameOff + BOOT_LOADER_NAME.length + 1;
  const data = new Uint8Array(total);
  const dv = view(data);

  dv.setUint32(0, MBI_FLAG_MEM | MBI_FLAG_MMAP | MBI_FLAG_LOADER_NAME, true);
  dv.setUint32(4, Math.min(640, Math.floor(memSize / KiB)), true); // mem_lower (KiB)
  dv.setUint32(8, Math.max(0, Math.floor((memSize - MiB) / KiB)), true); // mem_upper (KiB above 1 MiB)
  dv.setUint32(44, mmapLength, true); // mmap_length
  dv.setUint32(48, addr + mmapOff, true); // mmap_addr
  dv.setUint32(64, addr + nameOff, true); // boot_loader_name

  regions.forEach(([base, length], i) => {
    const e = mmapOff + i * MBI_MMAP_ENTRY_SIZE;
    dv.setUint32(e, MBI_MMAP_ENTRY_SIZE - 4, true); // size, not counting this field
    dv.setBigUint64(e + 4, BigInt(base), true);
    dv.setBigUint64(e + 12, BigInt(length), true);
    dv.setUint32(e + 20, 1, true); // type 1: available RAM
  });
  for (let i = 0; i < BOOT_LOADER_NAME.length; i++) data[nameOff + i] = BOOT_LOADER_NAME.charCodeAt(i);
  return { addr, data, memSize: total };
}

/**
 * Every segment must lie inside [0, memSize), the segments must not overlap (this catches a
 * Multiboot kernel loaded over the information structure), and the entry point must lie inside one
 * of the image's segments (the Multiboot information does not count).
 */
function checkPlacement(image: LoadedImage, memSize: number): void {
  for (const s of image.segments) {
    const end = s.addr + s.memSize;
    if (s.addr < 0 || end > memSize) {
      throw new ImageError(
        "placement",
        `Image does not fit in RAM: segment ${rangeText(s.addr, s.memSize)} ends past the ${
          sizeText(memSize)
        } of guest memory`,
      );
    }
  }
  if (image.multibootInfo !== undefined) {
    const info = image.segments[image.segments.length - 1];
    for (const s of image.segments.slice(0, -1)) {
      if (s.addr < info.addr + info.memSize && info.addr < s.addr + s.memSize) {
        throw new ImageError(
          "placement",
          `Multiboot kernel segment ${rangeText(s.addr, s.memSize)} overlaps the multiboot information at ${
            rangeText(info.addr, info.memSize)
          }`,
        );
      }
    }
  }
  const e = image.entry;
  if (e >= memSize) {
    throw new ImageError("placement", `Entry point ${hex(e)} is outside guest memory (${sizeText(memSize)})`);
  }
  const own = image.multibootInfo !== undefined ? image.segments.slice(0, -1) : image.segments;
  if (!own.some((s) => e >= s.addr && e < s.addr + s.memSize)) {
    throw new ImageError("placement", `Entry point ${hex(e)} is not inside any loaded segment`);
  }
}

const SIZE_RE = /^(0x[0-9a-f]+|[0-9]+)(?:([kmg])(?:i?b)?)?$/i;
const SUFFIX: Record<string, bigint> = { k: 1n << 10n, m: 1n << 20n, g: 1n << 30n };

/**
 * Parses a `--mem` size: a decimal or 0x-hex whole number with an optional K, M or G suffix
 * (case-insensitive, binary units; "KiB"/"KB" etc. are accepted too), e.g. "16M", "0x1000000", "512k".
 * Throws `RangeError` for anything else, zero, or a size beyond 2^53 - 1.
 */
export function parseSize(text: string): number {
  const m = SIZE_RE.exec(text.trim());
  if (!m) {
    throw new RangeError(
      `Invalid size ${
        JSON.stringify(text)
      }: expected a whole number of bytes, decimal or 0x hex, with an optional K, M or G suffix`,
    );
  }
  const value = BigInt(m[1]) * (m[2] ? SUFFIX[m[2].toLowerCase()] : 1n);
  if (value === 0n) throw new RangeError(`Invalid size ${JSON.stringify(text)}: the size must be positive`);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`Invalid size ${JSON.stringify(text)}: the size is too large`);
  }
  return Number(value);
}

const ADDRESS_RE = /^(0x[0-9a-f]+|[0-9]+)$/i;

/** Parses a guest-physical address: a decimal or 0x-hex whole number from 0 to 0xFFFFFFFF; `RangeError` otherwise. */
export function parseAddress(text: string): number {
  const m = ADDRESS_RE.exec(text.trim());
  if (!m) {
    throw new RangeError(`Invalid address ${JSON.stringify(text)}: expected a decimal or 0x hex whole number`);
  }
  const value = BigInt(m[1]);
  if (value > 0xffffffffn) {
    throw new RangeError(`Invalid address ${JSON.stringify(text)}: it must be at most 0xFFFFFFFF`);
  }
  return Number(value);
}

import { test } from "node:test";
import { existsSync, readFileSync } from "node:fs";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { ImageError, type LoadedImage } from "./image.ts";
import { detectFormat, loadImage, MULTIBOOT_INFO_ADDR, parseAddress, parseSize } from "./loader.ts";

const MiB = 1024 * 1024;
const MEM = 16 * MiB;

// ---------------------------------------------------------------------------------------------
// Image builders (no toolchain needed)
// ---------------------------------------------------------------------------------------------

interface Phdr {
  type?: number; // default PT_LOAD
  vaddr?: number;
  paddr: number;
  data?: Uint8Array;
  memsz?: number; // default data.length
  /** Override p_offset (default: where the builder puts the data). */
  offset?: number;
  /** Override p_filesz (default data.length). */
  filesz?: number;
}

interface ElfSpec {
  entry: number;
  phdrs: Phdr[];
  cls?: number;
  data?: number;
  type?: number;
  machine?: number;
  ehsize?: number;
  phentsize?: number;
  /** Bytes to put right after the program headers (e.g. a multiboot header), before segment data. */
  prefix?: Uint8Array;
}

function fill(n: number, start = 1): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);
}

/** An ELF32 i386 executable: header, program headers, optional prefix, then each segment's data. */
function elf32(spec: ElfSpec): Uint8Array {
  const phoff = 52;
  const afterPh = phoff + spec.phdrs.length * 32;
  const prefix = spec.prefix ?? new Uint8Array(0);
  let off = afterPh + prefix.length;
  const offsets = spec.phdrs.map((p) => {
    const o = off;
    off += p.data?.length ?? 0;
    return o;
  });
  const out = new Uint8Array(off);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, spec.cls ?? 1, spec.data ?? 1, 1], 0);
  dv.setUint16(16, spec.type ?? 2, true);
  dv.setUint16(18, spec.machine ?? 3, true);
  dv.setUint32(20, 1, true);
  dv.setUint32(24, spec.entry, true);
  dv.setUint32(28, phoff, true);
  dv.setUint16(40, spec.ehsize ?? 52, true);
  dv.setUint16(42, spec.phentsize ?? 32, true);
  dv.setUint16(44, spec.phdrs.length, true);
  out.set(prefix, afterPh);
  spec.phdrs.forEach((p, i) => {
    const ph = phoff + i * 32;
    const len = p.data?.length ?? 0;
    dv.setUint32(ph, p.type ?? 1, true);
    dv.setUint32(ph + 4, p.offset ?? offsets[i], true);
    dv.setUint32(ph + 8, p.vaddr ?? p.paddr, true);
    dv.setUint32(ph + 12, p.paddr, true);
    dv.setUint32(ph + 16, p.filesz ?? len, true);
    dv.setUint32(ph + 20, p.memsz ?? len, true);
    dv.setUint32(ph + 24, 5, true);
    dv.setUint32(ph + 28, 0x1000, true);
    if (p.data) out.set(p.data, offsets[i]);
  });
  return out;
}

interface AoutFields {
  headerAddr: number;
  loadAddr: number;
  loadEndAddr: number;
  bssEndAddr: number;
  entryAddr: number;
}

/** A multiboot v1 header (12 bytes, or 32 with the a.out kludge fields) with a valid checksum unless given one. */
function mbHeader(flags: number, aout?: AoutFields, checksum?: number): Uint8Array {
  const out = new Uint8Array(aout ? 32 : 12);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0x1badb002, true);
  dv.setUint32(4, flags >>> 0, true);
  dv.setUint32(8, checksum ?? (-(0x1badb002 + flags) >>> 0), true);
  if (aout) {
    dv.setUint32(12, aout.headerAddr, true);
    dv.setUint32(16, aout.loadAddr, true);
    dv.setUint32(20, aout.loadEndAddr, true);
    dv.setUint32(24, aout.bssEndAddr, true);
    dv.setUint32(28, aout.entryAddr, true);
  }
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A flat a.out-kludge kernel: 16 bytes of code, the header at file offset 16, then 32 more bytes. */
function aoutKernel(loadAddr = 0x100000, bss = 0x1000, loadEnd?: number): Uint8Array {
  const size = 16 + 32 + 32;
  return concat(
    fill(16, 0x90),
    mbHeader(0x10003, {
      headerAddr: loadAddr + 16,
      loadAddr,
      loadEndAddr: loadEnd ?? loadAddr + size,
      bssEndAddr: bss ? loadAddr + size + bss : 0,
      entryAddr: loadAddr,
    }),
    fill(32, 0x40),
  );
}

function expectImageError(fn: () => unknown, kind: ImageError["kind"], msgIncludes?: string): ImageError {
  const err = assertThrows(fn, ImageError, msgIncludes) as ImageError;
  assertEquals(err.kind, kind, `kind of: ${err.message}`);
  return err;
}

const prot = { format: "auto" as const, memSize: MEM, mode: "protected" as const };

function readU32(seg: Uint8Array, off: number): number {
  return new DataView(seg.buffer, seg.byteOffset, seg.byteLength).getUint32(off, true);
}
function readU64(seg: Uint8Array, off: number): number {
  return Number(new DataView(seg.buffer, seg.byteOffset, seg.byteLength).getBigUint64(off, true));
}

/** Reads a u32 at a guest-physical address from the image's segments (zero in bss). */
function guestU32(img: LoadedImage, addr: number): number {
  for (const s of img.segments) {
    if (addr >= s.addr && addr + 4 <= s.addr + s.memSize) {
      const o = addr - s.addr;
      if (o + 4 > s.data.length) return 0;
      return readU32(s.data, o);
    }
  }
  throw new Error(`Address 0x${addr.toString(16)} is not in any segment`);
}

function guestString(img: LoadedImage, addr: number): string {
  const s = img.segments.find((s) => addr >= s.addr && addr < s.addr + s.data.length)!;
  let text = "";
  for (let o = addr - s.addr; s.data[o] !== 0; o++) text += String.fromCharCode(s.data[o]);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Raw
// ---------------------------------------------------------------------------------------------

test("raw image loads at 0x1000 in real mode and 0x100000 otherwise", () => {
  const bytes = fill(100);
  const real = loadImage(bytes, { format: "raw", memSize: MEM, mode: "real" });
  assertEquals(real, { format: "raw", segments: [{ addr: 0x1000, data: bytes, memSize: 100 }], entry: 0x1000 });
  for (const mode of ["protected", "paged", "long"] as const) {
    const img = loadImage(bytes, { format: "raw", memSize: MEM, mode });
    assertEquals(img.segments[0].addr, 0x100000);
    assertEquals(img.entry, 0x100000);
  }
});

test("raw image honours loadAddr and copies the bytes", () => {
  const bytes = fill(16);
  const img = loadImage(bytes, { format: "raw", loadAddr: 0x7c00, memSize: MEM, mode: "real" });
  assertEquals(img.segments[0].addr, 0x7c00);
  assertEquals(img.entry, 0x7c00);
  bytes[0] = 0xee;
  assertEquals(img.segments[0].data[0], 1);
});

test("raw image past the end of RAM is a placement error", () => {
  const err = expectImageError(
    () => loadImage(new Uint8Array(0x2000), { format: "raw", loadAddr: 0xfff000, memSize: MEM, mode: "protected" }),
    "placement",
  );
  assertEquals(
    err.message,
    "Image does not fit in RAM: segment 0xFFF000..0x1001000 ends past the 16 MiB of guest memory",
  );
});

test("invalid memSize and loadAddr options are RangeErrors", () => {
  assertThrows(() => loadImage(fill(4), { format: "raw", memSize: 0, mode: "real" }), RangeError);
  assertThrows(() => loadImage(fill(4), { format: "raw", memSize: 1.5, mode: "real" }), RangeError);
  assertThrows(() => loadImage(fill(4), { format: "raw", loadAddr: -1, memSize: MEM, mode: "real" }), RangeError);
});

test("an empty image is rejected for every format", () => {
  for (const format of ["auto", "raw", "elf", "multiboot", "rom"] as const) {
    const err = expectImageError(() => loadImage(new Uint8Array(0), { ...prot, format }), "empty");
    assertEquals(err.message, "Image is empty");
  }
});

// ---------------------------------------------------------------------------------------------
// ELF
// ---------------------------------------------------------------------------------------------

test("ELF32 loads PT_LOAD segments at p_paddr with bss and e_entry", () => {
  const text = fill(0x40);
  const data = fill(0x10, 0x80);
  const bytes = elf32({
    entry: 0x100010,
    phdrs: [
      { type: 4, paddr: 0, data: fill(8) }, // PT_NOTE: ignored
      { paddr: 0x100000, vaddr: 0xc0100000, data: text },
      { paddr: 0x101000, data, memsz: 0x2000 },
      { type: 0x6474e551, paddr: 0 }, // PT_GNU_STACK: ignored
    ],
  });
  const img = loadImage(bytes, { ...prot, format: "elf" });
  assertEquals(img, {
    format: "elf",
    entry: 0x100010,
    segments: [
      { addr: 0x100000, data: text, memSize: 0x40 },
      { addr: 0x101000, data, memSize: 0x2000 },
    ],
  });
});

test("ELF segment with p_paddr 0 falls back to p_vaddr", () => {
  const bytes = elf32({ entry: 0x200000, phdrs: [{ paddr: 0, vaddr: 0x200000, data: fill(4) }] });
  const img = loadImage(bytes, { ...prot, format: "elf" });
  assertEquals(img.segments[0].addr, 0x200000);
});

test("ELF PT_LOAD with p_memsz 0 is skipped", () => {
  const bytes = elf32({ entry: 0x100000, phdrs: [{ paddr: 0x100000, data: fill(4) }, { paddr: 0x100000, memsz: 0 }] });
  assertEquals(loadImage(bytes, { ...prot, format: "elf" }).segments.length, 1);
});

test("ELF that is not ELF is malformed", () => {
  expectImageError(() => loadImage(fill(64), { ...prot, format: "elf" }), "malformed", "Not an ELF file");
});

test("ELF with a truncated header", () => {
  const full = elf32({ entry: 0x100000, phdrs: [{ paddr: 0x100000, data: fill(4) }] });
  const err = expectImageError(() => loadImage(full.slice(0, 30), { ...prot, format: "elf" }), "truncated");
  assertEquals(err.message, "Truncated ELF: the header needs 0x34 bytes but the file has 0x1E bytes");
  expectImageError(() => loadImage(full.slice(0, 8), { ...prot, format: "elf" }), "truncated", "identification");
});

test("ELF with a truncated program header table", () => {
  const full = elf32({ entry: 0x100000, phdrs: [{ paddr: 0x100000 }, { paddr: 0x101000 }, { paddr: 0x102000 }] });
  // Cut in the middle of program header 2 (52 + 2*32 = 116 .. 148).
  const err = expectImageError(() => loadImage(full.slice(0, 130), { ...prot, format: "elf" }), "truncated");
  assertEquals(err.message, "Truncated ELF: program header 2 extends to byte 0x94 but the file has 0x82 bytes");
});

test("ELF with segment data past the end of the file", () => {
  const bytes = elf32({ entry: 0x100000, phdrs: [{ paddr: 0x100000, data: fill(16), offset: 0x1000 }] });
  const err = expectImageError(() => loadImage(bytes, { ...prot, format: "elf" }), "truncated");
  assertEquals(
    err.message,
    `Truncated ELF: the data of program header 0 extends to byte 0x1010 but the file has 0x${
      bytes.length.toString(16).toUpperCase()
    } bytes`,
  );
});

test("64-bit ELF is unsupported and mentions long mode", () => {
  const bytes = elf32({ entry: 0x100000, cls: 2, phdrs: [{ paddr: 0x100000, data: fill(4) }] });
  const err = expectImageError(() => loadImage(bytes, prot), "unsupported");
  assert(err.message.startsWith("64-bit ELF"), err.message);
  assert(err.message.includes("long mode"), err.message);
});

test("ELF with an invalid class, encoding or version is rejected", () => {
  const base = { entry: 0x100000, phdrs: [{ paddr: 0x100000, data: fill(4) }] };
  expectImageError(() => loadImage(elf32({ ...base, cls: 7 }), prot), "malformed", "Invalid ELF class 7");
  expectImageError(() => loadImage(elf32({ ...base, data: 2 }), prot), "unsupported", "Big-endian");
  expectImageError(() => loadImage(elf32({ ...base, data: 0 }), prot), "malformed", "data encoding 0");
});

test("ELF for another machine is unsupported", () => {
  const bytes = elf32({ entry: 0x100000, machine: 62, phdrs: [{ paddr: 0x100000, data: fill(4) }] });
  const err = expectImageError(() => loadImage(bytes, prot), "unsupported");
  assertEquals(err.message, "Unsupported ELF machine 62 (x86-64): only i386 (3) is supported");
});

test("ELF that is not ET_EXEC is unsupported", () => {
  const bytes = elf32({ entry: 0x100000, type: 3, phdrs: [{ paddr: 0x100000, data: fill(4) }] });
  expectImageError(() => loadImage(bytes, prot), "unsupported", "ET_DYN");
});

test("ELF with wrong header sizes is malformed", () => {
  const phdrs = [{ paddr: 0x100000, data: fill(4) }];
  expectImageError(() => loadImage(elf32({ entry: 0x100000, ehsize: 64, phdrs }), prot), "malformed", "header size 64");
  expectImageError(
    () => loadImage(elf32({ entry: 0x100000, phentsize: 56, phdrs }), prot),
    "malformed",
    "program header size 56",
  );
});

test("ELF program header table overlapping the ELF header is malformed", () => {
  const bytes = elf32({ entry: 0x100000, phdrs: [{ paddr: 0x100000, data: fill(4) }] });
  new DataView(bytes.buffer).setUint32(28, 16, true); // e_phoff
  expectImageError(() => loadImage(bytes, prot), "malformed", "program header table at 0x10 overlaps the ELF header");
});

test("ELF with overlapping PT_LOAD segments is malformed", () => {
  const bytes = elf32({
    entry: 0x100000,
    phdrs: [
      { paddr: 0x100000, data: fill(0x10), memsz: 0x2000 },
      { paddr: 0x101000, data: fill(0x10) },
    ],
  });
  const err = expectImageError(() => loadImage(bytes, prot), "malformed");
  assertEquals(
    err.message,
    "Overlapping ELF segments: program header 0 (0x100000..0x102000) overlaps program header 1 (0x101000..0x101010)",
  );
});

test("ELF without PT_LOAD is malformed", () => {
  const noLoad = elf32({ entry: 0x100000, phdrs: [{ type: 4, paddr: 0, data: fill(4) }] });
  expectImageError(() => loadImage(noLoad, prot), "malformed", "no PT_LOAD");
  const noPhdrs = elf32({ entry: 0x100000, phdrs: [] });
  expectImageError(() => loadImage(noPhdrs, prot), "malformed", "no program headers");
});

test("ELF with p_filesz above p_memsz is malformed", () => {
  const bytes = elf32({ entry: 0x100000, phdrs: [{ paddr: 0x100000, data: fill(16), memsz: 8 }] });
  expectImageError(() => loadImage(bytes, prot), "malformed", "p_filesz 0x10 larger than p_memsz 0x8");
});

test("ELF segment past the end of RAM is a placement error", () => {
  const bytes = elf32({ entry: 0x100000, phdrs: [{ paddr: 0x100000, data: fill(16), memsz: 0x2000000 }] });
  const err = expectImageError(() => loadImage(bytes, prot), "placement");
  assertEquals(
    err.message,
    "Image does not fit in RAM: segment 0x100000..0x2100000 ends past the 16 MiB of guest memory",
  );
});

test("ELF entry point outside guest memory or outside the segments is a placement error", () => {
  const outside = elf32({ entry: 0x2000000, phdrs: [{ paddr: 0x100000, data: fill(16) }] });
  const err = expectImageError(() => loadImage(outside, prot), "placement");
  assertEquals(err.message, "Entry point 0x2000000 is outside guest memory (16 MiB)");
  const stray = elf32({ entry: 0x300000, phdrs: [{ paddr: 0x100000, data: fill(16) }] });
  expectImageError(() => loadImage(stray, prot), "placement", "Entry point 0x300000 is not inside any loaded segment");
});

test("ELF entry point in bss is accepted", () => {
  const bytes = elf32({ entry: 0x100800, phdrs: [{ paddr: 0x100000, data: fill(16), memsz: 0x1000 }] });
  assertEquals(loadImage(bytes, prot).entry, 0x100800);
});

// ---------------------------------------------------------------------------------------------
// Detection
// ---------------------------------------------------------------------------------------------

test("detectFormat recognises raw, ELF and multiboot images", () => {
  const elf = elf32({ entry: 0x100000, phdrs: [{ paddr: 0x100000, data: fill(4) }] });
  assertEquals(detectFormat(new Uint8Array(0)), "raw");
  assertEquals(detectFormat(fill(512)), "raw");
  assertEquals(detectFormat(elf), "elf");
  assertEquals(detectFormat(aoutKernel()), "multiboot");
  // An ELF carrying a multiboot header is a multiboot kernel.
  const mbElf = elf32({ entry: 0x100000, prefix: mbHeader(0x3), phdrs: [{ paddr: 0x100000, data: fill(4) }] });
  assertEquals(detectFormat(mbElf), "multiboot");
});

test("detectFormat ignores misplaced or invalid multiboot headers", () => {
  // Beyond the first 8192 bytes.
  assertEquals(detectFormat(concat(new Uint8Array(8192), mbHeader(0x3))), "raw");
  // Straddling the 8192-byte limit.
  assertEquals(detectFormat(concat(new Uint8Array(8184), mbHeader(0x3))), "raw");
  // Last aligned slot that fits.
  assertEquals(detectFormat(concat(new Uint8Array(8180), mbHeader(0x3))), "multiboot");
  // Not 4-byte aligned.
  assertEquals(detectFormat(concat(new Uint8Array(2), mbHeader(0x3))), "raw");
  // Bad checksum.
  assertEquals(detectFormat(mbHeader(0x3, undefined, 0x1234)), "raw");
  // A valid header after a bad one is still found.
  assertEquals(detectFormat(concat(mbHeader(0x3, undefined, 0x1234), mbHeader(0x3))), "multiboot");
  // ELF with a bad multiboot header stays ELF.
  const elf = elf32({
    entry: 0x100000,
    prefix: mbHeader(0x3, undefined, 0),
    phdrs: [{ paddr: 0x100000, data: fill(4) }],
  });
  assertEquals(detectFormat(elf), "elf");
});

test("auto format loads each detected kind", () => {
  assertEquals(loadImage(fill(32), prot).format, "raw");
  const elf = elf32({ entry: 0x100000, phdrs: [{ paddr: 0x100000, data: fill(4) }] });
  assertEquals(loadImage(elf, prot).format, "elf");
  assertEquals(loadImage(aoutKernel(), prot).format, "multiboot");
});

// ---------------------------------------------------------------------------------------------
// Multiboot
// ---------------------------------------------------------------------------------------------

test("multiboot a.out kludge places text, data and bss", () => {
  const bytes = aoutKernel(0x100000, 0x1000);
  const img = loadImage(bytes, { ...prot, format: "multiboot" });
  assertEquals(img.format, "multiboot");
  assertEquals(img.entry, 0x100000);
  assertEquals(img.multibootInfo, MULTIBOOT_INFO_ADDR);
  assertEquals(img.segments.length, 2);
  assertEquals(img.segments[0], { addr: 0x100000, data: bytes, memSize: bytes.length + 0x1000 });
  assertEquals(img.segments[1].addr, MULTIBOOT_INFO_ADDR);
});

test("multiboot a.out kludge with the header not at load_addr skips leading file bytes", () => {
  // 32 bytes of junk, then the image proper: load_addr corresponds to file offset 32.
  const body = concat(
    fill(8, 0x90),
    mbHeader(0x10000, { headerAddr: 0x200008, loadAddr: 0x200000, loadEndAddr: 0, bssEndAddr: 0, entryAddr: 0x200000 }),
    fill(24),
  );
  const bytes = concat(new Uint8Array(32), body);
  const img = loadImage(bytes, prot);
  assertEquals(img.segments[0], { addr: 0x200000, data: body, memSize: body.length });
});

test("multiboot a.out kludge with load_end_addr 0 loads to the end of the file and no bss", () => {
  const bytes = aoutKernel(0x100000, 0, 0);
  const img = loadImage(bytes, prot);
  assertEquals(img.segments[0], { addr: 0x100000, data: bytes, memSize: bytes.length });
});

test("multiboot a.out kludge with load_end_addr inside the file loads only that much", () => {
  const bytes = aoutKernel(0x100000, 0x100, 0x100000 + 48);
  const img = loadImage(bytes, prot);
  assertEquals(img.segments[0].data, bytes.slice(0, 48));
  assertEquals(img.segments[0].memSize, 80 + 0x100);
});

test("multiboot a.out kludge errors", () => {
  // load_end_addr past the file.
  expectImageError(() => loadImage(aoutKernel(0x100000, 0, 0x100000 + 0x1000), prot), "truncated", "load_end_addr");
  // Header fields cut off by the end of the file.
  const cut = mbHeader(0x10000, {
    headerAddr: 0x100000,
    loadAddr: 0x100000,
    loadEndAddr: 0,
    bssEndAddr: 0,
    entryAddr: 0x100000,
  })
    .slice(0, 20);
  expectImageError(() => loadImage(cut, { ...prot, format: "multiboot" }), "truncated", "a.out kludge fields");
  // load_addr above header_addr.
  const above = mbHeader(0x10000, {
    headerAddr: 0x100000,
    loadAddr: 0x100010,
    loadEndAddr: 0,
    bssEndAddr: 0,
    entryAddr: 0x100010,
  });
  expectImageError(() => loadImage(above, prot), "malformed", "load_addr 0x100010 is above header_addr 0x100000");
  // bss_end_addr below the loaded data.
  const bss = mbHeader(0x10000, {
    headerAddr: 0x100000,
    loadAddr: 0x100000,
    loadEndAddr: 0,
    bssEndAddr: 0x100004,
    entryAddr: 0x100000,
  });
  expectImageError(() => loadImage(bss, prot), "malformed", "bss_end_addr 0x100004");
  // A kernel over MULTIBOOT_INFO_ADDR (0x9000) is no longer refused (issue 17): the information
  // goes to the first page after it (tests/new_user_test.ts boots one).
  const low = loadImage(aoutKernel(0x9000), prot);
  const k = low.segments[0];
  assertEquals(low.multibootInfo, Math.ceil((k.addr + k.memSize) / 4096) * 4096);
});

test("multiboot ELF kernel without the a.out kludge loads as ELF", () => {
  const bytes = elf32({
    entry: 0x100000,
    prefix: mbHeader(0x3),
    phdrs: [{ paddr: 0x100000, data: fill(0x20), memsz: 0x100 }],
  });
  const img = loadImage(bytes, prot);
  assertEquals(img.format, "multiboot");
  assertEquals(img.entry, 0x100000);
  assertEquals(img.segments.length, 2);
  assertEquals(img.segments[0], { addr: 0x100000, data: fill(0x20), memSize: 0x100 });
  assertEquals(img.multibootInfo, 0x9000);
});

test("multiboot non-ELF kernel without the a.out kludge is malformed", () => {
  expectImageError(() => loadImage(concat(mbHeader(0x3), fill(64)), prot), "malformed", "a.out kludge");
});

test("multiboot header with a bad checksum is malformed", () => {
  const bytes = concat(fill(16), mbHeader(0x10003, undefined, 0x12345678));
  const err = expectImageError(() => loadImage(bytes, { ...prot, format: "multiboot" }), "malformed");
  assertEquals(
    err.message,
    `Multiboot header at offset 0x10 has a bad checksum 0x12345678: with flags 0x10003 it must be 0x${
      (-(0x1badb002 + 0x10003) >>> 0).toString(16).toUpperCase()
    }`,
  );
  expectImageError(() => loadImage(fill(64), { ...prot, format: "multiboot" }), "malformed", "No Multiboot header");
});

test("multiboot video mode flag and unknown required flags are unsupported", () => {
  expectImageError(
    () => loadImage(concat(mbHeader(0x10007), fill(64)), prot),
    "unsupported",
    "video mode (flag bit 2)",
  );
  const err = expectImageError(() => loadImage(concat(mbHeader(0x10009), fill(64)), prot), "unsupported");
  assertEquals(err.message, "Multiboot header requires feature flag bit 3, which vmxlab does not support");
  // Unknown optional bits (17-31) are ignored.
  const k = aoutKernel();
  const withOptional = concat(
    k.slice(0, 16),
    mbHeader(0x80010003, {
      headerAddr: 0x100010,
      loadAddr: 0x100000,
      loadEndAddr: 0,
      bssEndAddr: 0,
      entryAddr: 0x100000,
    }),
    k.slice(48),
  );
  assertEquals(loadImage(withOptional, prot).format, "multiboot");
});

test("multiboot information structure contents", () => {
  const img = loadImage(aoutKernel(), { ...prot, memSize: 32 * MiB });
  const info = img.segments[img.segments.length - 1];
  const base = img.multibootInfo!;
  assertEquals(base, 0x9000);
  assertEquals(info.addr, base);
  assertEquals(info.memSize, info.data.length);

  const flags = guestU32(img, base);
  assertEquals(flags, (1 << 0) | (1 << 6) | (1 << 9));
  assertEquals(guestU32(img, base + 4), 640); // mem_lower
  assertEquals(guestU32(img, base + 8), (32 * MiB - MiB) / 1024); // mem_upper
  assertEquals(guestU32(img, base + 20), 0); // mods_count

  const mmapLength = guestU32(img, base + 44);
  const mmapAddr = guestU32(img, base + 48);
  assertEquals(mmapLength, 48);
  const entries: Array<[number, number, number]> = [];
  for (let p = mmapAddr; p < mmapAddr + mmapLength;) {
    const o = p - info.addr;
    const size = readU32(info.data, o);
    entries.push([readU64(info.data, o + 4), readU64(info.data, o + 12), readU32(info.data, o + 20)]);
    p += size + 4;
  }
  assertEquals(entries, [
    [0, 0x9fc00, 1],
    [0x100000, 31 * MiB, 1],
  ]);
  assertEquals(guestString(img, guestU32(img, base + 64)), "vmxlab");
});

test("multiboot information does not fit in a tiny RAM", () => {
  expectImageError(
    () => loadImage(aoutKernel(0x1000, 0), { ...prot, memSize: 0x9000 }),
    "placement",
    "ends past the 36 KiB of guest memory",
  );
});

// ---------------------------------------------------------------------------------------------
// ROM
// ---------------------------------------------------------------------------------------------

test("ROM is placed to end at 1 MiB with the reset vector entry", () => {
  const rom = fill(64 * 1024);
  const img = loadImage(rom, { format: "rom", memSize: MEM, mode: "real" });
  assertEquals(img, {
    format: "rom",
    segments: [{ addr: 0xf0000, data: rom, memSize: 0x10000 }],
    entry: 0xffff0,
    romSize: 0x10000,
  });
  assertEquals(loadImage(fill(4096), { format: "rom", memSize: MEM, mode: "real" }).segments[0].addr, 0xff000);
  assertEquals(loadImage(new Uint8Array(MiB), { format: "rom", memSize: MEM, mode: "real" }).segments[0].addr, 0);
});

test("ROM is not checked against RAM size and is never auto-detected", () => {
  const rom = fill(128 * 1024);
  assertEquals(loadImage(rom, { format: "rom", memSize: 64 * 1024, mode: "real" }).romSize, 128 * 1024);
  assertEquals(loadImage(rom, { ...prot, format: "auto" }).format, "raw");
});

test("ROM size must be a power of two from 4 KiB to 1 MiB", () => {
  const opts = { format: "rom" as const, memSize: MEM, mode: "real" as const };
  const err = expectImageError(() => loadImage(fill(3000), opts), "malformed");
  assertEquals(err.message, "ROM image size 0xBB8 bytes is not a power of two from 4 KiB to 1 MiB");
  expectImageError(() => loadImage(fill(2048), opts), "malformed", "power of two");
  expectImageError(() => loadImage(fill(96 * 1024), opts), "malformed", "power of two");
  expectImageError(() => loadImage(new Uint8Array(2 * MiB), opts), "placement", "does not fit below 1 MiB");
});

// ---------------------------------------------------------------------------------------------
// A real guest built by tests/guests/build.sh
// ---------------------------------------------------------------------------------------------

test("loads tests/guests/cguest_O2.elf as readelf -l describes it", () => {
  const path = new URL("../../tests/guests/cguest_O2.elf", import.meta.url);
  if (!existsSync(path)) return; // Built by tests/guests/build.sh; nothing to check without it.
  const bytes = new Uint8Array(readFileSync(path));
  // Hard-coded from `readelf -h -l tests/guests/cguest_O2.elf` (entry point 0x100000):
  //   Type  Offset   VirtAddr   PhysAddr   FileSiz MemSiz  Flg Align
  //   LOAD  0x001000 0x00100000 0x00100000 0x023ac 0x023ac R E 0x1000
  //   LOAD  0x004000 0x00103000 0x00103000 0x00028 0x14384 RW  0x1000
  // If the guest is rebuilt from changed sources, update these numbers from readelf.
  assertEquals(detectFormat(bytes), "elf");
  const img = loadImage(bytes, { format: "auto", memSize: MEM, mode: "protected" });
  assertEquals(img.format, "elf");
  assertEquals(img.entry, 0x100000);
  assertEquals(
    img.segments.map((s) => ({ addr: s.addr, fileSize: s.data.length, memSize: s.memSize })),
    [
      { addr: 0x100000, fileSize: 0x23ac, memSize: 0x23ac },
      { addr: 0x103000, fileSize: 0x28, memSize: 0x14384 },
    ],
  );
  assertEquals(img.segments[0].data, bytes.slice(0x1000, 0x1000 + 0x23ac));
  assertEquals(img.segments[1].data, bytes.slice(0x4000, 0x4000 + 0x28));
});

// ---------------------------------------------------------------------------------------------
// parseSize / parseAddress
// ---------------------------------------------------------------------------------------------

test("parseSize accepts decimal, hex and binary suffixes", () => {
  assertEquals(parseSize("4096"), 4096);
  assertEquals(parseSize("0x1000"), 4096);
  assertEquals(parseSize("0X1000"), 4096);
  assertEquals(parseSize("512k"), 512 * 1024);
  assertEquals(parseSize("16M"), 16 * MiB);
  assertEquals(parseSize("16m"), 16 * MiB);
  assertEquals(parseSize("1G"), 1024 * MiB);
  assertEquals(parseSize("0x10M"), 16 * MiB);
  assertEquals(parseSize("16MiB"), 16 * MiB);
  assertEquals(parseSize("16MB"), 16 * MiB);
  assertEquals(parseSize("0x1b"), 27); // a hex digit, not a "bytes" suffix
  assertEquals(parseSize(" 8M "), 8 * MiB);
});

test("parseSize rejects malformed, zero, fractional and huge sizes", () => {
  for (const bad of ["", "abc", "16X", "1.5M", "-1", "0x", "M", "16 M", "1e6", "0xg", "16Mi"]) {
    assertThrows(() => parseSize(bad), RangeError, "Invalid size");
  }
  assertThrows(() => parseSize("0"), RangeError, "must be positive");
  assertThrows(() => parseSize("0K"), RangeError, "must be positive");
  assertThrows(() => parseSize("99999999999999999999G"), RangeError, "too large");
});

test("parseAddress accepts decimal and hex from 0 to 0xFFFFFFFF", () => {
  assertEquals(parseAddress("0"), 0);
  assertEquals(parseAddress("4096"), 4096);
  assertEquals(parseAddress("0x7c00"), 0x7c00);
  assertEquals(parseAddress("0xFFFFFFFF"), 0xffffffff);
  assertEquals(parseAddress("4294967295"), 0xffffffff);
});

test("parseAddress rejects other text and out-of-range values", () => {
  for (const bad of ["", "x", "-1", "1K", "0x", "1.0", "0x1_000"]) {
    assertThrows(() => parseAddress(bad), RangeError, "Invalid address");
  }
  assertThrows(() => parseAddress("0x100000000"), RangeError, "at most 0xFFFFFFFF");
  assertThrows(() => parseAddress("4294967296"), RangeError, "at most 0xFFFFFFFF");
});

/**
 * The bzImage loader against the boot protocol's own numbers (Documentation/x86/boot.rst and
 * zero-page.rst in the kernel source): field offsets, the e820 layout, the placement rules, and the
 * refusals. The committed test kernel (tests/guests/linux) is the real image; synthetic headers
 * cover the malformed ones.
 */
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { assert, assertEquals, assertMatch, assertThrows } from "../../tests/assert.ts";
import { REPO } from "../../tests/run_cli.ts";
import { ImageError } from "./image.ts";
import { BOOT_PARAMS_ADDR, CMDLINE_ADDR, isBzImage, loadBzImage, parseBzImage } from "./bzimage.ts";
import { detectFormat, loadImage } from "./loader.ts";
import { Machine } from "./machine.ts";

const MiB = 1 << 20;
const kernel = new Uint8Array(readFileSync(`${REPO}/tests/guests/linux/bzImage`));
const initrd = new Uint8Array(readFileSync(`${REPO}/tests/guests/linux/initramfs.cpio.gz`));

function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}
function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}
function u64(b: Uint8Array, o: number): number {
  return u32(b, o) + u32(b, o + 4) * 2 ** 32;
}

/** A minimal image with a setup header: `setup_sects` 1, so the protected-mode part starts at 1024. */
function synthetic(edit: (b: Uint8Array, dv: DataView) => void = () => {}): Uint8Array {
  const b = new Uint8Array(1024 + 4096);
  const dv = new DataView(b.buffer);
  b[0x1f1] = 1; // setup_sects
  dv.setUint16(0x1fe, 0xaa55, true);
  b[0x200] = 0xeb; b[0x201] = 0x6a; // jmp to the end of the header (0x26C)
  dv.setUint32(0x202, 0x53726448, true); // "HdrS"
  dv.setUint16(0x206, 0x020f, true); // 2.15
  b[0x211] = 1; // LOADED_HIGH
  dv.setUint32(0x214, 0x100000, true); // code32_start
  dv.setUint32(0x22c, 0x7fffffff, true); // initrd_addr_max
  dv.setUint32(0x230, 0x200000, true); // kernel_alignment
  dv.setUint32(0x238, 2047, true); // cmdline_size
  dv.setBigUint64(0x258, 0x1000000n, true); // pref_address
  dv.setUint32(0x260, 0x400000, true); // init_size
  edit(b, dv);
  return b;
}

test("isBzImage() and detectFormat() know the test kernel by its boot flag and HdrS", () => {
  assert(isBzImage(kernel));
  assertEquals(detectFormat(kernel), "bzimage");
  assert(!isBzImage(initrd));
  assert(!isBzImage(new Uint8Array(0x300)));
});

test("parseBzImage() reads the test kernel's setup header", () => {
  const h = parseBzImage(kernel);
  assertEquals(h.protocol, 0x020f); // Linux 6.1 speaks boot protocol 2.15
  assertMatch(h.version, /^6\.1\.\d+ \(vmxlab@vmxlab\)/);
  assertEquals(h.code32Start, 0x100000);
  assertEquals(h.relocatable, false); // tinyconfig: CONFIG_RELOCATABLE off, so it runs at pref_address
  assertEquals(h.runtimeStart, 0x1000000); // CONFIG_PHYSICAL_START
  assertEquals(h.setupSects, kernel[0x1f1]);
  assert(h.initSize > kernel.length, "init_size covers the decompressed kernel");
});

test("loadBzImage() builds the zero page: the setup header, loader fields and an e820 map of RAM", () => {
  const mem = 128 * MiB;
  const img = loadBzImage(kernel, { memSize: mem, initrd, cmdline: "console=ttyS0 quiet" });
  assertEquals(img.format, "bzimage");
  assertEquals(img.entry, 0x100000);
  assertEquals(img.bootParams, BOOT_PARAMS_ADDR);
  const bp = img.segments.find((s) => s.addr === BOOT_PARAMS_ADDR)!.data;
  const headerEnd = 0x202 + kernel[0x201];
  // The setup header is copied from 0x1F1 to its end, then the loader's fields are written.
  for (const o of [0x1f1, 0x202, 0x206, 0x214, 0x230, 0x258, 0x260]) assertEquals(bp[o], kernel[o], `header byte 0x${o.toString(16)}`);
  assertEquals(bp[headerEnd], 0, "nothing past the header");
  assertEquals(bp[0x210], 0xff, "type_of_loader: no assigned id");
  assertEquals(u32(bp, 0x228), CMDLINE_ADDR);
  const cmd = img.segments.find((s) => s.addr === CMDLINE_ADDR)!.data;
  assertEquals(new TextDecoder().decode(cmd), "console=ttyS0 quiet\0");
  // The initrd: page aligned, ending at or below the end of RAM, above the kernel's runtime range.
  const rdAddr = u32(bp, 0x218), rdSize = u32(bp, 0x21c);
  assertEquals(rdSize, initrd.length);
  assertEquals(rdAddr % 4096, 0);
  assert(rdAddr + rdSize <= mem && rdAddr + rdSize > mem - 4096, "as high as RAM allows");
  assert(rdAddr >= 0x1000000 + u32(kernel, 0x260), "above pref_address + init_size");
  assertEquals([...img.segments.find((s) => s.addr === rdAddr)!.data.subarray(0, 2)], [0x1f, 0x8b]); // gzip
  // The e820 map (zero-page.rst: count at 0x1E8, 20-byte entries at 0x2D0).
  assertEquals(bp[0x1e8], 4);
  const e820 = [0, 1, 2, 3].map((i) => [u64(bp, 0x2d0 + i * 20), u64(bp, 0x2d8 + i * 20), u32(bp, 0x2e0 + i * 20)]);
  assertEquals(e820, [[0, 0x9fc00, 1], [0x9fc00, 0x400, 2], [0xf0000, 0x10000, 2], [MiB, mem - MiB, 1]]);
  assertEquals(u32(bp, 0x1e0), (mem - MiB) / 1024, "alt_mem_k");
  assertEquals(bp[0x1ef], 0, "sentinel");
  // The protected-mode kernel is the file from sector setup_sects + 1 on, at 1 MiB.
  const pm = img.segments.find((s) => s.addr === 0x100000)!.data;
  assertEquals(pm.length, kernel.length - (kernel[0x1f1] + 1) * 512);
  assertEquals(pm[0], kernel[(kernel[0x1f1] + 1) * 512]);
});

test("loadBzImage() refuses a bad boot flag, the old protocol, a protocol before 2.10 and a zImage", () => {
  const bad = (b: Uint8Array, re: RegExp, kind: string) => {
    const e = assertThrows(() => loadBzImage(b, { memSize: 128 * MiB }), ImageError) as ImageError;
    assertMatch(e.message, re);
    assertEquals(e.kind, kind);
  };
  loadBzImage(synthetic(), { memSize: 128 * MiB }); // the synthetic image itself loads
  bad(synthetic((b) => { b[0x1fe] = 0; }), /no boot flag 0xAA55/, "malformed");
  bad(synthetic((b) => { b[0x202] = 0x58; }), /old boot protocol \(no "HdrS"/, "unsupported");
  bad(synthetic((_, dv) => dv.setUint16(0x206, 0x0209, true)), /boot protocol 2\.09 is too old: 2\.10 or later/, "unsupported");
  bad(synthetic((b) => { b[0x211] = 0; }), /zImage/, "unsupported");
  bad(kernel.slice(0, 0x300), /ends at 768 bytes, inside its \d+-sector setup/, "truncated");
  bad(kernel.slice(0, 100), /too short for a Linux setup header/, "truncated");
});

test("loadBzImage() refuses a kernel or an initrd that does not fit, and a command line that is too long", () => {
  const e1 = assertThrows(() => loadBzImage(kernel, { memSize: 16 * MiB }), ImageError) as ImageError;
  assertEquals(e1.kind, "placement");
  assertMatch(e1.message, /^Linux kernel does not fit in 16 MiB of RAM: it needs memory up to 0x[0-9A-F]+ .*give the machine at least \d+ MiB$/);
  const e2 = assertThrows(() => loadBzImage(kernel, { memSize: 24 * MiB, initrd: new Uint8Array(8 * MiB) }), ImageError) as ImageError;
  assertMatch(e2.message, /^Initrd of 8388608 bytes does not fit in 24 MiB of RAM above the kernel/);
  const e3 = assertThrows(() => loadBzImage(synthetic(), { memSize: 128 * MiB, cmdline: "x".repeat(2048) }), ImageError) as ImageError;
  assertMatch(e3.message, /command line of 2048 bytes is longer than the kernel's cmdline_size \(2047\)/);
  assertThrows(() => loadBzImage(kernel, { memSize: 128 * MiB, cmdline: "café" }), ImageError);
  // An initrd must stay below initrd_addr_max.
  const img = loadBzImage(synthetic((_, dv) => dv.setUint32(0x22c, 0x2ffffff, true)), { memSize: 128 * MiB, initrd: new Uint8Array(5000) });
  assertEquals(img.segments[4].addr, 0x3000000 - 8192);
});

test("Machine.load() enters a bzImage as the 32-bit boot protocol says, and loadImage() takes it as format bzimage", () => {
  const m = new Machine({ memSize: 128 * MiB }); // a real-mode machine: the loader sets the CPU up itself
  m.load(kernel, { initrd, cmdline: "console=ttyS0" });
  const r = m.vcpu.getRegs(), s = m.vcpu.getSregs();
  assertEquals([r.rip, r.rsi, r.rbx, r.rbp, r.rdi], [0x100000, BOOT_PARAMS_ADDR, 0, 0, 0]);
  assertEquals(r.rflags & 0x200, 0, "interrupts off");
  assertEquals([s.cs.selector, s.ds.selector, s.es.selector, s.ss.selector], [0x10, 0x18, 0x18, 0x18]);
  assertEquals([s.cs.base, s.cs.limit, s.ds.limit, s.cs.db], [0, 0xffffffff, 0xffffffff, 1]);
  assertEquals(s.cr0 & 0x80000001, 1, "protected mode, paging off");
  // The GDT in memory holds the same flat descriptors at 0x10 and 0x18.
  const gdt = m.vm.readGuest(s.gdt.base, s.gdt.limit + 1);
  assertEquals([u32(gdt, 0x10), u32(gdt, 0x14), u32(gdt, 0x18), u32(gdt, 0x1c)], [0xffff, 0x00cf9a00, 0xffff, 0x00cf9200]);
  assertEquals([...m.vm.readGuest(BOOT_PARAMS_ADDR + 0x202, 4)], [0x48, 0x64, 0x72, 0x53]);
  const paged = new Machine({ mode: "paged", memSize: 128 * MiB });
  assertMatch((assertThrows(() => paged.load(kernel), ImageError) as Error).message, /paging off/);
  const raw = new Machine({ mode: "protected" });
  assertThrows(() => raw.load(new Uint8Array([0xf4]), { format: "raw", cmdline: "x" }));
  assertEquals(loadImage(kernel, { format: "auto", memSize: 128 * MiB, mode: "protected" }).format, "bzimage");
});

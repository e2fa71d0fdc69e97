/**
 * The JIT's code cache: a region compiled by one machine is instantiated, not compiled again, by
 * another machine running the same code under the same assumptions, with the same results; code
 * that differs in a byte, a load address or a segment is compiled anew.
 */
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { assert, assertEquals } from "../tests/assert.ts";
import { firstDifference, type GuestSpec, runGuest } from "../tests/jit_diff.ts";
import { CodeCache } from "./engine.ts";

const crc32 = new Uint8Array(readFileSync(new URL("../tests/guests/pm_crc32.bin", import.meta.url)));
const CRC: GuestSpec = { mode: "protected", image: crc32 };

test("a second machine running the same guest takes every region from the code cache, with the same results", async () => {
  const a = await runGuest(CRC, "jit");
  const b = await runGuest(CRC, "jit");
  const ref = await runGuest(CRC, "interp");
  assert(a.jit!.stats.regions > 0);
  assertEquals(b.jit!.stats.cached, b.jit!.stats.regions, "every region of the second run is a cache hit");
  assertEquals(b.jit!.stats.regions, a.jit!.stats.regions);
  assertEquals(firstDifference(a.sum, b.sum), null);
  assertEquals(firstDifference(ref.sum, b.sum), null);
});

test("codeCache: false compiles every region", async () => {
  await runGuest(CRC, "jit");
  const b = await runGuest(CRC, "jit", { codeCache: false });
  assert(b.jit!.stats.regions > 0);
  assertEquals(b.jit!.stats.cached, 0);
});

test("a changed byte of code misses the cache where the change is, and runs the new code", async () => {
  await runGuest(CRC, "jit");
  // The CRC-32 polynomial, an immediate in the hot loop (0xEDB88320 little-endian): change it.
  const poly = [0x20, 0x83, 0xb8, 0xed];
  const at = crc32.findIndex((_, i) => poly.every((v, k) => crc32[i + k] === v));
  assert(at > 0, "the polynomial is in the image");
  const patched = crc32.slice();
  patched[at] ^= 0x01;
  const g: GuestSpec = { mode: "protected", image: patched };
  const a = await runGuest(g, "jit");
  const ref = await runGuest(g, "interp");
  assert(a.jit!.stats.cached < a.jit!.stats.regions, `${a.jit!.stats.cached} of ${a.jit!.stats.regions} regions from the cache`);
  assertEquals(firstDifference(ref.sum, a.sum), null);
  const orig = await runGuest(CRC, "interp");
  assert(ref.sum.console !== orig.sum.console, "the patched guest prints another CRC");
});

test("the same code loaded elsewhere is compiled anew", async () => {
  // mov eax, [ds:0x10]; add eax, 1; mov [ds:0x10], eax; dec ecx; jnz; hlt, at two load addresses.
  const code = new Uint8Array([0xb9, 0x10, 0, 0, 0, 0xa1, 0x10, 0, 0, 0, 0x83, 0xc0, 0x01, 0xa3, 0x10, 0, 0, 0, 0x49, 0x75, 0xf1, 0xf4]);
  const at = (load: number): GuestSpec => ({ mode: "protected", image: code, load, regs: { rip: load, rsp: 0x80000 } });
  await runGuest(at(0x100000), "jit");
  const again = await runGuest(at(0x100000), "jit");
  assertEquals(again.jit!.stats.cached, again.jit!.stats.regions);
  const moved = await runGuest(at(0x180000), "jit");
  assertEquals(moved.jit!.stats.cached, 0, "another EIP is another key");
  const ref = await runGuest(at(0x180000), "interp");
  assertEquals(firstDifference(ref.sum, moved.sum), null);
});

test("the same loop under another data segment base is compiled anew", async () => {
  // Real mode: mov ax, SEG; mov ds, ax; mov cx, 5; l: inc word [0x10]; dec cx; jnz l; hlt. The loop's
  // bytes and EIP are the same for both segments; the DS base compiled into its address is not.
  const loop = (seg: number) => new Uint8Array([0xb8, seg & 0xff, seg >> 8, 0x8e, 0xd8, 0xb9, 0x05, 0x00, 0xff, 0x06, 0x10, 0x00, 0x49, 0x75, 0xf9, 0xf4]);
  const g = (seg: number): GuestSpec => ({ mode: "real", image: loop(seg), load: 0x1000, regs: { rip: 0x1000, rsp: 0x8000 } });
  const a = await runGuest(g(0x1000), "jit");
  const b = await runGuest(g(0x2000), "jit");
  assert(a.jit!.stats.regions > 0);
  assertEquals(b.jit!.stats.cached, 0);
  const ref = await runGuest(g(0x2000), "interp");
  assertEquals(firstDifference(ref.sum, b.sum), null);
  assertEquals(b.m.vm.readGuest(0x20010, 2)[0], 5, "the loop counted at DS:0x10 with DS=0x2000");
});

test("CodeCache keeps the most recently used entries up to its capacity", () => {
  const c = new CodeCache(2);
  const v = (n: number) => ({ module: null, blocks: [], usedSegs: n, inline: 0, callouts: 0, guarded: new Set<number>(), exitSites: [], allEntries: false });
  c.set("a", v(1));
  c.set("b", v(2));
  assertEquals(c.get("a")?.usedSegs, 1); // a is now the most recently used
  c.set("c", v(3)); // evicts b
  assertEquals(c.get("b"), undefined);
  assertEquals(c.get("a")?.usedSegs, 1);
  assertEquals(c.get("c")?.usedSegs, 3);
  assertEquals(c.size, 2);
});

/**
 * REP MOVS / REP STOS copy a page-bounded chunk at a time (ops.ts repBulk). These tests hold the
 * fast path to the element-by-element definition (SDM MOVS/STOS with REP): overlap, page and
 * segment-limit boundaries, the budget between elements, and the retired-instruction count.
 */
import { test } from "node:test";
import { assertEquals } from "../../tests/assert.ts";
import { runCode } from "../../tests/cpu_harness.ts";

const REP_MOVSB = [0xf3, 0xa4], REP_MOVSD = [0xf3, 0xa5], REP_STOSD = [0xf3, 0xab], REP_STOSB = [0xf3, 0xaa];
const HLT = 0xf4;

test("rep movsb with the destination one byte above the source repeats the first byte, as element-wise copying does", () => {
  const r = runCode([...REP_MOVSB, HLT], {
    mode: "protected", regs: { rsi: 0x20000, rdi: 0x20001, rcx: 100 }, mem: [[0x20000, [0x5a, 1, 2, 3]]],
  });
  assertEquals([...r.h.read(0x20000, 101)], new Array(101).fill(0x5a));
  assertEquals([r.regs.rsi, r.regs.rdi, r.regs.rcx], [0x20064, 0x20065, 0]);
});

test("rep movsd across several pages copies every byte and counts one instruction per element", () => {
  const src = Array.from({ length: 3 * 4096 + 12 }, (_, k) => (k * 7 + 3) & 0xff);
  const n = src.length / 4;
  const r = runCode([...REP_MOVSD, HLT], {
    mode: "protected", regs: { rsi: 0x30ffe, rdi: 0x50003, rcx: n }, mem: [[0x30ffe, src]],
  });
  assertEquals([...r.h.read(0x50003, src.length)], src);
  assertEquals(r.insns, n + 1); // n iterations + HLT
  assertEquals(r.regs.rcx, 0);
});

test("rep stosd fills a pattern whose bytes differ, aligned and unaligned", () => {
  for (const at of [0x40000, 0x40001]) {
    const r = runCode([...REP_STOSD, HLT], { mode: "protected", regs: { rax: 0x11223344, rdi: at, rcx: 2000 } });
    const got = r.h.read(at, 8000);
    const dv = new DataView(got.buffer, got.byteOffset);
    for (let k = 0; k < 2000; k++) if (dv.getUint32(k * 4, true) !== 0x11223344) throw new Error(`element ${k} at 0x${at.toString(16)}`);
    assertEquals(r.regs.rdi, at + 8000);
  }
});

test("the budget stops rep stosb between elements with RIP at the instruction, and it resumes exactly", () => {
  const r = runCode([...REP_STOSB, HLT], { mode: "protected", regs: { rax: 0x77, rdi: 0x60000, rcx: 10000 }, maxInsns: 4321 });
  assertEquals(r.exit.reason, "budget");
  assertEquals(r.insns, 4321);
  assertEquals([r.regs.rcx, r.regs.rdi, r.regs.rip], [10000 - 4321, 0x60000 + 4321, 0x1000]);
  assertEquals([r.h.read8(0x60000 + 4320), r.h.read8(0x60000 + 4321)], [0x77, 0]);
  const r2 = r.h.run();
  assertEquals(r2.exit.reason, "hlt");
  assertEquals(r2.insns, 10000 - 4321 + 1);
  assertEquals(r2.h.read8(0x60000 + 9999), 0x77);
});

test("real-mode rep movsw stops at the 64 KiB limit with #GP at the element that crosses it, earlier elements done", () => {
  // IVT entry for #GP (13) at 0:0x34 -> handler at 0x2000: hlt
  const r = runCode([0xf3, 0xa5, HLT], {
    regs: { rsi: 0xfff1, rdi: 0x100, rcx: 20 },
    mem: [[13 * 4, [0x00, 0x20, 0x00, 0x00]], [0x2000, [HLT]], [0xfff1, Array.from({ length: 15 }, (_, k) => k + 1)]],
  });
  // Words at DS:FFF1 .. DS:FFFD copy (7 of them); the 8th, at DS:FFFF, crosses the limit: #GP.
  assertEquals(r.regs.rip, 0x2001);
  assertEquals([...r.h.read(0x100, 14)], Array.from({ length: 14 }, (_, k) => k + 1));
  assertEquals(r.h.read8(0x100 + 14), 0);
  assertEquals(r.h.read16(0x8000 - 6), 0x1000); // the pushed IP is the REP MOVSW itself
  assertEquals([r.regs.rcx & 0xffff, r.regs.rsi & 0xffff], [13, 0xffff]);
});

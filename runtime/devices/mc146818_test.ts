/** The MC146818A RTC/CMOS against its data sheet: registers, formats, UIP, interrupts, the clock. */
import { test } from "node:test";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { Mc146818, RTC_DEFAULT_START } from "./mc146818.ts";

const S = 1_000_000_000;

function rtc(start = Date.UTC(2024, 1, 29, 23, 59, 58) / 1000, memSize = 0) {
  let now = 0;
  const edges: [number, boolean][] = [];
  const r = new Mc146818({ clock: () => now, start, memSize, irq: (l) => edges.push([now, l]) });
  const rd = (reg: number) => { r.write(0x70, 1, reg); return r.read(0x71, 1); };
  const wr = (reg: number, v: number) => { r.write(0x70, 1, reg); r.write(0x71, 1, v); };
  return { r, rd, wr, edges, at: (ns: number) => { now = ns; }, now: () => now };
}

test("Mc146818 reads the date in BCD, 24-hour, by default, and it runs on virtual time", () => {
  const { rd, at } = rtc(); // 2024-02-29 23:59:58 UTC, a Thursday
  assertEquals([rd(0), rd(2), rd(4), rd(6), rd(7), rd(8), rd(9), rd(0x32)], [0x58, 0x59, 0x23, 5, 0x29, 0x02, 0x24, 0x20]);
  at(2 * S); // two seconds later: the leap day ends
  assertEquals([rd(0), rd(2), rd(4), rd(6), rd(7), rd(8), rd(9)], [0x00, 0x00, 0x00, 6, 0x01, 0x03, 0x24]);
  at(2 * S - 1);
  assertEquals(rd(0), 0x59);
});

test("Mc146818 gives binary and 12-hour formats when register B asks (DM, 24/12)", () => {
  const { rd, wr } = rtc(Date.UTC(2030, 6, 4, 13, 5, 9) / 1000);
  wr(0x0b, 0x04); // binary, 12-hour
  assertEquals([rd(0), rd(2), rd(4), rd(9)], [9, 5, 0x80 | 1, 30]); // 1 PM
  wr(0x0b, 0x00); // BCD, 12-hour
  assertEquals(rd(4), 0x81);
  wr(0x0b, 0x06); // binary, 24-hour
  assertEquals(rd(4), 13);
});

test("Mc146818 sets UIP for the 244 µs before each update, and never while SET holds the clock", () => {
  const { rd, wr, at } = rtc(RTC_DEFAULT_START);
  at(S - 244_001);
  assertEquals(rd(0x0a) & 0x80, 0);
  at(S - 244_000);
  assertEquals(rd(0x0a) & 0x80, 0x80);
  at(S - 1);
  assertEquals(rd(0x0a), 0xa6, "UIP with the divider and rate a BIOS leaves (0x26)");
  at(S);
  assertEquals(rd(0x0a) & 0x80, 0);
  wr(0x0b, 0x82); // SET
  at(2 * S - 100);
  assertEquals(rd(0x0a) & 0x80, 0);
});

test("Mc146818 keeps a date the guest sets under SET, and runs on from it when SET is cleared", () => {
  const { rd, wr, at } = rtc(RTC_DEFAULT_START);
  at(S / 2);
  wr(0x0b, 0x82); // SET, 24-hour
  wr(0x09, 0x99); wr(0x08, 0x12); wr(0x07, 0x31); wr(0x04, 0x23); wr(0x02, 0x59); wr(0x00, 0x59);
  at(5 * S);
  assertEquals([rd(0), rd(9)], [0x59, 0x99], "stopped while SET");
  wr(0x0b, 0x02);
  at(6 * S - 1);
  assertEquals(rd(0), 0x59);
  at(6 * S);
  assertEquals([rd(0), rd(2), rd(4), rd(7), rd(8), rd(9)], [0, 0, 0, 0x01, 0x01, 0x00]); // 2100-01-01 (century 20 + 99 rolls over)
});

test("Mc146818 raises IRQ8 at the periodic rate, holds it until register C is read, and clears the flags then", () => {
  const { r, rd, wr, at, edges } = rtc(RTC_DEFAULT_START);
  wr(0x0a, 0x26); // 32.768 kHz, RS = 6: 976.5625 µs
  wr(0x0b, 0x42); // PIE
  assertEquals(r.nextEventTime, 976_563); // ceil(976562.5)
  at(976_562);
  r.update();
  assertEquals(edges.length, 0);
  at(976_563);
  r.update();
  assertEquals(edges, [[976_563, true]]);
  assertEquals(r.nextEventTime, Infinity, "nothing more can rise while IRQF is set");
  at(3_000_000);
  assertEquals(rd(0x0c), 0xc0, "IRQF and PF");
  assertEquals(edges[1], [3_000_000, false]);
  assertEquals(rd(0x0c), 0, "read clears");
  assertEquals(r.nextEventTime, 3_906_250);
  wr(0x0a, 0x2f); // RS = 15: 500 ms
  assertEquals(r.nextEventTime, 500_000_000);
  wr(0x0a, 0x21); // RS = 1: 3.90625 ms (the data sheet's exception for rates 1 and 2)
  assertEquals(r.nextEventTime, 3_906_250);
  wr(0x0a, 0x20); // RS = 0: none
  assertEquals(r.nextEventTime, Infinity);
});

test("Mc146818 raises the alarm interrupt when the time matches, with don't-care bytes, and the update interrupt each second", () => {
  const { r, rd, wr, at, edges } = rtc(Date.UTC(2026, 0, 1, 10, 0, 0) / 1000);
  wr(0x01, 0x05); wr(0x03, 0xc0); wr(0x05, 0xff); // alarm at second 5 of any minute of any hour
  wr(0x0b, 0x22); // AIE
  assertEquals(r.nextEventTime, 5 * S);
  at(5 * S);
  r.update();
  assertEquals(edges, [[5 * S, true]]);
  assertEquals(rd(0x0c) & 0xa0, 0xa0, "IRQF and AF");
  assertEquals(r.nextEventTime, 65 * S);
  wr(0x0b, 0x12); // UIE only
  assertEquals(r.nextEventTime, 6 * S);
  at(6 * S + 5);
  assertEquals(rd(0x0c), 0xd0, "IRQF and UF, and PF: the periodic flag is set at the BIOS's rate even with PIE off");
  wr(0x0b, 0x02);
  at(100 * S);
  assertEquals(rd(0x0c), 0x70, "PF, AF (second 65) and UF are set whatever the enables; IRQF only for enabled ones");
});

test("Mc146818 holds the PC/AT memory-size bytes and their checksum, and 114 bytes of free CMOS RAM", () => {
  const { rd, wr } = rtc(RTC_DEFAULT_START, 32 << 20);
  assertEquals(rd(0x15) | (rd(0x16) << 8), 640);
  assertEquals(rd(0x17) | (rd(0x18) << 8), 31 * 1024);
  assertEquals(rd(0x30) | (rd(0x31) << 8), 31 * 1024);
  assertEquals(rd(0x34) | (rd(0x35) << 8), (16 << 20) >> 16);
  let sum = 0;
  for (let i = 0x10; i <= 0x2d; i++) sum += rd(i);
  assertEquals((rd(0x2e) << 8) | rd(0x2f), sum);
  assertEquals(rd(0x0d), 0x80, "VRT: the battery is good");
  wr(0x50, 0xab);
  assertEquals(rd(0x50), 0xab);
  wr(0x0c, 0xff);
  assertEquals(rd(0x0c), 0, "register C is read only");
  const big = rtc(RTC_DEFAULT_START, 128 << 20);
  assertEquals(big.rd(0x17) | (big.rd(0x18) << 8), 0xffff, "extended memory saturates at 0xFFFF KiB");
  assertEquals(big.rd(0x34) | (big.rd(0x35) << 8), (112 << 20) >> 16);
});

test("Mc146818 takes the NMI mask from port 0x70 bit 7 and answers only its two ports", () => {
  const { r, rd } = rtc();
  r.write(0x70, 1, 0x80 | 0x0d);
  assert(r.nmiMasked);
  assertEquals(r.read(0x71, 1), 0x80);
  assertEquals(r.read(0x70, 1), 0xff);
  assertEquals(r.read(0x71, 2), 0xff80);
  assertEquals(rd(0x0d), 0x80);
  assertThrows(() => r.read(0x72, 1));
  assertThrows(() => new Mc146818({ clock: () => 0, start: NaN }), RangeError);
});

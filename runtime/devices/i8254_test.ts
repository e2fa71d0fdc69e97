import { test } from "node:test";
import { assert, assertEquals } from "../../tests/assert.ts";
import { I8254, PIT_HZ, pitTicksAt, pitTickTime } from "./i8254.ts";
import { PioBus } from "./pio_bus.ts";

/** A PIT on a settable virtual clock (ns), counting IRQ0 pulses. */
function pitOnClock() {
  const s = { now: 0, irqs: 0, level: false, pit: null as unknown as I8254 };
  s.pit = new I8254({
    clock: () => s.now,
    irq0: (level) => {
      if (level && !s.level) s.irqs++;
      s.level = level;
    },
  });
  return s;
}
/** Move the clock to clock pulse `tick` (the first nanosecond at which it has happened). */
const atTick = (s: { now: number }, tick: number) => { s.now = pitTickTime(tick); };
function program(pit: I8254, ch: number, mode: number, count: number, access = 3, bcd = false): void {
  pit.write(0x43, 1, (ch << 6) | (access << 4) | (mode << 1) | (bcd ? 1 : 0));
  if (access !== 2) pit.write(0x40 + ch, 1, count & 0xff);
  if (access !== 1) pit.write(0x40 + ch, 1, (count >> 8) & 0xff);
}
function latchedCount(pit: I8254, ch: number): number {
  pit.write(0x43, 1, ch << 6);
  return pit.read(0x40 + ch, 1) | (pit.read(0x40 + ch, 1) << 8);
}
function status(pit: I8254, ch: number): number {
  pit.write(0x43, 1, 0xe0 | (2 << ch)); // read-back: status only
  return pit.read(0x40 + ch, 1);
}

test("pitTicksAt and pitTickTime convert between virtual ns and 1.193182 MHz pulses exactly", () => {
  assertEquals(PIT_HZ, 1193182);
  assertEquals(pitTicksAt(0), 0);
  assertEquals(pitTicksAt(838), 0);
  assertEquals(pitTicksAt(839), 1);
  assertEquals(pitTicksAt(1_000_000_000), PIT_HZ);
  assertEquals(pitTickTime(1), 839);
  assertEquals(pitTickTime(PIT_HZ), 1_000_000_000);
  for (const t of [1, 12345, 2 ** 40 + 7, 2 ** 52 + 3]) {
    const k = pitTicksAt(t);
    assert(pitTickTime(k) <= t && pitTickTime(k + 1) > t, `pulse boundaries around ${t}`);
  }
  assertEquals(pitTicksAt(2 ** 53 - 1), Number((2n ** 53n - 1n) * 1193182n / 1000000000n));
});

test("I8254 claims 0x40-0x43 and port 0x61", () => {
  const bus = new PioBus();
  const { pit } = pitOnClock();
  bus.attach(pit);
  for (const p of [0x40, 0x41, 0x42, 0x43, 0x61]) assertEquals(bus.find(p), pit);
  const quiet = new I8254({ clock: () => 0, speakerPort: false });
  assertEquals(quiet.ports, [{ first: 0x40, last: 0x43 }]);
});

test("I8254 has no event before channel 0 is programmed", () => {
  const s = pitOnClock();
  assertEquals(s.pit.nextEventTime, Infinity);
  atTick(s, 1_000_000);
  assertEquals(s.pit.update(), false);
  assertEquals(s.irqs, 0);
});

test("I8254 mode 2 pulses IRQ0 every N clocks, counting from the pulse after the write", () => {
  const s = pitOnClock();
  program(s.pit, 0, 2, 100);
  assertEquals(s.pit.nextEventTime, pitTickTime(101));
  atTick(s, 1);
  assertEquals(latchedCount(s.pit, 0), 100);
  atTick(s, 50);
  assertEquals(latchedCount(s.pit, 0), 51);
  atTick(s, 100);
  assertEquals(latchedCount(s.pit, 0), 1);
  assertEquals(status(s.pit, 0) & 0x80, 0, "OUT low for the clock at count 1");
  s.now = pitTickTime(101) - 1;
  assertEquals(s.pit.update(), false);
  atTick(s, 101);
  assertEquals(s.pit.update(), true);
  assertEquals(s.irqs, 1);
  assertEquals(s.level, false, "IRQ0 is a pulse");
  assertEquals(latchedCount(s.pit, 0), 100);
  assertEquals(s.pit.nextEventTime, pitTickTime(201));
  for (let k = 2; k <= 5; k++) {
    atTick(s, 1 + 100 * k);
    s.pit.update();
  }
  assertEquals(s.irqs, 5);
});

test("I8254 coalesces edges nobody observed into one IRQ0 pulse", () => {
  const s = pitOnClock();
  program(s.pit, 0, 2, 10);
  atTick(s, 1000);
  s.pit.update();
  assertEquals(s.irqs, 1);
  assertEquals(s.pit.nextEventTime, pitTickTime(1001));
});

test("I8254 mode 0 raises OUT once at terminal count and keeps counting down", () => {
  const s = pitOnClock();
  program(s.pit, 0, 0, 50);
  assertEquals(status(s.pit, 0) & 0xc0, 0x40, "OUT low, null count until the load");
  atTick(s, 1);
  assertEquals(status(s.pit, 0) & 0xc0, 0x00);
  atTick(s, 51);
  assertEquals(s.pit.update(), true);
  assertEquals(status(s.pit, 0) & 0x80, 0x80);
  assertEquals(s.pit.nextEventTime, Infinity, "one shot");
  atTick(s, 53);
  assertEquals(latchedCount(s.pit, 0), 0xfffe, "the counter wraps");
  atTick(s, 1_000_000);
  assertEquals(s.pit.update(), false);
  assertEquals(s.irqs, 1);
});

test("I8254 mode 0 stops counting after the first byte of a two-byte count", () => {
  const s = pitOnClock();
  program(s.pit, 0, 0, 50);
  atTick(s, 10);
  s.pit.write(0x40, 1, 20);
  assertEquals(s.pit.nextEventTime, Infinity);
  atTick(s, 100);
  assertEquals(s.pit.update(), false);
  s.pit.write(0x40, 1, 0);
  assertEquals(s.pit.nextEventTime, pitTickTime(121));
});

test("I8254 mode 3 makes a square wave on OUT2, seen at port 0x61 bit 5 with the gate on", () => {
  const s = pitOnClock();
  s.pit.write(0x61, 1, 0x01); // gate 2 on, speaker off
  program(s.pit, 2, 3, 10);
  const out2 = () => (s.pit.read(0x61, 1) >> 5) & 1;
  const seen: number[] = [];
  for (let k = 1; k <= 21; k++) {
    atTick(s, k);
    seen.push(out2());
  }
  assertEquals(seen, [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1]);
  assertEquals(s.pit.read(0x61, 1) & 3, 1, "gate readable, speaker data off");
});

test("I8254 mode 3 with an odd count stays high one clock longer than low", () => {
  const s = pitOnClock();
  s.pit.write(0x61, 1, 0x01);
  program(s.pit, 2, 3, 5);
  const seen: number[] = [];
  for (let k = 1; k <= 10; k++) {
    atTick(s, k);
    seen.push((s.pit.read(0x61, 1) >> 5) & 1);
  }
  assertEquals(seen, [1, 1, 1, 0, 0, 1, 1, 1, 0, 0]);
});

test("I8254 channel 2 does not count while its gate is low (mode 0)", () => {
  const s = pitOnClock();
  program(s.pit, 2, 0, 30);
  atTick(s, 100);
  assertEquals(latchedCount(s.pit, 2), 30, "gate low since reset");
  s.pit.write(0x61, 1, 0x01);
  atTick(s, 111);
  assertEquals(latchedCount(s.pit, 2), 20);
  s.pit.write(0x61, 1, 0x00);
  atTick(s, 200);
  assertEquals(latchedCount(s.pit, 2), 20, "paused");
  s.pit.write(0x61, 1, 0x01);
  atTick(s, 220);
  assertEquals((s.pit.read(0x61, 1) >> 5) & 1, 1, "terminal count after 20 more clocks");
  atTick(s, 219);
});

test("I8254 mode 2 reloads on a rising gate", () => {
  const s = pitOnClock();
  s.pit.write(0x61, 1, 0x01);
  program(s.pit, 2, 2, 100);
  atTick(s, 41);
  assertEquals(latchedCount(s.pit, 2), 60);
  s.pit.write(0x61, 1, 0x00);
  atTick(s, 60);
  assertEquals((s.pit.read(0x61, 1) >> 5) & 1, 1, "OUT forced high");
  s.pit.write(0x61, 1, 0x01);
  atTick(s, 61);
  assertEquals(latchedCount(s.pit, 2), 100);
});

test("I8254 mode 2 takes a new count at the end of the current period", () => {
  const s = pitOnClock();
  program(s.pit, 0, 2, 100);
  atTick(s, 30);
  s.pit.write(0x40, 1, 50);
  s.pit.write(0x40, 1, 0);
  assertEquals(s.pit.nextEventTime, pitTickTime(101), "the period in progress completes");
  assertEquals(status(s.pit, 0) & 0x40, 0x40, "null count until the reload");
  atTick(s, 101);
  s.pit.update();
  assertEquals(s.pit.nextEventTime, pitTickTime(151));
  atTick(s, 120);
  assertEquals(latchedCount(s.pit, 0), 31);
});

test("I8254 mode 4 strobes once, one clock after terminal count", () => {
  const s = pitOnClock();
  program(s.pit, 0, 4, 10);
  assertEquals(s.pit.nextEventTime, pitTickTime(12));
  atTick(s, 11);
  assertEquals(status(s.pit, 0) & 0x80, 0);
  atTick(s, 12);
  assertEquals(s.pit.update(), true);
  assertEquals(s.pit.nextEventTime, Infinity);
});

test("I8254 modes 1 and 5 wait for a gate trigger, which channel 0 never gets", () => {
  const s = pitOnClock();
  program(s.pit, 0, 1, 10);
  assertEquals(s.pit.nextEventTime, Infinity);
  program(s.pit, 2, 5, 10);
  atTick(s, 5);
  s.pit.write(0x61, 1, 0x01); // trigger
  atTick(s, 16);
  assertEquals((s.pit.read(0x61, 1) >> 5) & 1, 0, "mode 5 strobe");
  atTick(s, 17);
  assertEquals((s.pit.read(0x61, 1) >> 5) & 1, 1);
});

test("I8254 counter latch holds the value until both bytes are read", () => {
  const s = pitOnClock();
  program(s.pit, 0, 2, 1000);
  atTick(s, 101);
  s.pit.write(0x43, 1, 0x00);
  atTick(s, 500);
  s.pit.write(0x43, 1, 0x00); // ignored: a count is already latched
  assertEquals(s.pit.read(0x40, 1), 900 & 0xff);
  atTick(s, 600);
  assertEquals(s.pit.read(0x40, 1), 900 >> 8);
  assertEquals(latchedCount(s.pit, 0), 1000 - 599);
});

test("I8254 reads and writes LSB-only and MSB-only counts", () => {
  const s = pitOnClock();
  program(s.pit, 1, 2, 0x34, 1);
  atTick(s, 1);
  assertEquals(s.pit.read(0x41, 1), 0x34);
  assertEquals(s.pit.read(0x41, 1), 0x34, "LSB only: every read is the LSB");
  program(s.pit, 1, 2, 0x1200, 2);
  atTick(s, 2);
  assertEquals(s.pit.read(0x41, 1), 0x12);
});

test("I8254 counts in BCD and takes 0 as the largest count", () => {
  const s = pitOnClock();
  program(s.pit, 1, 2, 0x1234, 3, true);
  atTick(s, 1 + 34);
  assertEquals(latchedCount(s.pit, 1), 0x1200);
  program(s.pit, 0, 2, 0);
  assertEquals(s.pit.nextEventTime, pitTickTime(36 + 0x10000));
  program(s.pit, 0, 2, 0, 3, true);
  assertEquals(s.pit.nextEventTime, pitTickTime(36 + 10000));
});

test("I8254 read-back latches status before count", () => {
  const s = pitOnClock();
  program(s.pit, 0, 2, 500);
  atTick(s, 101);
  s.pit.write(0x43, 1, 0xc2); // read-back count and status of channel 0
  assertEquals(s.pit.read(0x40, 1), 0x80 | 0x30 | (2 << 1), "OUT high, LSB/MSB, mode 2, binary");
  assertEquals(s.pit.read(0x40, 1) | (s.pit.read(0x40, 1) << 8), 400);
});

test("I8254 reads modes 6 and 7 as 2 and 3", () => {
  const s = pitOnClock();
  program(s.pit, 0, 7, 100);
  assertEquals((status(s.pit, 0) >> 1) & 7, 3);
});

test("I8254 port 0x61 bit 4 toggles with the virtual refresh clock", () => {
  const s = pitOnClock();
  const bit = () => (s.pit.read(0x61, 1) >> 4) & 1;
  const a = bit();
  s.now += 15085;
  assertEquals(bit(), a ^ 1);
  assertEquals(s.pit.read(0x43, 1), 0xff, "the control register is write-only");
});

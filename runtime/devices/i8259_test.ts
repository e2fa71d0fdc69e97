import { test } from "node:test";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { I8259Pair } from "./i8259.ts";
import { PioBus } from "./pio_bus.ts";

/** The PC BIOS's programming: master at vector 0x08 (here `mbase`), slave at 0x70 (`sbase`). */
function pcPic(mbase = 0x20, sbase = 0x28, icw4 = 0x01): I8259Pair {
  const pic = new I8259Pair();
  pic.write(0x20, 1, 0x11); // ICW1: edge, cascade, ICW4 follows
  pic.write(0x21, 1, mbase); // ICW2
  pic.write(0x21, 1, 0x04); // ICW3: a slave on IR2
  pic.write(0x21, 1, icw4); // ICW4: 8086 mode
  pic.write(0xa0, 1, 0x11);
  pic.write(0xa1, 1, sbase);
  pic.write(0xa1, 1, 0x02); // ICW3: slave id 2
  pic.write(0xa1, 1, icw4);
  return pic;
}
const pulse = (pic: I8259Pair, irq: number) => { pic.setIrq(irq, true); pic.setIrq(irq, false); };
const eoi = (pic: I8259Pair, port = 0x20) => pic.write(port, 1, 0x20);
const readIsr = (pic: I8259Pair, port = 0x20) => { pic.write(port, 1, 0x0b); const v = pic.read(port, 1); pic.write(port, 1, 0x0a); return v; };

test("I8259Pair claims the master, slave and ELCR ports on a bus", () => {
  const bus = new PioBus();
  const pic = new I8259Pair();
  bus.attach(pic);
  for (const p of [0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1]) assertEquals(bus.find(p), pic);
  assertEquals(bus.find(0x22), undefined);
});

test("I8259Pair delivers IRQ0 as the ICW2 vector base and sets ISR on INTA", () => {
  const pic = pcPic(0x08);
  assertEquals(pic.output, false);
  pulse(pic, 0);
  assertEquals(pic.output, true);
  assertEquals(pic.read(0x20, 1), 0x01, "IRR holds the request");
  assertEquals(pic.readIrq(), 0x08);
  assertEquals(pic.output, false);
  assertEquals(readIsr(pic), 0x01);
  assertEquals(pic.read(0x20, 1), 0x00, "INTA cleared IRR");
  eoi(pic);
  assertEquals(readIsr(pic), 0);
});

test("I8259Pair ignores the low three bits of ICW2", () => {
  const pic = pcPic(0x27);
  pulse(pic, 3);
  assertEquals(pic.readIrq(), 0x23);
});

test("I8259Pair keeps a masked request in IRR and delivers it when OCW1 unmasks it", () => {
  const pic = pcPic();
  pic.write(0x21, 1, 0x01);
  assertEquals(pic.read(0x21, 1), 0x01, "OCW1 reads back from the data port");
  pulse(pic, 0);
  assertEquals(pic.output, false);
  assertEquals(pic.read(0x20, 1) & 1, 1);
  pic.write(0x21, 1, 0x00);
  assertEquals(pic.output, true);
  assertEquals(pic.readIrq(), 0x20);
});

test("I8259Pair nests by priority: a higher IRQ interrupts a lower one in service, not the reverse", () => {
  const pic = pcPic();
  pulse(pic, 3);
  assertEquals(pic.readIrq(), 0x23);
  pulse(pic, 5);
  assertEquals(pic.output, false, "IRQ5 waits while IRQ3 is in service");
  pulse(pic, 1);
  assertEquals(pic.output, true, "IRQ1 has a higher priority");
  assertEquals(pic.readIrq(), 0x21);
  assertEquals(readIsr(pic), 0x0a);
  eoi(pic); // non-specific: ends IRQ1, the highest in service
  assertEquals(readIsr(pic), 0x08);
  assertEquals(pic.output, false);
  eoi(pic);
  assertEquals(pic.output, true);
  assertEquals(pic.readIrq(), 0x25);
});

test("I8259Pair specific EOI clears the named level only", () => {
  const pic = pcPic();
  pulse(pic, 4);
  pic.readIrq();
  pulse(pic, 1);
  pic.readIrq();
  assertEquals(readIsr(pic) & 0x12, 0x12);
  pic.write(0x20, 1, 0x60 | 4); // specific EOI for IR4
  assertEquals(readIsr(pic) & 0x12, 0x02);
});

test("I8259Pair routes IRQ8-15 through the slave and the master's IR2", () => {
  const pic = pcPic(0x08, 0x70);
  pulse(pic, 12);
  assertEquals(pic.output, true);
  assertEquals(pic.read(0xa0, 1), 0x10, "slave IRR");
  assertEquals(pic.readIrq(), 0x74);
  assertEquals(readIsr(pic, 0xa0), 0x10);
  assertEquals(readIsr(pic), 0x04, "the master has the cascade in service");
  eoi(pic, 0xa0);
  eoi(pic);
  assertEquals(readIsr(pic, 0xa0), 0);
  assertEquals(readIsr(pic), 0);
});

test("I8259Pair masks the whole slave through the master's IMR bit 2", () => {
  const pic = pcPic();
  pic.write(0x21, 1, 0x04);
  pulse(pic, 9);
  assertEquals(pic.output, false);
  pic.write(0x21, 1, 0x00);
  // The slave's INT was already up: the master saw its edge while masked and kept it in IRR.
  assertEquals(pic.output, true);
  assertEquals(pic.readIrq(), 0x29);
});

test("I8259Pair gives the spurious IR7 vector when the request vanished before INTA", () => {
  const pic = pcPic();
  pic.setIrq(5, true);
  pic.write(0x21, 1, 0x20); // masked after the CPU saw INT
  assertEquals(pic.readIrq(), 0x27);
  assertEquals(readIsr(pic), 0, "no ISR bit for a spurious interrupt");
});

test("I8259Pair detects edges: a line held high requests once", () => {
  const pic = pcPic();
  pic.setIrq(1, true);
  assertEquals(pic.readIrq(), 0x21);
  eoi(pic);
  pic.setIrq(1, true);
  assertEquals(pic.output, false, "no new edge");
  pic.setIrq(1, false);
  pic.setIrq(1, true);
  assertEquals(pic.output, true);
});

test("I8259Pair keeps an edge request latched after the line drops", () => {
  const pic = pcPic();
  pic.setIrq(6, true);
  pic.setIrq(6, false);
  assertEquals(pic.output, true);
  assertEquals(pic.readIrq(), 0x26);
});

test("I8259Pair ICW1 resets IMR, ISR and the edge latch", () => {
  const pic = pcPic();
  pic.write(0x21, 1, 0xff);
  pic.setIrq(3, true);
  pic.write(0x21, 1, 0);
  pic.readIrq();
  pic.write(0x20, 1, 0x11);
  pic.write(0x21, 1, 0x40);
  pic.write(0x21, 1, 0x04);
  pic.write(0x21, 1, 0x01);
  assertEquals(pic.read(0x21, 1), 0, "IMR cleared");
  assertEquals(readIsr(pic), 0, "ISR cleared");
  assertEquals(pic.output, false, "the held line needs a new low-to-high transition");
  pic.setIrq(3, false);
  pic.setIrq(3, true);
  assertEquals(pic.readIrq(), 0x43);
});

test("I8259Pair follows the line for level-triggered IRQs (ELCR) and does not clear IRR on INTA", () => {
  const pic = pcPic();
  pic.write(0x4d1, 1, 0xff);
  assertEquals(pic.read(0x4d1, 1), 0xde, "IRQ8 and IRQ13 cannot be level triggered");
  pic.write(0x4d0, 1, 0x20);
  assertEquals(pic.read(0x4d0, 1), 0x20);
  pic.setIrq(5, true);
  assertEquals(pic.readIrq(), 0x25);
  assertEquals(pic.read(0x20, 1) & 0x20, 0x20, "IRR still set while the line is high");
  eoi(pic);
  assertEquals(pic.output, true, "still requesting");
  pic.setIrq(5, false);
  assertEquals(pic.output, false);
});

test("I8259Pair treats every input as level triggered with ICW1.LTIM", () => {
  const pic = new I8259Pair();
  for (const [p, v] of [[0x20, 0x19], [0x21, 0x30], [0x21, 0x04], [0x21, 0x01]]) pic.write(p, 1, v);
  pic.setIrq(4, true);
  pic.setIrq(4, false);
  assertEquals(pic.output, false);
});

test("I8259Pair ends the interrupt itself in automatic-EOI mode", () => {
  const pic = pcPic(0x20, 0x28, 0x03);
  pulse(pic, 4);
  assertEquals(pic.readIrq(), 0x24);
  assertEquals(readIsr(pic), 0);
  pulse(pic, 6);
  assertEquals(pic.output, true, "nothing in service blocks IRQ6");
});

test("I8259Pair rotates priorities on a rotating EOI and with set priority", () => {
  const pic = pcPic();
  pulse(pic, 0);
  pic.readIrq();
  pic.write(0x20, 1, 0xa0); // rotate on non-specific EOI: IRQ0 becomes the lowest
  pulse(pic, 0);
  pulse(pic, 7);
  assertEquals(pic.readIrq(), 0x27, "IRQ7 now outranks IRQ0");
  pic.write(0x20, 1, 0x60 | 7); // specific EOI
  pic.write(0x20, 1, 0xc0 | 4); // set priority: IRQ4 lowest, IRQ5 highest
  pulse(pic, 5);
  assertEquals(pic.readIrq(), 0x25, "IRQ5 before the pending IRQ0");
});

test("I8259Pair rotates in automatic-EOI mode after OCW2 0x80", () => {
  const pic = pcPic(0x20, 0x28, 0x03);
  pic.write(0x20, 1, 0x80);
  pulse(pic, 1);
  assertEquals(pic.readIrq(), 0x21);
  pulse(pic, 1);
  pulse(pic, 3);
  assertEquals(pic.readIrq(), 0x23, "IRQ1 became the lowest after its automatic EOI");
});

test("I8259Pair answers a poll with 0x80 | level and acknowledges the request", () => {
  const pic = pcPic();
  pic.write(0x20, 1, 0x0c); // OCW3 poll
  assertEquals(pic.read(0x20, 1), 0x00, "nothing requested");
  pulse(pic, 6);
  pic.write(0x20, 1, 0x0c);
  assertEquals(pic.read(0x21, 1), 0x86, "either port answers the poll");
  assertEquals(readIsr(pic), 0x40);
  assertEquals(pic.read(0x21, 1), 0x00, "the next read is the IMR again");
});

test("I8259Pair special mask mode lets lower levels through while a masked one is in service", () => {
  const pic = pcPic();
  pulse(pic, 3);
  pic.readIrq(); // IRQ3 in service
  pic.write(0x21, 1, 0x08);
  pic.write(0x20, 1, 0x68); // OCW3: set special mask
  pulse(pic, 5);
  assertEquals(pic.output, true);
  assertEquals(pic.readIrq(), 0x25);
  pic.write(0x20, 1, 0x48); // reset special mask
  pulse(pic, 6);
  assertEquals(pic.output, false);
});

test("I8259Pair special fully nested mode lets a higher slave request through while IR2 is in service", () => {
  const pic = new I8259Pair();
  for (const [p, v] of [[0x20, 0x11], [0x21, 0x20], [0x21, 0x04], [0x21, 0x11], [0xa0, 0x11], [0xa1, 0x28], [0xa1, 0x02], [0xa1, 0x01]]) pic.write(p, 1, v);
  pulse(pic, 12);
  assertEquals(pic.readIrq(), 0x2c);
  pulse(pic, 9);
  assertEquals(pic.output, true);
  assertEquals(pic.readIrq(), 0x29);
});

test("I8259Pair.wouldInterrupt says whether an edge on a line would raise INT", () => {
  const pic = pcPic();
  assertEquals(pic.wouldInterrupt(0), true);
  pic.write(0x21, 1, 0x01);
  assertEquals(pic.wouldInterrupt(0), false, "masked");
  pic.write(0x21, 1, 0x00);
  pulse(pic, 0);
  pic.readIrq();
  assertEquals(pic.wouldInterrupt(0), false, "IRQ0 in service blocks itself");
  assertEquals(pic.wouldInterrupt(8), false, "and the cascade");
  eoi(pic);
  assertEquals(pic.wouldInterrupt(8), true);
  pic.write(0xa1, 1, 0x01);
  assertEquals(pic.wouldInterrupt(8), false);
});

test("I8259Pair calls onOutput when INT rises", () => {
  const pic = pcPic();
  let n = 0;
  pic.onOutput = () => n++;
  pulse(pic, 0);
  pulse(pic, 1);
  assertEquals(n, 1, "INT was already up for IRQ1");
  assert(pic.output);
});

test("I8259Pair.setIrq refuses lines outside 0-15", () => {
  const pic = new I8259Pair();
  assertThrows(() => pic.setIrq(16, true), RangeError, "Invalid PIC IRQ: 16");
});

/** The 8042 keyboard controller and the 0xCF9 reset register, against the PC/AT command set. */
import { test } from "node:test";
import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { I8042, ResetControl } from "./i8042.ts";
import { Uart16550 } from "./uart16550.ts";

function kbc() {
  const resets: string[] = [];
  const irq1: boolean[] = [];
  const k = new I8042({ onReset: (s) => resets.push(s), irq1: (l) => irq1.push(l) });
  const cmd = (c: number) => k.write(0x64, 1, c);
  const data = (v: number) => k.write(0x60, 1, v);
  const read = () => k.read(0x60, 1);
  const status = () => k.read(0x64, 1);
  return { k, resets, irq1, cmd, data, read, status };
}

test("I8042 passes its self-test (0x55) and port tests, with OBF set while a byte waits", () => {
  const { cmd, read, status } = kbc();
  assertEquals(status() & 0x03, 0, "nothing waiting, input buffer empty");
  cmd(0xaa);
  assertEquals(status() & 0x0d, 0x0d, "OBF, SYS, and A2: the last write was a command");
  assertEquals(read(), 0x55);
  assertEquals(status() & 1, 0);
  cmd(0xab);
  assertEquals(read(), 0x00);
  cmd(0xa9);
  assertEquals(read(), 0x00);
});

test("I8042 reads and writes the command byte, and raises IRQ1 for a byte in its output buffer when the command byte enables it", () => {
  const { cmd, data, read, irq1 } = kbc();
  cmd(0x20);
  assertEquals(irq1, [true]);
  assertEquals(read(), 0x45, "keyboard interrupt, system flag, translation");
  assertEquals(irq1, [true, false]);
  irq1.length = 0;
  cmd(0x60);
  data(0x44); // interrupts off
  cmd(0x20);
  assertEquals(read(), 0x44);
  data(0xf2); // identify the keyboard
  assertEquals([read(), read(), read()], [0xfa, 0xab, 0x83]);
  assertEquals(irq1, []);
  cmd(0x60);
  data(0x45);
  data(0xff); // keyboard reset
  assertEquals(irq1, [true]);
  assertEquals([read(), read()], [0xfa, 0xaa]);
  assertEquals(irq1, [true, false]);
});

test("I8042 keeps the A20 gate in its output port (0xD1/0xD0, 0xDD/0xDF)", () => {
  const { k, cmd, data, read } = kbc();
  cmd(0xd0);
  assertEquals(read() & 0x03, 0x03, "running, A20 on");
  cmd(0xd1);
  data(0x01);
  assertEquals(k.a20, false);
  cmd(0xd0);
  assertEquals(read() & 0x03, 0x01);
  cmd(0xdf);
  assertEquals(k.a20, true);
  cmd(0xdd);
  assertEquals(k.a20, false);
});

test("I8042 resets the machine on the 0xFE pulse and on an output-port write with bit 0 clear, not on other pulses", () => {
  const { resets, cmd, data } = kbc();
  cmd(0xff); // pulse no line
  cmd(0xfd); // pulse line 1 (A20), not reset
  assertEquals(resets, []);
  cmd(0xfe);
  assertEquals(resets, ["i8042 command 0xfe (pulse reset line)"]);
  cmd(0xd1);
  data(0x02);
  assertEquals(resets.length, 2);
});

test("ResetControl resets on a 0-to-1 edge of bit 2 at port 0xCF9, as Linux's reboot=pci writes it", () => {
  const resets: string[] = [];
  const r = new ResetControl({ onReset: (s) => resets.push(s) });
  r.write(0xcf9, 1, 0x02);
  assertEquals(resets, []);
  assertEquals(r.read(0xcf9, 1), 0x02);
  r.write(0xcf9, 1, 0x06);
  assertEquals(resets, ["port 0xcf9 write 0x6 (hard reset)"]);
  assertThrows(() => r.read(0xcf8, 1));
});

test("Uart16550 with out2Gate reports INTR only while MCR.OUT2 is set, as a PC wires IRQ4", () => {
  const levels: boolean[] = [];
  const u = new Uart16550(() => {}, { onInterrupt: (l) => levels.push(l), out2Gate: true });
  u.write(0x3f9, 1, 0x01); // IER: received data
  u.feed("a");
  assertEquals(u.interruptPending(), true);
  assertEquals(levels, [], "OUT2 is off: the line stays low");
  u.write(0x3fc, 1, 0x08); // MCR.OUT2
  assertEquals(levels, [true]);
  u.read(0x3f8, 1);
  assertEquals(levels, [true, false]);
  assertEquals(u.interruptEnable, 0x01);
});

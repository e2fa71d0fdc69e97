import { test } from "node:test";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { DeviceError } from "./device.ts";
import { PioBus } from "./pio_bus.ts";
import { Uart16550 } from "./uart16550.ts";

const COM1 = 0x3f8;
const THR = COM1, RBR = COM1, DLL = COM1, IER = COM1 + 1, DLM = COM1 + 1, IIR = COM1 + 2, FCR = COM1 + 2;
const LCR = COM1 + 3, MCR = COM1 + 4, LSR = COM1 + 5, MSR = COM1 + 6, SCR = COM1 + 7;

function uart(): { u: Uart16550; out: number[] } {
  const out: number[] = [];
  return { u: new Uart16550((b) => out.push(b)), out };
}

test("Uart16550 claims eight ports at COM1 by default and at a configurable base", () => {
  assertEquals(uart().u.ports, [{ first: 0x3f8, last: 0x3ff }]);
  assertEquals(uart().u.name, "serial");
  const com2 = new Uart16550(() => {}, { base: 0x2f8, name: "com2" });
  assertEquals(com2.ports, [{ first: 0x2f8, last: 0x2ff }]);
  assertEquals(com2.name, "com2");
  const bus = new PioBus();
  bus.attach(uart().u);
  bus.attach(com2);
  assertEquals(bus.find(0x2fd)?.name, "com2");
});

test("Uart16550 refuses a base with no room for eight ports", () => {
  const err = assertThrows(() => new Uart16550(() => {}, { base: 0xfff9 }), DeviceError);
  assertEquals((err as DeviceError).kind, "range");
  assertEquals(err.message, 'Invalid base port for device "serial": 65529 (expected an integer in 0x0..0xfff8)');
  new Uart16550(() => {}, { base: 0xfff8 });
});

test("Uart16550 sends a THR write to the sink at once and keeps THRE and TEMT set", () => {
  const { u, out } = uart();
  assertEquals(u.read(LSR, 1), 0x60);
  for (const ch of "ok\r\n") u.write(THR, 1, ch.charCodeAt(0));
  assertEquals(String.fromCharCode(...out), "ok\r\n");
  assertEquals(u.read(LSR, 1), 0x60);
});

test("Uart16550 sets LSR.DR while fed bytes wait and pops them from RBR", () => {
  const { u } = uart();
  u.feed("ab");
  u.feed(new Uint8Array([0xff]));
  assertEquals(u.pendingInput, 3);
  assertEquals(u.read(LSR, 1) & 0x01, 1);
  assertEquals(u.read(RBR, 1), 0x61);
  assertEquals(u.read(RBR, 1), 0x62);
  assertEquals(u.read(LSR, 1), 0x61);
  assertEquals(u.read(RBR, 1), 0xff);
  assertEquals(u.read(LSR, 1), 0x60);
  assertEquals(u.read(RBR, 1), 0, "an empty FIFO reads 0");
  assertEquals(u.pendingInput, 0);
});

test("Uart16550.feed() encodes strings as UTF-8", () => {
  const { u } = uart();
  u.feed("é");
  assertEquals([u.read(RBR, 1), u.read(RBR, 1)], [0xc3, 0xa9]);
});

test("Uart16550 keeps a long input in order", () => {
  const { u } = uart();
  const data = new Uint8Array(10000).map((_, i) => i & 0xff);
  u.feed(data);
  const got = new Uint8Array(10000);
  for (let i = 0; i < got.length; i++) got[i] = u.read(RBR, 1);
  assertEquals(got, data);
  assertEquals(u.read(LSR, 1) & 1, 0);
});

test("Uart16550 reads and writes the divisor latch while LCR.DLAB is set", () => {
  const { u, out } = uart();
  u.write(IER, 1, 0x00);
  u.write(LCR, 1, 0x80);
  u.write(DLL, 1, 0x03);
  u.write(DLM, 1, 0x01);
  assertEquals(u.read(DLL, 1), 0x03);
  assertEquals(u.read(DLM, 1), 0x01);
  assertEquals(u.divisor, 0x0103);
  assertEquals(out, [], "a DLL write is not transmitted");
  u.write(LCR, 1, 0x03);
  assertEquals(u.read(LCR, 1), 0x03);
  assertEquals(u.read(IER, 1), 0x00, "IER is back at offset 1");
  u.feed("x");
  assertEquals(u.read(RBR, 1), 0x78);
  assertEquals(u.divisor, 0x0103);
});

test("Uart16550 in loopback mode receives what it transmits", () => {
  const { u, out } = uart();
  u.write(MCR, 1, 0x10);
  u.write(THR, 1, 0x5a);
  assertEquals(out, []);
  assertEquals(u.read(LSR, 1), 0x61);
  assertEquals(u.read(RBR, 1), 0x5a);
  u.write(MCR, 1, 0x00);
  u.write(THR, 1, 0x5b);
  assertEquals(out, [0x5b]);
  assertEquals(u.read(LSR, 1) & 1, 0);
});

test("Uart16550 MSR shows a connected line, and MCR outputs in loopback mode", () => {
  const { u } = uart();
  assertEquals(u.read(MSR, 1), 0xb0);
  u.write(MCR, 1, 0x10 | 0x01 | 0x02);
  assertEquals(u.read(MSR, 1), 0x30, "DTR -> DSR, RTS -> CTS");
  u.write(MCR, 1, 0x10 | 0x04 | 0x08);
  assertEquals(u.read(MSR, 1), 0xc0, "OUT1 -> RI, OUT2 -> DCD");
  assertEquals(u.read(MCR, 1), 0x1c);
});

test("Uart16550 IIR reports no interrupt after reset", () => {
  const { u } = uart();
  u.feed("x");
  assertEquals(u.read(IIR, 1), 0x01, "data without IER.RDA raises nothing");
  assertEquals(u.interruptPending(), false);
});

test("Uart16550 IIR reports received data while IER enables it", () => {
  const changes: boolean[] = [];
  const u = new Uart16550(() => {}, { onInterrupt: (p) => changes.push(p) });
  u.write(IER, 1, 0x01);
  assertEquals(u.read(IIR, 1), 0x01);
  u.feed("xy");
  assertEquals(u.read(IIR, 1), 0x04);
  assertEquals(u.interruptPending(), true);
  u.read(RBR, 1);
  assertEquals(u.read(IIR, 1), 0x04, "still one byte");
  u.read(RBR, 1);
  assertEquals(u.read(IIR, 1), 0x01);
  assertEquals(u.interruptPending(), false);
  assertEquals(changes, [true, false]);
});

test("Uart16550 IIR reports THR empty once enabled, until IIR is read", () => {
  const { u } = uart();
  u.write(IER, 1, 0x02);
  assertEquals(u.interruptPending(), true);
  assertEquals(u.read(IIR, 1), 0x02);
  assertEquals(u.read(IIR, 1), 0x01, "reading IIR acknowledged it");
  assertEquals(u.interruptPending(), false);
  u.write(THR, 1, 0x41);
  assertEquals(u.read(IIR, 1), 0x02, "the holding register emptied again");
  u.write(IER, 1, 0x00);
  u.write(THR, 1, 0x41);
  assertEquals(u.read(IIR, 1), 0x01, "disabled in IER");
});

test("Uart16550 IIR gives received data priority over THR empty", () => {
  const { u } = uart();
  u.write(IER, 1, 0x03);
  u.feed("z");
  assertEquals(u.read(IIR, 1), 0x04);
  u.read(RBR, 1);
  assertEquals(u.read(IIR, 1), 0x02);
});

test("Uart16550 IIR sets bits 6-7 while FCR enables the FIFOs, and FCR bit 1 empties the receive FIFO", () => {
  const { u } = uart();
  u.feed("abc");
  u.write(FCR, 1, 0xc7);
  assertEquals(u.read(IIR, 1), 0xc1);
  assertEquals(u.pendingInput, 0);
  assertEquals(u.read(LSR, 1) & 1, 0);
  u.feed("d");
  u.write(FCR, 1, 0x01);
  assertEquals(u.pendingInput, 1, "enabling without bit 1 keeps the data");
  u.write(FCR, 1, 0x00);
  assertEquals(u.read(IIR, 1), 0x01);
});

test("Uart16550 keeps IER to its low four bits and SCR as written", () => {
  const { u } = uart();
  u.write(IER, 1, 0xf0);
  assertEquals(u.read(IER, 1), 0x00);
  u.write(SCR, 1, 0xa5);
  assertEquals(u.read(SCR, 1), 0xa5);
  u.write(LSR, 1, 0x00);
  assertEquals(u.read(LSR, 1), 0x60, "LSR writes are ignored");
});

test("Uart16550 treats wide accesses as a byte access with 0xFF upper bytes", () => {
  const { u, out } = uart();
  u.write(THR, 2, 0x1241);
  u.write(THR, 4, 0x12345642);
  assertEquals(out, [0x41, 0x42]);
  assertEquals(u.read(LSR, 2), 0xff60);
  u.feed("ab");
  assertEquals(u.read(RBR, 4), 0xffffff61);
  assertEquals(u.pendingInput, 1, "only one byte is popped");
});

test("Uart16550 rejects an access to a port it does not claim", () => {
  const { u } = uart();
  assertThrows(() => u.read(0x400, 1), DeviceError, 'Port 0x400 is outside device "serial" (ports 0x3f8-0x3ff)');
  assert(u.read(SCR, 1) === 0);
});

import { test } from "node:test";
import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { DeviceError } from "./device.ts";
import { DebugCon } from "./debugcon.ts";
import { PioBus } from "./pio_bus.ts";

test("DebugCon sends each OUT byte to the sink", () => {
  const out: number[] = [];
  const con = new DebugCon((b) => out.push(b));
  assertEquals(con.name, "debugcon");
  assertEquals(con.ports, [{ first: 0xe9, last: 0xe9 }]);
  for (const ch of "Hi\n") con.write(0xe9, 1, ch.charCodeAt(0));
  assertEquals(String.fromCharCode(...out), "Hi\n");
});

test("DebugCon keeps only the low byte of a wide OUT", () => {
  const out: number[] = [];
  const con = new DebugCon((b) => out.push(b));
  con.write(0xe9, 2, 0x1241);
  con.write(0xe9, 4, 0xdeadbe42);
  assertEquals(out, [0x41, 0x42]);
});

test("DebugCon reads back 0xE9 so guests can detect it", () => {
  const con = new DebugCon(() => {});
  assertEquals(con.read(0xe9, 1), 0xe9);
  assertEquals(con.read(0xe9, 2), 0xffe9);
  assertEquals(con.read(0xe9, 4), 0xffffffe9);
});

test("DebugCon can sit at another port under another name", () => {
  const out: number[] = [];
  const con = new DebugCon((b) => out.push(b), { port: 0x402, name: "bochs-log" });
  const bus = new PioBus();
  bus.attach(con);
  bus.find(0x402)?.write(0x402, 1, 0x21);
  assertEquals(out, [0x21]);
  assertEquals(con.read(0x402, 1), 0xe9);
  assertEquals(con.name, "bochs-log");
});

test("DebugCon refuses a port outside 0..0xffff", () => {
  const err = assertThrows(() => new DebugCon(() => {}, { port: 0x10000 }), DeviceError);
  assertEquals((err as DeviceError).kind, "range");
  assertEquals(err.message, 'Invalid port for device "debugcon": 65536 (expected an integer in 0x0..0xffff)');
});

test("DebugCon rejects an access to a port it does not claim", () => {
  const con = new DebugCon(() => {});
  assertThrows(() => con.read(0xe8, 1), DeviceError, 'Port 0xe8 is outside device "debugcon" (port 0xe9)');
});

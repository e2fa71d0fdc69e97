import { test } from "node:test";
import { assert, assertEquals, assertStrictEquals, assertThrows } from "../../tests/assert.ts";
import { DeviceError, type PioDevice, type PortRange } from "./device.ts";
import { PioBus } from "./pio_bus.ts";

function stub(name: string, ...ports: PortRange[]): PioDevice {
  return { name, ports, read: () => 0, write: () => {} };
}

function kindOf(fn: () => unknown): string {
  return (assertThrows(fn, DeviceError) as DeviceError).kind;
}

test("PioBus.find() returns the device claiming a port and undefined elsewhere", () => {
  const bus = new PioBus();
  const uart = stub("uart0", { first: 0x3f8, last: 0x3ff });
  bus.attach(uart);
  assertStrictEquals(bus.find(0x3f8), uart);
  assertStrictEquals(bus.find(0x3fc), uart);
  assertStrictEquals(bus.find(0x3ff), uart);
  assertStrictEquals(bus.find(0x3f7), undefined);
  assertStrictEquals(bus.find(0x400), undefined);
  assertStrictEquals(bus.find(0x10000), undefined);
  assertStrictEquals(bus.find(-1), undefined);
});

test("PioBus.attach() accepts a device with several ranges, including ports 0 and 0xffff", () => {
  const bus = new PioBus();
  const dev = stub("edges", { first: 0, last: 0 }, { first: 0xfff0, last: 0xffff });
  bus.attach(dev);
  assertStrictEquals(bus.find(0), dev);
  assertStrictEquals(bus.find(1), undefined);
  assertStrictEquals(bus.find(0xffff), dev);
  assertStrictEquals(bus.find(0xfff0), dev);
});

test("PioBus.attach() refuses a device whose ports overlap another device", () => {
  const bus = new PioBus();
  bus.attach(stub("uart0", { first: 0x3f8, last: 0x3ff }));
  const err = assertThrows(() => bus.attach(stub("serial", { first: 0x3f8, last: 0x3ff })), DeviceError);
  assertEquals((err as DeviceError).kind, "conflict");
  assertEquals(
    err.message,
    'Cannot attach device "serial" at ports 0x3f8-0x3ff: ports 0x3f8-0x3ff are claimed by device "uart0"',
  );
});

test("PioBus.attach() names only the overlapping ports in a partial conflict", () => {
  const bus = new PioBus();
  bus.attach(stub("uart0", { first: 0x3f8, last: 0x3ff }));
  bus.attach(stub("debugcon", { first: 0xe9, last: 0xe9 }));
  assertThrows(
    () => bus.attach(stub("wide", { first: 0x3f0, last: 0x3f9 })),
    DeviceError,
    'Cannot attach device "wide" at ports 0x3f0-0x3f9: ports 0x3f8-0x3f9 are claimed by device "uart0"',
  );
  assertThrows(
    () => bus.attach(stub("other", { first: 0x80, last: 0x80 }, { first: 0xe0, last: 0xef })),
    DeviceError,
    'Cannot attach device "other" at ports 0xe0-0xef: port 0xe9 is claimed by device "debugcon"',
  );
  // A failed attach claims nothing.
  assertStrictEquals(bus.find(0x80), undefined);
  assertStrictEquals(bus.find(0x3f0), undefined);
});

test("PioBus.attach() refuses the same device twice", () => {
  const bus = new PioBus();
  const dev = stub("post", { first: 0x80, last: 0x80 });
  bus.attach(dev);
  assertEquals(kindOf(() => bus.attach(dev)), "conflict");
  assertEquals(bus.devices().length, 1);
});

test("PioBus.attach() refuses bad port ranges", () => {
  const bus = new PioBus();
  assertEquals(kindOf(() => bus.attach(stub("backwards", { first: 0x3ff, last: 0x3f8 }))), "range");
  assertEquals(kindOf(() => bus.attach(stub("high", { first: 0xfff8, last: 0x10007 }))), "range");
  assertEquals(kindOf(() => bus.attach(stub("negative", { first: -1, last: 3 }))), "range");
  assertEquals(kindOf(() => bus.attach(stub("fraction", { first: 1.5, last: 3 }))), "range");
  assertEquals(
    kindOf(() => bus.attach(stub("self", { first: 0x60, last: 0x64 }, { first: 0x64, last: 0x64 }))),
    "range",
  );
  assertThrows(
    () => bus.attach(stub("backwards", { first: 0x3ff, last: 0x3f8 })),
    DeviceError,
    'Cannot attach device "backwards": invalid port range 0x3ff-0x3f8',
  );
  assertEquals(bus.devices(), []);
});

test("PioBus.attach() refuses a device that claims no ports", () => {
  const bus = new PioBus();
  assertEquals(kindOf(() => bus.attach(stub("nothing"))), "argument");
});

test("PioBus.detach() frees the device's ports for another device", () => {
  const bus = new PioBus();
  const a = stub("a", { first: 0x60, last: 0x60 }, { first: 0x64, last: 0x64 });
  const b = stub("b", { first: 0x60, last: 0x64 });
  bus.attach(a);
  assertEquals(bus.detach(a), true);
  assertEquals(bus.detach(a), false);
  assertStrictEquals(bus.find(0x60), undefined);
  assertStrictEquals(bus.find(0x64), undefined);
  bus.attach(b);
  assertStrictEquals(bus.find(0x62), b);
  assertEquals(bus.devices(), [b]);
});

test("PioBus.devices() lists attached devices in attach order", () => {
  const bus = new PioBus();
  const a = stub("a", { first: 1, last: 1 });
  const b = stub("b", { first: 2, last: 2 });
  const c = stub("c", { first: 3, last: 3 });
  bus.attach(a);
  bus.attach(b);
  bus.attach(c);
  bus.detach(b);
  bus.attach(b);
  assertEquals(bus.devices().map((d) => d.name), ["a", "c", "b"]);
  assertStrictEquals(bus.find(2), b);
  assertStrictEquals(bus.find(3), c);
});

test("PioBus.claimed() reports the device overlapping a range", () => {
  const bus = new PioBus();
  const uart = stub("uart0", { first: 0x3f8, last: 0x3ff });
  const pic = stub("pic", { first: 0x20, last: 0x21 });
  bus.attach(uart);
  bus.attach(pic);
  assertStrictEquals(bus.claimed(0x3f0, 0x3f8), uart);
  assertStrictEquals(bus.claimed(0x3ff, 0x3ff), uart);
  assertStrictEquals(bus.claimed(0x3f0, 0x3f7), undefined);
  assertStrictEquals(bus.claimed(0, 0xffff), pic);
  assertEquals(kindOf(() => bus.claimed(5, 4)), "range");
  assertEquals(kindOf(() => bus.claimed(0, 0x10000)), "range");
});

test("PioBus keeps the ports it claimed even if the device's ranges change later", () => {
  const bus = new PioBus();
  const ports: PortRange[] = [{ first: 0x70, last: 0x71 }];
  const rtc = stub("rtc", ...ports);
  bus.attach(rtc);
  (rtc.ports as PortRange[])[0] = { first: 0x100, last: 0x100 };
  assertStrictEquals(bus.find(0x70), rtc);
  assertStrictEquals(bus.find(0x100), undefined);
  bus.detach(rtc);
  assertStrictEquals(bus.find(0x70), undefined);
});

test("PioBus holds one device per port across the whole port space", () => {
  const bus = new PioBus();
  for (let p = 0; p <= 0xffff; p++) bus.attach(stub(`p${p}`, { first: p, last: p }));
  assertEquals(bus.find(0xffff)?.name, "p65535");
  assertEquals(bus.find(0)?.name, "p0");
  assert(bus.claimed(0x1234, 0x1234) !== undefined);
});

import { test } from "node:test";
import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { DeviceError } from "./device.ts";
import { PostCodePort } from "./post.ts";

test("PostCodePort records the last code and counts writes", () => {
  const post = new PostCodePort();
  assertEquals(post.ports, [{ first: 0x80, last: 0x80 }]);
  assertEquals(post.lastCode, undefined);
  assertEquals(post.count, 0);
  post.write(0x80, 1, 0x12);
  post.write(0x80, 1, 0x34);
  assertEquals(post.lastCode, 0x34);
  assertEquals(post.count, 2);
});

test("PostCodePort calls the callback with each code", () => {
  const codes: number[] = [];
  const post = new PostCodePort({ onCode: (c) => codes.push(c) });
  post.write(0x80, 1, 0x01);
  post.write(0x80, 2, 0xab02);
  assertEquals(codes, [0x01, 0x02]);
  assertEquals(post.lastCode, 0x02);
});

test("PostCodePort reads back the last code written, and 0xFF before any", () => {
  const post = new PostCodePort();
  assertEquals(post.read(0x80, 1), 0xff);
  post.write(0x80, 1, 0x55);
  assertEquals(post.read(0x80, 1), 0x55);
  assertEquals(post.read(0x80, 2), 0xff55);
  assertEquals(post.read(0x80, 4), 0xffffff55);
  assertEquals(post.count, 1);
});

test("PostCodePort can sit at another port", () => {
  const post = new PostCodePort({ port: 0x84, name: "post2" });
  assertEquals(post.ports, [{ first: 0x84, last: 0x84 }]);
  post.write(0x84, 1, 7);
  assertEquals(post.lastCode, 7);
  assertThrows(() => post.write(0x80, 1, 7), DeviceError, 'Port 0x80 is outside device "post2" (port 0x84)');
  assertThrows(() => new PostCodePort({ port: -1 }), DeviceError, "Invalid port");
});

/**
 * A table of malformed inputs: each is answered 4xx with a problem document naming the field.
 */
import { test } from "node:test";
import { Buffer } from "node:buffer";
import { assert, assertEquals } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { withLimits } from "./config.ts";
import { call, fields, guest } from "./_testing.ts";

const service = await createService({ workers: 1, limits: withLimits({ maxBodyBytes: 256 * 1024 }) });
const hello = guest("hello16.bin");
const elf = Buffer.from(guest("cguest_O2.elf"), "base64");

interface Case {
  name: string;
  method?: string;
  path?: string;
  body: unknown;
  status: number;
  field: string;
}

const CASES: Case[] = [
  { name: "image missing", body: {}, status: 400, field: "image" },
  { name: "image not a string", body: { image: 42 }, status: 400, field: "image" },
  { name: "image empty", body: { image: "" }, status: 400, field: "image" },
  { name: "image bad base64", body: { image: "@@@@" }, status: 400, field: "image" },
  { name: "image base64 with a bad length", body: { image: "QUJD=" }, status: 400, field: "image" },
  { name: "truncated ELF", body: { image: elf.subarray(0, 100).toString("base64"), format: "elf", mode: "protected" }, status: 422, field: "image" },
  { name: "ELF segment cut short", body: { image: elf.subarray(0, elf.length >> 1).toString("base64"), format: "elf", mode: "protected" }, status: 422, field: "image" },
  { name: "format unknown", body: { image: hello, format: "pe" }, status: 400, field: "format" },
  { name: "mode unknown", body: { image: hello, mode: "smm" }, status: 400, field: "mode" },
  { name: "mode long (not built)", body: { image: hello, mode: "long" }, status: 422, field: "mode" },
  { name: "engine unknown", body: { image: hello, engine: "qemu" }, status: 400, field: "engine" },
  { name: "engine kvm (not built)", body: { image: hello, engine: "kvm" }, status: 422, field: "engine" },
  { name: "budget a string", body: { image: hello, budget: "100" }, status: 400, field: "budget" },
  { name: "budget negative", body: { image: hello, budget: -1 }, status: 400, field: "budget" },
  { name: "budget zero", body: { image: hello, budget: 0 }, status: 400, field: "budget" },
  { name: "budget fractional", body: { image: hello, budget: 1.5 }, status: 400, field: "budget" },
  { name: "budget huge", body: { image: hello, budget: 1e300 }, status: 400, field: "budget" },
  { name: "budget over the limit", body: { image: hello, budget: service.limits.maxBudget + 1 }, status: 400, field: "budget" },
  { name: "timeout over the limit", body: { image: hello, timeoutMs: service.limits.maxTimeoutMs + 1 }, status: 400, field: "timeoutMs" },
  { name: "timeout negative", body: { image: hello, timeoutMs: -5 }, status: 400, field: "timeoutMs" },
  { name: "mem huge", body: { image: hello, mem: 2 ** 40 }, status: 400, field: "mem" },
  { name: "mem not a multiple of 4 KiB", body: { image: hello, mem: 5000 }, status: 400, field: "mem" },
  { name: "mem string over the limit", body: { image: hello, mem: "4G" }, status: 400, field: "mem" },
  { name: "mem bad string", body: { image: hello, mem: "lots" }, status: 400, field: "mem" },
  { name: "load negative", body: { image: hello, load: -4096 }, status: 400, field: "load" },
  { name: "load beyond 32 bits", body: { image: hello, load: 2 ** 33 }, status: 400, field: "load" },
  { name: "load bad hex", body: { image: hello, load: "0xZZ" }, status: 400, field: "load" },
  { name: "load outside guest memory", body: { image: hello, load: "0x20000", mem: "64K" }, status: 422, field: "load" },
  { name: "entry negative", body: { image: hello, entry: -1 }, status: 400, field: "entry" },
  { name: "entry outside guest memory", body: { image: hello, entry: 0x10000, mem: "64K" }, status: 422, field: "entry" },
  { name: "register unknown", body: { image: hello, regs: { xmm0: 1 } }, status: 400, field: "regs.xmm0" },
  { name: "register negative", body: { image: hello, regs: { eax: -1 } }, status: 400, field: "regs.eax" },
  { name: "register a string", body: { image: hello, regs: { ebx: "2" } }, status: 400, field: "regs.ebx" },
  { name: "register huge", body: { image: hello, regs: { eax: 2 ** 60 } }, status: 400, field: "regs.eax" },
  { name: "regs not an object", body: { image: hello, regs: [1, 2] }, status: 400, field: "regs" },
  { name: "hooks not a list", body: { image: hello, hooks: "io-log" }, status: 400, field: "hooks" },
  { name: "hook set unknown", body: { image: hello, hooks: ["no-such-set"] }, status: 400, field: "hooks.0" },
  { name: "hook set named twice", body: { image: hello, hooks: ["io-log", "io-log"] }, status: 400, field: "hooks.1" },
  { name: "script not a string", body: { image: hello, script: { code: 1 } }, status: 400, field: "script" },
  { name: "script too long", body: { image: hello, script: "x".repeat(service.limits.hookScript.maxSourceBytes + 1) }, status: 400, field: "script" },
  { name: "script syntax error", body: { image: hello, script: "vm.onIo(" }, status: 422, field: "script" },
  { name: "trace unknown", body: { image: hello, trace: "all" }, status: 400, field: "trace" },
  { name: "dump negative", body: { image: hello, dumps: [{ addr: -1, len: 4 }] }, status: 400, field: "dumps.0.addr" },
  { name: "dump too long", body: { image: hello, dumps: [{ addr: 0, len: 1e9 }] }, status: 400, field: "dumps.0.len" },
  { name: "serial input not a string", body: { image: hello, serialInput: [1, 2] }, status: 400, field: "serialInput" },
  { name: "unknown field", body: { image: hello, imagee: hello }, status: 400, field: "imagee" },
  { name: "body an array", body: [hello], status: 400, field: "" },
  { name: "body null", body: null, status: 400, field: "" },
  { name: "oversized body", body: { image: "A".repeat(300 * 1024) }, status: 413, field: "" },
  { name: "session run budget negative", method: "POST", path: "SESSION/run", body: { budget: -1 }, status: 400, field: "budget" },
  { name: "session run unknown field", method: "POST", path: "SESSION/run", body: { image: hello }, status: 400, field: "image" },
  { name: "memory read negative address", method: "GET", path: "SESSION/memory?addr=-1&len=4", body: undefined, status: 400, field: "addr" },
  { name: "memory read huge length", method: "GET", path: "SESSION/memory?addr=0&len=99999999", body: undefined, status: 400, field: "len" },
  { name: "memory read missing length", method: "GET", path: "SESSION/memory?addr=0", body: undefined, status: 400, field: "len" },
  { name: "memory read unknown parameter", method: "GET", path: "SESSION/memory?addr=0&len=1&x=1", body: undefined, status: 400, field: "x" },
  { name: "memory write bad base64", method: "PUT", path: "SESSION/memory?addr=0", body: { data: "%%" }, status: 400, field: "data" },
  { name: "memory write past the end", method: "PUT", path: "SESSION/memory?addr=0xffff", body: { data: "AAAA" }, status: 400, field: "data" },
  { name: "disasm address outside memory", method: "GET", path: "SESSION/disasm?addr=0xffffffff", body: undefined, status: 400, field: "addr" },
  { name: "disasm count too large", method: "GET", path: "SESSION/disasm?count=100000", body: undefined, status: 400, field: "count" },
  { name: "regs unknown register", method: "PUT", path: "SESSION/regs", body: { cr0: 1 }, status: 400, field: "cr0" },
];

const session = (await call(service, "POST", "/v1/vms", { image: hello, mem: "64K" })).body.id as string;

for (const c of CASES) {
  test(`Malformed input is a ${c.status} problem naming the field: ${c.name}`, async () => {
    const path = (c.path ?? "/v1/runs").replace("SESSION", `/v1/vms/${session}`);
    const r = await call(service, c.method ?? "POST", path, c.body === undefined ? undefined : c.body === null ? "null" : c.body);
    assertEquals(r.status, c.status, r.text);
    assertEquals(r.headers.get("content-type"), "application/problem+json");
    assertEquals(r.body.status, c.status);
    if (c.field) assert(fields(r).includes(c.field), `expected field ${c.field}, got ${JSON.stringify(fields(r))}: ${r.text}`);
  });
}

test("The service still runs guests after the malformed inputs", async () => {
  const r = await call(service, "POST", "/v1/runs", { image: hello, regs: { eax: 2, ebx: 2 } });
  assertEquals(r.body.console, "4\n");
  await service.close();
});

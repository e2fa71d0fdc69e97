/**
 * Golden "expect" tests (v86's tests/expect): a few small guests in, the wasm text of the first
 * region they compile to out, checked in under jit/expect/ so that codegen changes show up in
 * review. `UPDATE_EXPECT=1` rewrites the files.
 */
import { test } from "node:test";
import process from "node:process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { assertEquals } from "../tests/assert.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { useEngine } from "../runtime/vmm/tiering.ts";

const DIR = new URL("./expect/", import.meta.url).pathname;

const cases: { name: string; what: string; mode: "real" | "protected"; code: number[]; regs?: Record<string, number> }[] = [
  {
    name: "add_loop", what: "mov ecx, 1000; l: add eax, ecx; dec ecx; jnz l; hlt", mode: "protected",
    code: [0xb9, 0xe8, 0x03, 0, 0, 0x01, 0xc8, 0x49, 0x75, 0xfb, 0xf4],
  },
  {
    name: "store_cmp_jl", what: "l: mov [ebx+4], eax; inc eax; cmp eax, 10; jl l; hlt", mode: "protected",
    code: [0x89, 0x43, 0x04, 0x40, 0x83, 0xf8, 0x0a, 0x7c, 0xf7, 0xf4], regs: { rbx: 0x200000 },
  },
  {
    name: "call_ret_real", what: "real mode: call f; hlt; f: push ax; pop cx; ret", mode: "real",
    code: [0xe8, 0x01, 0x00, 0xf4, 0x50, 0x59, 0xc3], regs: { rsp: 0x8000 },
  },
];

for (const c of cases) {
  test(`the ${c.name} guest compiles to the wasm in jit/expect/${c.name}.wat`, async () => {
    const m = new Machine({ mode: c.mode });
    m.load(new Uint8Array(c.code), { format: "raw" });
    if (c.regs) m.vcpu.setRegs(c.regs);
    const jit = (await useEngine(m, "jit", { keepText: true, validate: true }))!;
    const r = m.run({ budget: 100_000 });
    assertEquals(r.exit.reason, "hlt");
    const text = `;; ${c.what}\n${jit.texts[0]}`;
    const file = `${DIR}${c.name}.wat`;
    if (process.env.UPDATE_EXPECT || !existsSync(file)) writeFileSync(file, text);
    assertEquals(text, readFileSync(file, "utf8"));
  });
}

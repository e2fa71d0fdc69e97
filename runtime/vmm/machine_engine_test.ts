/** Machine's engine option: attaching the JIT, switching, stats, reset() under the JIT, and binaryen left unloaded otherwise. */
import { test } from "node:test";
import { spawnSync } from "node:child_process";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { Machine, MachineError } from "./machine.ts";
import { loadJit } from "./tiering.ts";

/** mov ecx,1000; l: add eax,ecx; dec ecx; jnz l; hlt  (EAX = 500500) */
const SUM = [0xb9, 0xe8, 0x03, 0, 0, 0x01, 0xc8, 0x49, 0x75, 0xfb, 0xf4];
/** The same bytes but SUB for ADD, at the same address (EAX = -500500) */
const DIFF = [0xb9, 0xe8, 0x03, 0, 0, 0x29, 0xc8, 0x49, 0x75, 0xfb, 0xf4];

const REPO = new URL("../../", import.meta.url);

/** Run `code` (a module's text) in a fresh process of this runtime, without VMXLAB_ENGINE. */
function fresh(code: string): { status: number; stdout: string; stderr: string } {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  // Empty rather than deleted: Deno's child_process adds the parent's variables to the ones given.
  const env = { ...process.env, VMXLAB_ENGINE: "" };
  const argv = isDeno ? ["eval", "--ext=ts", code] : ["-e", code];
  const r = spawnSync(process.execPath, argv, { cwd: REPO.pathname, encoding: "utf8", env, timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

test("new Machine({ engine: 'jit' }) before loadJit() says how to load it; the interpreter never loads binaryen", () => {
  const machine = new URL("runtime/vmm/machine.ts", REPO).href, bin = new URL("jit/_binaryen.ts", REPO).href;
  const r = fresh(`
    import { Machine } from ${JSON.stringify(machine)};
    import { binaryenIfLoaded } from ${JSON.stringify(bin)};
    const m = new Machine({ mode: "protected" });
    m.load(new Uint8Array(${JSON.stringify(SUM)}), { format: "raw" });
    const r = m.run();
    let msg = "";
    try { new Machine({ engine: "jit" }); } catch (e) { msg = e.kind + ": " + e.message; }
    console.log(JSON.stringify({ exit: r.exit.reason, engine: m.engine, binaryen: binaryenIfLoaded() !== null, msg }));
  `);
  assertEquals(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assertEquals(j.exit, "hlt");
  assertEquals(j.engine, "interp");
  assertEquals(j.binaryen, false, "an interpreter-only program loaded binaryen");
  assert(/^engine: .*await loadJit\(\).*Machine\.create/.test(j.msg), j.msg);
});

test("Machine.create({ engine }) loads binaryen on demand; m.engine and m.jitStats tell what runs", async () => {
  const m = await Machine.create({ mode: "protected", engine: "jit" });
  assertEquals(m.engine, "jit");
  m.load(new Uint8Array(SUM), { format: "raw" });
  const r = m.run({ budget: 100_000 });
  assertEquals(r.exit.reason, "hlt");
  assertEquals(m.vcpu.getRegs().rax, 500500);
  const s = m.jitStats!;
  assert(s.regions >= 1 && s.instructions > 2000, JSON.stringify(s));

  const a = new Machine({ mode: "protected", engine: "auto", jit: { threshold: 1000 } });
  assertEquals(a.engine, "auto");
  a.load(new Uint8Array(SUM), { format: "raw" });
  a.run();
  assertEquals(a.jitStats!.regions, 0, "the loop runs 1000 times: under the threshold");

  const i = new Machine({ mode: "protected", engine: "interp" });
  assertEquals(i.engine, "interp");
  assertEquals(i.jitStats, null);
  assertThrows(() => new Machine({ engine: "qemu" as never }), MachineError, "Unknown engine: qemu");
});

test("setEngine switches engines with the same result; useEngine on a Machine goes through it", async () => {
  await loadJit();
  const results: number[] = [];
  for (const e of ["interp", "jit", "auto", "interp"] as const) {
    const m = new Machine({ mode: "protected", engine: "jit" });
    m.setEngine(e, { threshold: 2 });
    assertEquals(m.engine, e);
    m.load(new Uint8Array(SUM), { format: "raw" });
    const r = m.run();
    assertEquals(r.exit.reason, "hlt");
    results.push(m.vcpu.getRegs().rax, r.instructions);
    if (e === "interp") assertEquals(m.jitStats, null);
    else assert(m.jitStats!.regions >= 1);
  }
  assertEquals(new Set(results.filter((_, k) => k % 2 === 0)).size, 1);
  assertEquals(new Set(results.filter((_, k) => k % 2 === 1)).size, 1);
  const { useEngine } = await import("./tiering.ts");
  const m = new Machine({ mode: "protected" });
  const e = await useEngine(m, "auto");
  assertEquals(m.engine, "auto");
  assert(e !== null && m.jitStats === e.stats);
  await useEngine(m, "interp");
  assertEquals(m.engine, "interp");
});

test("reset() keeps the engine, and code compiled for the old image never runs for a new one at the same address", async () => {
  await loadJit();
  for (const engine of ["jit", "auto"] as const) {
    const m = new Machine({ mode: "protected", engine, jit: { threshold: 2 }, reusable: true });
    m.load(new Uint8Array(SUM), { format: "raw" });
    assertEquals(m.run().exit.reason, "hlt");
    assertEquals(m.vcpu.getRegs().rax, 500500);
    assert(m.jitStats!.regions >= 1);
    m.reset();
    assertEquals(m.engine, engine, "reset keeps the engine");
    assertEquals(m.jitStats!.regions, 0, "a fresh engine after reset");
    m.load(new Uint8Array(DIFF), { format: "raw" });
    const r = m.run();
    assertEquals(r.exit.reason, "hlt");
    assertEquals(m.vcpu.getRegs().rax, (2 ** 32 - 500500), `${engine}: the new image's result`);
    assert(m.jitStats!.regions >= 1, "the new image was compiled afresh");
    // And back: the first image again, on the same machine.
    m.reset();
    m.load(new Uint8Array(SUM), { format: "raw" });
    m.run();
    assertEquals(m.vcpu.getRegs().rax, 500500);
  }
  // A machine reset to interp stays interp.
  const i = new Machine({ mode: "protected", engine: "interp", reusable: true });
  i.reset();
  assertEquals(i.engine, "interp");
});

/** Lockstep (runtime/vmm/lockstep.ts, vmrun --engine lockstep): agreement to the end, and the first block that differs. */
import { test } from "node:test";
import { assert, assertEquals } from "../tests/assert.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { runScript } from "../tests/run_cli.ts";
import { formatDifference, runLockstep } from "../runtime/vmm/lockstep.ts";
import { GEN_LOAD, genProgram } from "../tests/jit_gen.ts";

const machineFor = (seed: number) => () => {
  const p = genProgram(seed);
  const m = new Machine({ mode: seed % 2 ? "protected" : "paged", memSize: 4 << 20 });
  m.load(p.code, { format: "raw", loadAddr: GEN_LOAD });
  m.vcpu.setRegs({ ...p.regs, rip: GEN_LOAD });
  m.onIo({ port: 0x99, direction: "out", name: "rec", handler: () => {} });
  return m;
};

test("lockstep runs random programs to the end with no difference and counts like the interpreter", async () => {
  for (const s of [11, 12]) {
    const mk = machineFor(s);
    const ref = mk();
    const r = ref.run({ budget: 1_000_000 });
    const out = await runLockstep(() => ({ a: mk(), b: mk() }), { budget: 1_000_000, memEvery: 16 });
    assertEquals(out.difference, null, `seed ${s}`);
    assertEquals(out.result.exit.reason, r.exit.reason);
    assertEquals(out.result.instructions, r.instructions);
    assertEquals(out.result.exits, r.exits);
    assertEquals(out.a.vcpu.getRegs(), ref.vcpu.getRegs());
    assert(out.blocks > 1, "more than one block");
  }
});

test("lockstep stops at the first block after which RAM differs, even between RAM checks", async () => {
  const mk = machineFor(13);
  const out = await runLockstep(() => {
    const b = mk();
    b.vm.writeGuest(0x3f0000, new Uint8Array([0x5a])); // a byte no program touches, different from the start
    return { a: mk(), b };
  }, { memEvery: 4 });
  const d = out.difference!;
  assert(d !== null, "a difference");
  assertEquals(d.what, "memory");
  assertEquals(d.block, 0);
  assertEquals(d.eip, GEN_LOAD);
  assertEquals(d.interp.memAt, 0x3f0000);
  assertEquals(d.jit.mem![0], 0x5a);
  const text = formatDifference(d, null);
  assert(text.includes("after block 0 at 0x8:0x100000"), text);
});

test("vmrun --engine lockstep reports the same run as --engine interp", () => {
  const report = (engine: string) => {
    const r = runScript("scripts/vmrun.ts", ["--engine", engine, "--json", "--reg", "eax=2", "--reg", "ebx=2", "tests/guests/hello16.bin"]);
    assertEquals(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    const j = JSON.parse(lines[lines.length - 1]);
    assertEquals(j.engine, engine);
    return { exit: j.exit, regs: j.regs, instructions: j.instructions, exits: j.exits, userspaceExits: j.userspaceExits, console: j.console, stdout: lines.slice(0, -1) };
  };
  assertEquals(report("lockstep"), report("interp"));
});

/**
 * Every guest program in tests/guests (nasm and gcc sources with their built bytes beside them)
 * runs through Machine and through the vmrun command line, with its expected console output,
 * exit and final state.
 */
import { test } from "node:test";
import process from "node:process";
import { readFileSync } from "node:fs";
import { assertEquals, assert } from "./assert.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { REPO, runScript } from "./run_cli.ts";

interface Expected {
  mode: "real" | "protected";
  format: "raw" | "elf" | "multiboot";
  regs?: Record<string, number>;
  stdout: string;
  exit: "hlt" | "shutdown";
}
const expected: Record<string, Expected> = JSON.parse(readFileSync(`${REPO}/tests/guests/expected.json`, "utf8"));
const guest = (f: string) => new Uint8Array(readFileSync(`${REPO}/tests/guests/${f}`));

function machineFor(file: string, e: Expected): Machine {
  const m = new Machine({ mode: e.mode });
  m.load(guest(file), { format: e.format });
  if (e.regs) m.vcpu.setRegs(Object.fromEntries(Object.entries(e.regs).map(([k, v]) => ["r" + k.slice(1), v])));
  // pm_hypercall expects hypercall 1 to return EBX + ECX (see tests/guests/README.md).
  m.onHypercall(1, (a) => (a[0] + a[1]) | 0);
  return m;
}

for (const [file, e] of Object.entries(expected)) {
  test(`guest ${file} prints its expected output and ends with ${e.exit} (Machine)`, () => {
    const m = machineFor(file, e);
    const r = m.run({ budget: 50_000_000 });
    assertEquals(m.console, e.stdout);
    assertEquals(r.exit.reason, e.exit);
    assert(r.instructions > 0);
    if (e.exit === "hlt") {
      // After HLT, EIP points past the HLT instruction (KVM skips it before exiting).
      const eip = m.vcpu.getRegs().rip;
      const cs = m.vcpu.getSregs().cs.base;
      assertEquals(m.vm.readGuest(cs + eip - 1, 1)[0], 0xf4);
    }
  });
}

test("guest rm_ud.bin shuts down with #UD on the ud2 bytes in the exit detail", () => {
  const m = machineFor("rm_ud.bin", expected["rm_ud.bin"]);
  const r = m.run();
  assert(r.exit.reason === "shutdown");
  if (r.exit.reason === "shutdown") {
    assertEquals(r.exit.vectors[0], 6);
    assertEquals(r.exit.bytes.slice(0, 2), [0x0f, 0x0b]);
  }
});

test("guest rm_string_io.bin stores the four bytes its IN hook returned", () => {
  const e = expected["rm_string_io.bin"];
  const m = new Machine({ mode: e.mode });
  m.load(guest("rm_string_io.bin"));
  let n = 0;
  m.onIo({ port: 0x60, direction: "in", name: "kbd", handler: () => 0xa0 + n++ });
  const r = m.run();
  assertEquals(r.exit.reason, "hlt");
  assertEquals([...m.vm.readGuest(0x600, 4)], [0xa0, 0xa1, 0xa2, 0xa3]);
});

for (const file of ["hello16.bin", "pm_fib.bin", "cguest_O2.elf", "mb_kernel.elf"]) {
  test(`vmrun runs ${file} and reports the run as JSON`, () => {
    const e = expected[file];
    const args = ["--mode", e.mode, "--format", e.format, "--json"];
    for (const [k, v] of Object.entries(e.regs ?? {})) args.push("--reg", `${k}=${v}`);
    const r = runScript("scripts/vmrun.ts", [...args, `tests/guests/${file}`]);
    assertEquals(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    const report = JSON.parse(lines[lines.length - 1]);
    assertEquals(report.exit.reason, "hlt");
    assertEquals(report.console, e.stdout);
    assert(r.stdout.startsWith(e.stdout), "console bytes come first on stdout");
    assertEquals(report.engine, process.env.VMXLAB_ENGINE || "interp"); // test.sh runs this file under the JIT too
    assert(report.instructions > 0 && typeof report.wallMs === "number");
    assert(report.exits.hlt === 1);
  });
}

/**
 * External interrupts end to end: the protected-mode kernel guest (tests/guests/pm_kernel.asm)
 * through Machine and the vmrun command line, the same run twice, and the Machine's irqchip
 * option with a script that raises an IRQ.
 */
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { Machine, MachineError } from "../runtime/vmm/machine.ts";
import { REPO, runScript } from "./run_cli.ts";

const expected = JSON.parse(readFileSync(`${REPO}/tests/guests/expected.json`, "utf8"))["pm_kernel.bin"];
const kernel = new Uint8Array(readFileSync(`${REPO}/tests/guests/pm_kernel.bin`));

function runKernel() {
  const m = new Machine({ mode: "protected" });
  m.load(kernel, { format: "raw" });
  const r = m.run({ budget: 50_000_000 });
  return { m, r };
}

test("pm_kernel.bin runs its GDT, IDT, paging, ring 3, INT 0x80, #PF and PIT steps through Machine", () => {
  const { m, r } = runKernel();
  assertEquals(m.console, expected.stdout);
  assertEquals(r.exit.reason, "hlt");
  assertEquals(r.exits.external_interrupt, 2, "the two ticks that interrupted ring 3 arrived while it ran");
  assertEquals(r.exits.hlt, 4, "three halts woken by the timer in the kernel, and the last one");
  assertEquals(r.userspaceExits, { hlt: 1 });
  const s = m.vcpu.getSregs();
  assertEquals(s.cr0 >>> 31, 1, "paging on");
  assertEquals(s.tr.selector, 0x28);
  assertEquals(m.vcpu.getRegs().rflags & 0x200, 0, "halted with IF=0");
});

test("pm_kernel.bin gives the same instruction count, exits and output every run", () => {
  const a = runKernel(), b = runKernel();
  assertEquals(a.r.instructions, b.r.instructions);
  assertEquals(a.r.exits, b.r.exits);
  assertEquals(a.m.console, b.m.console);
  assertEquals(a.m.vm.clock(), b.m.vm.clock());
  assertEquals(a.m.vcpu.getRegs(), b.m.vcpu.getRegs());
});

test("vmrun runs pm_kernel.bin and reports the same run as Machine", () => {
  const { r } = runKernel();
  const out = runScript("scripts/vmrun.ts", ["--mode", "protected", "--json", "tests/guests/pm_kernel.bin"]);
  assertEquals(out.status, 0, out.stderr);
  const lines = out.stdout.trimEnd().split("\n");
  const report = JSON.parse(lines[lines.length - 1]);
  assertEquals(report.exit.reason, "hlt");
  assertEquals(report.console, expected.stdout);
  assertEquals(report.instructions, r.instructions);
  assertEquals(report.exits.external_interrupt, 2);
  assert(out.stdout.startsWith(expected.stdout));
});

/*
 * Real mode: IVT[9] = h, the PIC with only IRQ1 unmasked, then sti; hlt; cli; hlt.
 * h: mov al,'K' / out 0xe9,al / mov al,0x20 / out 0x20,al / iret
 */
const IRQ1_GUEST = [
  0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xd0, 0xbc, 0x00, 0x80, 0xc7, 0x06, 0x24, 0x00, 0x2d, 0x10, 0xc7, 0x06, 0x26, 0x00,
  0x00, 0x00, 0xb0, 0x11, 0xe6, 0x20, 0xb0, 0x08, 0xe6, 0x21, 0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0,
  0xfd, 0xe6, 0x21, 0xfb, 0xf4, 0xfa, 0xf4, 0xb0, 0x4b, 0xe6, 0xe9, 0xb0, 0x20, 0xe6, 0x20, 0xcf,
];

test("a Machine script wakes a halted guest by raising an IRQ line", () => {
  const m = new Machine({ mode: "real" });
  m.load(new Uint8Array(IRQ1_GUEST), { format: "raw" });
  let halts = 0;
  m.onExit("hlt", (_exit, ctx) => {
    if (halts++ > 0) return;
    // Nothing in the kernel could wake the first HLT (no PIT programmed): the script plays a device.
    ctx.machine.vm.irqLine(1, 1);
    ctx.machine.vm.irqLine(1, 0);
    return "resume";
  });
  const r = m.run();
  assertEquals(r.exit.reason, "hlt");
  assertEquals(m.console, "K");
  assertEquals(halts, 2);
});

test("Machine({ irqchip: false }) leaves the PIC and PIT ports to hooks and HLT to userspace", () => {
  const m = new Machine({ mode: "real", irqchip: false });
  assertEquals(m.vm.pic, null);
  m.onIo({ port: 0x40, handler: () => 0x12 });
  assertThrows(() => m.vm.irqLine(0, 1), Error, "needs the in-kernel irqchip");
  const dflt = new Machine({ mode: "real" });
  assertThrows(() => dflt.onIo({ port: 0x61, handler: () => 0 }), MachineError, 'in-kernel device "pit"');
  assertThrows(() => dflt.onIo({ port: 0x20, handler: () => 0 }), MachineError, 'in-kernel device "pic"');
});

test("rm_rtc.bin: the RTC's periodic interrupt reaches the guest on IRQ8 through the slave PIC and wakes HLT on virtual time", () => {
  const run = () => {
    const m = new Machine({ mode: "real", devices: { rtc: "userspace" } });
    m.load(new Uint8Array(readFileSync(`${REPO}/tests/guests/rm_rtc.bin`)), { format: "raw" });
    return { m, r: m.run({ budget: 1_000_000 }) };
  };
  const { m, r } = run();
  assertEquals(m.console, "RRR\n");
  assertEquals(r.exit.reason, "hlt");
  assertEquals(r.exits.hlt, 4, "three halts woken by the RTC in the kernel (nothing else is programmed), and the last one");
  // Rate 15 is 500 ms (MC146818A data sheet): the third interrupt came at 1.5 s of virtual time.
  const clock = m.vm.clock();
  assert(clock >= 1_500_000_000 && clock < 1_500_000_000 + r.instructions, `clock ${clock}`);
  assertEquals(m.rtc!.seconds() - m.rtc!.seconds() % 1, 1767225601, "the RTC's date moved on with virtual time");
  const again = run();
  assertEquals([again.r.instructions, again.m.vm.clock()], [r.instructions, clock]);
  // Without the RTC the guest's ports read as an open bus and nothing wakes the first HLT.
  const bare = new Machine({ mode: "real" });
  bare.load(new Uint8Array(readFileSync(`${REPO}/tests/guests/rm_rtc.bin`)), { format: "raw" });
  assertEquals(bare.run({ budget: 1_000_000 }).exit.reason, "hlt");
  assertEquals(bare.console, "");
});

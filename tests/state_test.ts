/**
 * Each layer saves and restores its own state (DESIGN.md, "State"): the processor, the VMCS, the
 * kvm_run record, the vCPU, the PIC and PIT, the VM. A run resumed from a saved point continues
 * exactly as the original did, and every field of a stateful class is either saved or named here
 * as not state, so a field added later cannot be forgotten silently.
 */
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { assertEquals } from "./assert.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { I8254, PitChannel } from "../runtime/devices/i8254.ts";
import { I8259, I8259Pair } from "../runtime/devices/i8259.ts";
import { Vmcs } from "../runtime/cpu/vmcs.ts";
import { KvmRun } from "../runtime/kvm/kvm_run.ts";
import { REPO } from "./run_cli.ts";

const kernel = new Uint8Array(readFileSync(`${REPO}/tests/guests/pm_kernel.bin`));

/** pm_kernel (paging, rings, the PIT's interrupts, HLT woken by the timer) run to its end from wherever `m` is. */
function finish(m: Machine) {
  const r = m.run({ budget: 50_000_000 });
  return { exit: r.exit, instructions: m.vcpu.instructions, regs: m.vcpu.getRegs(), sregs: m.vcpu.getSregs(), clock: m.vm.clock(), console: m.console };
}

test("a run resumed from a saved VM state and RAM ends as the run that went on: same exits, count, registers, clock, output", () => {
  for (const at of [1_000, 20_000, 60_000]) {
    const m = new Machine({ mode: "protected" });
    m.load(kernel, { format: "raw" });
    const first = m.run({ budget: at });
    assertEquals(first.exit.reason, "budget");
    const slot = m.vm.memslots()[0];
    const ram = new Uint8Array(m.vm.memory.buffer, slot.userspaceAddr, slot.memorySize).slice();
    const saved = m.vm.saveState();
    const consoleAt = m.console.length;
    const a = finish(m);
    // Back to the saved point: the kernel's state, then guest RAM.
    m.vm.restoreState(saved);
    new Uint8Array(m.vm.memory.buffer, slot.userspaceAddr, slot.memorySize).set(ram);
    m.takeConsole();
    const b = finish(m);
    assertEquals(b.exit, a.exit, `resumed at ${at}`);
    assertEquals(b.instructions, a.instructions);
    assertEquals(b.regs, a.regs);
    assertEquals(b.sregs, a.sregs);
    assertEquals(b.clock, a.clock);
    assertEquals(b.console, a.console.slice(consoleAt));
  }
});

test("restoring a VM state on a machine laid out differently is refused", () => {
  const a = new Machine({ mode: "protected" }), b = new Machine({ mode: "protected", memSize: 32 << 20 });
  let msg = "";
  try { b.vm.restoreState(a.vm.saveState()); } catch (e) { msg = (e as Error).message; }
  assertEquals(/memslots differ/.test(msg), true, msg);
});

/** Every own field of `o` is in its saved state or in `notState` (wiring, configuration, caches). */
function coversFields(name: string, o: object, saved: object, notState: string[]): void {
  const missing = Object.keys(o).filter((k) => !(k in saved) && !notState.includes(k));
  assertEquals(missing, [], `${name}: fields neither saved nor named as not state`);
}

test("every field of the stateful classes is saved or named as not state", () => {
  const chip = new I8259(true);
  coversFields("I8259", chip, chip.saveState(), ["isMaster"]);
  const pair = new I8259Pair();
  coversFields("I8259Pair", pair, pair.saveState(), ["name", "ports", "onOutput"]);
  const ch = new PitChannel(0);
  coversFields("PitChannel", ch, ch.saveState(), ["index"]);
  const pit = new I8254({ clock: () => 0 });
  coversFields("I8254", pit, pit.saveState(), ["name", "ports", "clock", "irq0"]);
  const v = new Vmcs();
  coversFields("Vmcs", v, v.saveState(), ["guest", "version"]);
  const run = new KvmRun();
  coversFields("KvmRun", run, run.saveState(), []);
  const m = new Machine({ mode: "protected" });
  // The vCPU: hooks are userspace's, the processor and the VM are saved by their own layers.
  // idleExit: whether userspace asked for KVM_EXIT_IDLE (configuration).
  coversFields("Vcpu", m.vcpu, m.vcpu.saveState(), ["vm", "id", "cpu", "vmxExitHooks", "idleExit"]);
  // The VM: guest memory and its layout are the VMM's to save (the layout is checked on restore),
  // the PIO counts are saved as pioCounts, the bus's devices and the device timers (the RTC's) are
  // userspace's to save and register again, the trace is configuration.
  coversFields("Vm", m.vm, m.vm.saveState(), [
    "module", "memory", "brk", "slots", "last", "pioBus", "pioCountPages", "timers", "tracer",
  ]);
});

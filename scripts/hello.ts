/**
 * The classic KVM hello, twice: through the low-level KVM-shaped API exactly as a C program drives
 * /dev/kvm, and through `Machine`. `npm start` runs it.
 *
 *   node_modules/.bin/deno run -A scripts/hello.ts
 *   node_modules/.bin/bun scripts/hello.ts
 */
import { Kvm, KvmExit, KVM_EXIT_IO_OUT } from "../runtime/mod.ts";
import { Machine } from "../runtime/vmm/machine.ts";

/** mov dx,0x3f8; add al,bl; add al,'0'; out dx,al; mov al,'\n'; out dx,al; hlt */
export const HELLO_CODE = new Uint8Array([0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, 0x30, 0xee, 0xb0, 0x0a, 0xee, 0xf4]);

/** The KVM API walkthrough: create a VM, map memory, create a vCPU, set registers, run until HLT. */
export function helloKvm(): { output: string; exits: string[]; rip: number } {
  const kvm = Kvm.openSync();
  const vm = kvm.createVm();
  vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0x1000, memorySize: 0x1000 });
  vm.writeGuest(0x1000, HELLO_CODE);
  const vcpu = vm.createVcpu(0);
  const sregs = vcpu.getSregs();
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  vcpu.setSregs(sregs);
  vcpu.setRegs({ rip: 0x1000, rax: 2, rbx: 2, rflags: 0x2 });
  let output = "";
  const exits: string[] = [];
  for (;;) {
    const run = vcpu.run();
    switch (run.exitReason) {
      case KvmExit.HLT:
        exits.push("hlt");
        return { output, exits, rip: vcpu.getRegs().rip };
      case KvmExit.IO:
        exits.push("io");
        if (run.io.direction === KVM_EXIT_IO_OUT && run.io.size === 1 && run.io.port === 0x3f8 && run.io.count === 1) {
          output += String.fromCharCode(run.data[run.io.dataOffset]);
        } else {
          throw new Error(`Unhandled IO exit at port 0x${run.io.port.toString(16)}`);
        }
        break;
      default:
        throw new Error(`Unexpected exit reason ${run.exitReason}`);
    }
  }
}

/** The same guest through Machine: the UART at 0x3F8 is a userspace device that prints. */
export function helloMachine(): { output: string; exit: string; instructions: number } {
  const m = new Machine({ mode: "real" });
  m.load(HELLO_CODE, { format: "raw", loadAddr: 0x1000 });
  m.vcpu.setRegs({ rax: 2, rbx: 2 });
  const r = m.run();
  return { output: m.console, exit: r.exit.reason, instructions: r.instructions };
}

if (import.meta.main) {
  const a = helloKvm();
  console.log(`KVM API: the guest printed ${JSON.stringify(a.output)}; exits ${a.exits.join(", ")}; RIP 0x${a.rip.toString(16)} (past the HLT)`);
  const b = helloMachine();
  console.log(`Machine: the guest printed ${JSON.stringify(b.output)}; the run ended with ${b.exit} after ${b.instructions} instructions`);
  console.log("This ran the classic KVM hello (mov dx,0x3f8; add al,bl; add al,'0'; out dx,al; mov al,'\\n'; out dx,al; hlt) with RAX=2, RBX=2 in real mode.");
}

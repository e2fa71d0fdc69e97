/**
 * Page faults against the SDM (found by the QEMU oracle, tests/oracle/qemu.ts): the accessed flag
 * of a PDE the walk used to reach a PTE that then faults, and CR2 for an access that straddles
 * two pages. Expected values come from the SDM's text, under every engine.
 */
import { test } from "node:test";
import { assertEquals } from "./assert.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { loadJit } from "../runtime/vmm/tiering.ts";
import { VmcsField } from "../runtime/cpu/vmcs.ts";

const ENGINES = ["interp", "jit", "auto"] as const;
const PD = 0x10000, PT = 0x11000;

/** Identity-map 0-4 MiB through one page table (PDE with A clear), minus the pages in `absent`; run `code` at 0x100000. */
async function runPaged(code: number[], absent: number[], engine: (typeof ENGINES)[number]) {
  if (engine !== "interp") await loadJit();
  const m = new Machine({ mode: "protected", memSize: 16 << 20, engine, jit: { threshold: 1 } });
  const pd = new DataView(new ArrayBuffer(4096)), pt = new DataView(new ArrayBuffer(4096));
  pd.setUint32(0, PT | 3, true);
  for (let k = 0; k < 1024; k++) if (!absent.includes(k << 12)) pt.setUint32(4 * k, (k << 12) | 3, true);
  m.vm.writeGuest(PD, new Uint8Array(pd.buffer));
  m.vm.writeGuest(PT, new Uint8Array(pt.buffer));
  m.load(new Uint8Array([...code, 0xf4]), { format: "raw", loadAddr: 0x100000 });
  const s = m.vcpu.getSregs();
  s.cr3 = PD;
  s.cr0 = 0x80000011;
  m.vcpu.setSregs(s);
  m.vcpu.vmcsWrite(VmcsField.EXCEPTION_BITMAP, 1 << 14);
  const r = m.run({ budget: 1000 });
  const pde = new DataView(m.vm.readGuest(PD, 4).slice().buffer).getUint32(0, true);
  return { exit: r.exit, cr2: m.vcpu.getSregs().cr2, pde, eip: m.vcpu.getRegs().rip };
}

const MOV_EAX = (a: number) => [0xa1, a & 0xff, (a >>> 8) & 0xff, (a >>> 16) & 0xff, a >>> 24];

for (const engine of ENGINES) {
  test(`paging (${engine}): a PTE that is not present still leaves the PDE that led to it accessed (SDM 4.8)`, async () => {
    const r = await runPaged(MOV_EAX(0x200000), [0x200000], engine);
    assertEquals(r.exit, { reason: "exception", exception: 14, errorCode: 0 });
    assertEquals([r.cr2, r.eip], [0x200000, 0x100000]);
    assertEquals(r.pde & 0x20, 0x20);
  });

  test(`paging (${engine}): a read straddling two pages reports its own address in CR2 when the first page faults`, async () => {
    const r = await runPaged(MOV_EAX(0x200ffd), [0x200000], engine);
    assertEquals(r.exit, { reason: "exception", exception: 14, errorCode: 0 });
    assertEquals(r.cr2, 0x200ffd);
  });

  test(`paging (${engine}): a read straddling two pages reports the second page in CR2 when only it faults`, async () => {
    const r = await runPaged(MOV_EAX(0x200ffe), [0x201000], engine);
    assertEquals(r.exit, { reason: "exception", exception: 14, errorCode: 0 });
    assertEquals(r.cr2, 0x201000);
  });

  test(`paging (${engine}): a write straddling two pages reports its own address in CR2 when both fault`, async () => {
    const r = await runPaged([0xc7, 0x05, 0xfe, 0x0f, 0x20, 0x00, 1, 2, 3, 4], [0x200000, 0x201000], engine);
    assertEquals(r.exit, { reason: "exception", exception: 14, errorCode: 2 });
    assertEquals(r.cr2, 0x200ffe);
  });
}

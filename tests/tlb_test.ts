/**
 * The software TLB against the page tables it caches, under every engine. The expected values come
 * from the SDM's definition of paging (each linear page maps to its own frame), not from another
 * run of this processor: a bug the interpreter and the JIT share shows here.
 */
import { test } from "node:test";
import { assertEquals } from "./assert.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { loadJit } from "../runtime/vmm/tiering.ts";

const ENGINES = ["interp", "jit", "auto"] as const;

async function runPaged(code: number[], engine: (typeof ENGINES)[number]) {
  if (engine !== "interp") await loadJit();
  const m = new Machine({ mode: "paged", memSize: 64 << 20, engine, jit: { threshold: 1 } });
  m.load(new Uint8Array(code), { format: "raw", loadAddr: 0x300000 });
  const r = m.run({ budget: 1_000_000 });
  return { exit: r.exit.reason, regs: m.vcpu.getRegs(), m };
}

for (const engine of ENGINES) {
  test(`TLB (${engine}): a read of a page 16 MiB away shares a slot with a written page and does not take over its writes`, async () => {
    const code = [
      0xc7, 0x05, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x00, 0x00, // mov dword [0x100000], 1
      0xa1, 0x00, 0x00, 0x10, 0x01, //                               mov eax, [0x1100000]
      0xc7, 0x05, 0x00, 0x00, 0x10, 0x00, 0x02, 0x00, 0x00, 0x00, // mov dword [0x100000], 2
      0x8b, 0x1d, 0x00, 0x00, 0x10, 0x00, //                         mov ebx, [0x100000]
      0x8b, 0x0d, 0x00, 0x00, 0x10, 0x01, //                         mov ecx, [0x1100000]
      0xf4, //                                                       hlt
    ];
    const { exit, regs, m } = await runPaged(code, engine);
    assertEquals(exit, "hlt");
    assertEquals(regs.rbx, 2, "the second write to 0x100000 went elsewhere");
    assertEquals(regs.rcx, 0, "a write to 0x100000 landed at 0x1100000");
    const phys = m.vm.readGuest(0x1100000, 4);
    assertEquals([...phys], [0, 0, 0, 0], "guest-physical 0x1100000 was written");
  });

  test(`TLB (${engine}): 32 pages that alias in pairs, written and read back in a loop, each keep their own value`, async () => {
    // for i in 0..31: page(i) = 0x100000 + (i & 15) * 0x1000 + (i >> 4) * 0x1000000; [page(i)] = i+1
    // with a read of the page that shares its slot between two writes, then sum [page(i)] * (i+1)
    // over all i into EDX.
    const code = [
      0x31, 0xc9, //                   xor ecx, ecx
      // w: (ecx = i) esi = ((i&15)<<12) + ((i>>4)<<24) + 0x100000
      0x89, 0xce, //                   mov esi, ecx
      0x83, 0xe6, 0x0f, //             and esi, 15
      0xc1, 0xe6, 0x0c, //             shl esi, 12
      0x89, 0xcf, //                   mov edi, ecx
      0xc1, 0xef, 0x04, //             shr edi, 4
      0xc1, 0xe7, 0x18, //             shl edi, 24
      0x01, 0xfe, //                   add esi, edi
      0x81, 0xc6, 0x00, 0x00, 0x10, 0x00, // add esi, 0x100000
      0x8b, 0x86, 0x00, 0x00, 0x00, 0x00, // mov eax, [esi]   (a read fills the slot first)
      0x89, 0x06, //                   mov [esi], eax   (a write entry for this page)
      0x89, 0xf7, //                   mov edi, esi
      0x81, 0xf7, 0x00, 0x00, 0x00, 0x01, // xor edi, 0x1000000 (the page that shares its slot)
      0x8b, 0x07, //                   mov eax, [edi]   (a read entry for it in the same slot)
      0x8d, 0x41, 0x01, //             lea eax, [ecx+1]
      0x89, 0x06, //                   mov [esi], eax
      0x41, //                         inc ecx
      0x83, 0xf9, 0x20, //             cmp ecx, 32
      0x75, 0xcb, //                   jne w
      0x31, 0xc9, //                   xor ecx, ecx
      0x31, 0xd2, //                   xor edx, edx
      // r:
      0x89, 0xce, 0x83, 0xe6, 0x0f, 0xc1, 0xe6, 0x0c, 0x89, 0xcf, 0xc1, 0xef, 0x04, 0xc1, 0xe7, 0x18, 0x01, 0xfe,
      0x81, 0xc6, 0x00, 0x00, 0x10, 0x00,
      0x8b, 0x06, //                   mov eax, [esi]
      0x8d, 0x79, 0x01, //             lea edi, [ecx+1]
      0x0f, 0xaf, 0xc7, //             imul eax, edi
      0x01, 0xc2, //                   add edx, eax
      0x41, //                         inc ecx
      0x83, 0xf9, 0x20, //             cmp ecx, 32
      0x75, 0xd8, //                   jne r
      0xf4, //                         hlt
    ];
    const { exit, regs } = await runPaged(code, engine);
    assertEquals(exit, "hlt");
    let want = 0;
    for (let i = 1; i <= 32; i++) want += i * i;
    assertEquals(regs.rdx, want);
  });
}

/**
 * System architecture against the SDM (vol. 3): call gates and privilege changes, conforming code,
 * far RET/IRET to an outer ring, hardware task switches, virtual-8086 mode, the trap flag, double
 * and triple faults, descriptor-load error codes, expand-down segments, paging checks with A/D bits
 * and TLB flushes, LAR/LSL/VERR/VERW/ARPL, MSRs, CPUID and UD2. Each test is a small guest built by
 * hand (the bytes are spelled out beside their mnemonics) and run through the KVM API.
 *
 * The machine (`sys()`): flat protected mode, a GDT at 0x2000 with ring-0 and ring-3 segments, two
 * 32-bit TSSs, a call gate and a task gate; the harness's IDT at 0x600; TR = TSS A (ESP0 0x70000).
 */
import { test } from "node:test";
import { assert, assertEquals } from "./assert.ts";
import { CpuHarness, flatSeg, IDT_BASE } from "./cpu_harness.ts";

const GDT = 0x2000, TSS_A = 0x3000, TSS_B = 0x3200, IOMAP = 0x68;
const CODE = 0x10000, RING3 = 0x11000, HANDLER = 0x12000, TASK_B = 0x13000;
const STACK0 = 0x70000, STACK3 = 0x60000, STACK_B = 0x50000;
const SEL = {
  CODE0: 0x08, DATA0: 0x10, CODE3: 0x1b, DATA3: 0x23, TSS_A: 0x28, TSS_B: 0x30, GATE: 0x3b, TASK_GATE: 0x43,
  CONF0: 0x48, EXPDOWN: 0x50, NOTPRESENT: 0x58, CODE16: 0x60, DATA16: 0x68,
} as const;

const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const u16 = (v: number) => [v & 0xff, (v >>> 8) & 0xff];
/** A segment descriptor (SDM 3.4.5): `access` is the P/DPL/S/type byte, `flags` the G/DB nibble. */
function desc(base: number, limit: number, access: number, flags = 0xc): number[] {
  return [limit & 0xff, (limit >> 8) & 0xff, base & 0xff, (base >> 8) & 0xff, (base >> 16) & 0xff, access,
    ((flags << 4) | ((limit >> 16) & 0xf)), (base >>> 24) & 0xff];
}
/** A gate descriptor (SDM 5.8.3, 6.11): call, interrupt, trap or task gate. */
function gate(sel: number, offset: number, access: number, params = 0): number[] {
  return [offset & 0xff, (offset >> 8) & 0xff, sel & 0xff, sel >> 8, params, access, (offset >> 16) & 0xff, (offset >>> 24) & 0xff];
}

// A few encodings (SDM vol. 2).
const A = {
  movImm: (r: number, v: number) => [0xb8 + r, ...u32(v)], // mov r32, imm32
  movAx: (v: number) => [0x66, 0xb8, ...u16(v)], // mov ax, imm16
  movSegAx: (sreg: number) => [0x8e, 0xc0 | (sreg << 3)], // mov sreg, ax
  store: (addr: number) => [0xa3, ...u32(addr)], // mov [addr], eax
  load: (addr: number) => [0xa1, ...u32(addr)], // mov eax, [addr]
  push: (v: number) => [0x68, ...u32(v)],
  callf: (sel: number, off: number) => [0x9a, ...u32(off), ...u16(sel)],
  jmpf: (sel: number, off: number) => [0xea, ...u32(off), ...u16(sel)],
  retf: (n: number) => [0xca, ...u16(n)],
  int: (n: number) => [0xcd, n],
  incMem: (addr: number) => [0xff, 0x05, ...u32(addr)], // inc dword [addr]
  iretd: [0xcf], hlt: [0xf4], nop: [0x90], pushfd: [0x9c], popfd: [0x9d], ud2: [0x0f, 0x0b],
};
const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESI = 6, EDI = 7;
const ES = 0, SS = 2, DS = 3;

/** A protected-mode machine with the GDT, TSSs and stacks described above. */
function sys(): CpuHarness {
  const h = new CpuHarness("protected");
  const gdt = [
    ...desc(0, 0, 0, 0),
    ...desc(0, 0xfffff, 0x9b), // 0x08 code, ring 0
    ...desc(0, 0xfffff, 0x93), // 0x10 data, ring 0
    ...desc(0, 0xfffff, 0xfb), // 0x18 code, ring 3
    ...desc(0, 0xfffff, 0xf3), // 0x20 data, ring 3
    ...desc(TSS_A, IOMAP + 0x2000 / 8, 0x8b, 0), // 0x28 TSS A, 32-bit, busy (it is TR)
    ...desc(TSS_B, 0x67, 0x89, 0), // 0x30 TSS B, 32-bit, available
    ...gate(SEL.CODE0, HANDLER, 0xec, 2), // 0x38 call gate, DPL 3, 2 dword parameters
    ...gate(SEL.TSS_B, 0, 0xe5), // 0x40 task gate to TSS B, DPL 3
    ...desc(0, 0xfffff, 0x9f), // 0x48 conforming code, DPL 0
    ...desc(0, 0x0fff, 0x97, 0x4), // 0x50 expand-down data, B=1, limit 0xfff (byte granular)
    ...desc(0, 0xfffff, 0x13), // 0x58 data, not present
    ...desc(0, 0xffff, 0x9b, 0), // 0x60 16-bit code, ring 0
    ...desc(0, 0xffff, 0x93, 0), // 0x68 16-bit data, ring 0
  ];
  h.write(GDT, gdt);
  // TSS A: ESP0/SS0 for ring transitions, an I/O bitmap allowing only port 0x80.
  const tssA = new Uint8Array(IOMAP + 0x2000 / 8 + 1);
  tssA.set(u32(STACK0), 4);
  tssA.set(u16(SEL.DATA0), 8);
  tssA.set(u16(IOMAP), 0x66);
  tssA.fill(0xff, IOMAP);
  tssA[IOMAP + 0x80 / 8] = 0xfe;
  h.write(TSS_A, tssA);
  const s = h.vcpu.getSregs();
  s.gdt = { base: GDT, limit: gdt.length - 1 };
  s.tr = { base: TSS_A, limit: IOMAP + 0x2000 / 8, selector: SEL.TSS_A, type: 0xb, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 };
  h.vcpu.setSregs(s);
  return h;
}
/** Start at CODE in ring 0 with ESP = STACK0. */
function start(h: CpuHarness, code: number[], regs: Record<string, number> = {}) {
  h.write(CODE, code);
  h.vcpu.setRegs({ rax: 0, rbx: 0, rcx: 0, rdx: 0, rsi: 0, rdi: 0, rbp: 0, rsp: STACK0, rflags: 2, ...regs, rip: CODE });
  return h.run(100_000);
}
/**
 * Ring-0 code that enters ring 3 at RING3 with ESP = STACK3 (an IRETD with a ring-3 frame), with
 * DS and ES loaded with ring-3 data first unless `keepData`.
 */
function toRing3(keepData = false): number[] {
  const data = keepData ? [] : [...A.movAx(SEL.DATA3), ...A.movSegAx(DS), ...A.movSegAx(ES)];
  return [...data, ...A.push(SEL.DATA3), ...A.push(STACK3), ...A.push(0x2), ...A.push(SEL.CODE3), ...A.push(RING3), ...A.iretd];
}
/** An interrupt gate for `vector` to ring-0 code at `addr`, callable from ring 3 (DPL 3). */
function userGate(h: CpuHarness, vector: number, addr: number): void {
  h.write(IDT_BASE + vector * 8, gate(SEL.CODE0, addr, 0xee));
}
const dwords = (h: CpuHarness, addr: number, n: number) => Array.from({ length: n }, (_, k) => h.read32(addr + 4 * k));

test("a far CALL through a call gate from ring 3 switches to the TSS's ring-0 stack and copies the parameters", () => {
  const h = sys();
  h.write(RING3, [
    ...A.push(0x1111), ...A.push(0x2222), // two parameters
    ...A.callf(SEL.GATE, 0), // the gate's offset is used, not this one
  ]);
  h.write(HANDLER, [0x89, 0xe6, 0x8c, 0xd7, 0x8c, 0xcd, ...A.hlt]); // mov esi, esp; mov edi, ss; mov ebp, cs
  const r = start(h, toRing3());
  assertEquals(r.exit.reason, "hlt");
  // SS:ESP from the TSS's ring-0 slot; the frame: EIP, CS, the parameters, ESP3, SS3.
  assertEquals([r.regs.rdi, r.regs.rsi, r.regs.rbp], [SEL.DATA0, STACK0 - 24, SEL.CODE0]);
  assertEquals(dwords(h, STACK0 - 24, 6), [RING3 + 17, SEL.CODE3, 0x2222, 0x1111, STACK3 - 8, SEL.DATA3]);
});

test("RETF 8 from a call gate's target returns to ring 3 and releases the parameters", () => {
  const h = sys();
  userGate(h, 0x80, HANDLER + 0x100);
  h.write(RING3, [...A.push(0x1111), ...A.push(0x2222), ...A.callf(SEL.GATE, 0), ...A.movImm(EBX, 0x3333), ...A.int(0x80)]);
  h.write(HANDLER, A.retf(8));
  h.write(HANDLER + 0x100, A.hlt);
  const r = start(h, toRing3());
  assertEquals(r.exit.reason, "hlt");
  assertEquals(r.regs.rbx, 0x3333);
  // The INT 0x80 frame holds ring 3's CS:EIP and SS:ESP with the parameters released.
  assertEquals(dwords(h, STACK0 - 20, 5), [RING3 + 24, SEL.CODE3, 0x2, STACK3, SEL.DATA3]);
});

test("a call gate whose DPL is below the CPL, and a JMP to a more privileged non-conforming segment, raise #GP with the selector", () => {
  const h = sys();
  h.write(GDT + 0x38, gate(SEL.CODE0, HANDLER, 0x8c, 0)); // the gate, DPL 0 now
  h.setHandler(13, HANDLER + 0x100);
  userGate(h, 13, HANDLER + 0x100);
  h.write(HANDLER + 0x100, A.hlt);
  h.write(RING3, A.callf(SEL.GATE, 0));
  let r = start(h, toRing3());
  assertEquals([r.exit.reason, h.read32(STACK0 - 24)], ["hlt", SEL.GATE & 0xfffc]);
  h.write(RING3, A.jmpf(SEL.CODE0, HANDLER));
  r = start(h, toRing3());
  assertEquals([r.exit.reason, h.read32(STACK0 - 24), h.read32(STACK0 - 20)], ["hlt", SEL.CODE0, RING3]);
});

test("a far CALL to a conforming ring-0 segment from ring 3 keeps CPL 3 (CS.RPL = 3)", () => {
  const h = sys();
  userGate(h, 0x80, HANDLER + 0x100);
  h.write(RING3, [...A.callf(SEL.CONF0, HANDLER), ...A.int(0x80)]);
  h.write(HANDLER, [0x8c, 0xcb, 0x8c, 0xd6, 0xcb]); // mov ebx, cs; mov esi, ss; retf
  h.write(HANDLER + 0x100, A.hlt);
  const r = start(h, toRing3());
  assertEquals(r.exit.reason, "hlt");
  assertEquals([r.regs.rbx, r.regs.rsi], [SEL.CONF0 | 3, SEL.DATA3]);
});

test("IRET to ring 3 nulls data segment registers the outer ring may not use", () => {
  const h = sys();
  userGate(h, 0x80, HANDLER);
  h.write(HANDLER, [0x8c, 0xdb, 0x8c, 0xc6, ...A.hlt]); // mov ebx, ds; mov esi, es
  h.write(RING3, A.int(0x80));
  // DS = ring-0 data (nulled by the IRET), ES = ring-3 data (kept).
  const r = start(h, [...A.movAx(SEL.DATA3), ...A.movSegAx(ES), ...toRing3(true)]);
  assertEquals([r.exit.reason, r.regs.rbx, r.regs.rsi], ["hlt", 0, SEL.DATA3]);
});

/**
 * Write task B's 32-bit TSS: EIP = TASK_B, EFLAGS = 2, ESP = STACK_B, flat ring-0 segments (SS may
 * be replaced to make its load fault), and `eax` when given.
 */
function writeTssB(h: CpuHarness, opts: { eax?: number; ss?: number } = {}): void {
  const tssB = new Uint8Array(0x68);
  tssB.set(u32(TASK_B), 0x20); // EIP
  tssB.set(u32(0x2), 0x24); // EFLAGS
  if (opts.eax !== undefined) tssB.set(u32(opts.eax), 0x28); // EAX
  tssB.set(u32(STACK_B), 0x38); // ESP
  const ss = opts.ss ?? SEL.DATA0;
  for (const [off, sel] of [[0x48, SEL.DATA0], [0x4c, SEL.CODE0], [0x50, ss], [0x54, SEL.DATA0]]) tssB.set(u16(sel), off);
  h.write(TSS_B, tssB);
}

test("a far JMP to a TSS switches tasks: the old state is saved, busy bits move, CR0.TS is set, no back link", () => {
  const h = sys();
  writeTssB(h, { eax: 0xb0b0 });
  h.write(TASK_B, [0x0f, 0x00, 0xc9, ...A.hlt]); // str ecx; hlt
  const r = start(h, [...A.movImm(EBX, 0xa1a1), ...A.jmpf(SEL.TSS_B, 0)]);
  assertEquals(r.exit.reason, "hlt");
  assertEquals([r.regs.rax, r.regs.rcx, r.regs.rsp, r.regs.rip], [0xb0b0, SEL.TSS_B, STACK_B, TASK_B + 4]);
  assertEquals(h.read32(TSS_A + 0x20), CODE + 12); // saved EIP: after the JMP
  assertEquals(h.read32(TSS_A + 0x34), 0xa1a1); // saved EBX
  assertEquals(h.read16(TSS_A + 0x4c), SEL.CODE0); // saved CS
  assertEquals(h.read8(GDT + 0x28 + 5) & 0xf, 0x9); // old TSS available again
  assertEquals(h.read8(GDT + 0x30 + 5) & 0xf, 0xb); // new TSS busy
  assertEquals(h.read16(TSS_B), 0); // JMP writes no back link
  assertEquals((h.vcpu.getSregs().cr0 & 8) !== 0, true); // CR0.TS
  assertEquals(r.flags & 0x4000, 0); // NT clear
});

test("a far CALL through a task gate nests (NT, back link) and IRET returns to the caller's task", () => {
  const h = sys();
  writeTssB(h);
  // Task B records its NT flag and back link, then returns with IRET.
  h.write(TASK_B, [...A.pushfd, 0x5e, ...A.load(TSS_B), 0x89, 0xc7, ...A.iretd]); // pushfd; pop esi; mov eax,[link]; mov edi,eax; iretd
  const r = start(h, [...A.movImm(EBX, 0x77), ...A.callf(SEL.TASK_GATE, 0), ...A.movImm(ECX, 0x99), ...A.hlt]);
  assertEquals(r.exit.reason, "hlt");
  assertEquals([r.regs.rbx, r.regs.rcx], [0x77, 0x99]); // back in task A, after the CALL
  assertEquals(h.read32(TSS_B + 0x40) & 0x4000, 0x4000); // task B ran with NT (its saved ESI)
  assertEquals(h.read32(TSS_B + 0x44), SEL.TSS_A); // and saw the back link to task A (its saved EDI)
  assertEquals(h.read8(GDT + 0x28 + 5) & 0xf, 0xb); // A busy again
  assertEquals(h.read8(GDT + 0x30 + 5) & 0xf, 0x9); // B released by the IRET
  assertEquals(h.vcpu.getSregs().tr.selector, SEL.TSS_A);
});

test("an exception through a task gate in the IDT switches tasks and pushes the error code on the new task's stack", () => {
  const h = sys();
  writeTssB(h);
  h.write(IDT_BASE + 13 * 8, gate(SEL.TSS_B, 0, 0x85)); // #GP → task B
  h.write(TASK_B, A.hlt);
  // Loading SS with a code selector is #GP(selector): delivered through the task gate.
  const r2 = start(h, [...A.movAx(SEL.CODE0), ...A.movSegAx(SS)]);
  assertEquals(r2.exit.reason, "hlt");
  assertEquals(r2.regs.rsp, STACK_B - 4);
  assertEquals(h.read32(STACK_B - 4), SEL.CODE0);
  assertEquals(h.read32(TSS_A + 0x20), CODE + 4); // the faulting instruction, saved as task A's EIP
});
test("a task switch to a TSS whose SS selector is bad raises #TS(SS selector) in the new task", () => {
  const h = sys();
  writeTssB(h, { ss: SEL.CODE3 });
  h.setHandler(10, HANDLER);
  h.write(HANDLER, A.hlt);
  // The #TS is delivered in task B's context, on the stack it has (task A's SS, since SS failed to load).
  const r = start(h, A.jmpf(SEL.TSS_B, 0));
  assertEquals(r.exit.reason, "hlt");
  assertEquals(h.vcpu.getSregs().tr.selector, SEL.TSS_B);
  assertEquals(h.read32(STACK_B - 16), SEL.CODE3 & 0xfffc);
  assertEquals(h.read32(STACK_B - 12), TASK_B);
});

test("a JMP to a busy TSS raises #GP(selector)", () => {
  const h = sys();
  h.setHandler(13, HANDLER);
  h.write(HANDLER, A.hlt);
  const r = start(h, A.jmpf(SEL.TSS_A, 0));
  assertEquals([r.exit.reason, h.read32(STACK0 - 16)], ["hlt", SEL.TSS_A]);
});

/** Ring-0 code that enters virtual-8086 mode at 0x1000:0x0100 (linear 0x10100) with IOPL `iopl`. */
function toV86(iopl: number): number[] {
  return [
    ...A.push(0), ...A.push(0), ...A.push(0x2000), ...A.push(0x3000), // GS FS DS ES
    ...A.push(0x5000), ...A.push(0xfff0), // SS:SP
    ...A.push(0x20002 | (iopl << 12)), ...A.push(0x1000), ...A.push(0x0100), ...A.iretd,
  ];
}
const V86_CODE = 0x10100;

test("IRET with VM=1 enters virtual-8086 mode; CLI with IOPL < 3 is #GP(0) in ring 0 with the v86 frame and null data segments", () => {
  const h = sys();
  h.setHandler(13, HANDLER);
  h.write(HANDLER, [0x8c, 0xdb, 0x8c, 0xc6, ...A.hlt]); // mov ebx, ds; mov esi, es
  // v86: mov ax, 0x1234; mov ds, ax (real-mode load); mov [0], ax; cli
  h.write(V86_CODE, [0xb8, 0x34, 0x12, 0x8e, 0xd8, 0xa3, 0x00, 0x00, 0xfa]);
  const r = start(h, toV86(0));
  assertEquals(r.exit.reason, "hlt");
  assertEquals(h.read16(0x12340), 0x1234); // DS base = 0x1234 << 4
  assertEquals([r.regs.rbx, r.regs.rsi], [0, 0]);
  // Error code, EIP, CS, EFLAGS (VM), ESP, SS, ES, DS, FS, GS.
  const f = dwords(h, STACK0 - 40, 10);
  assertEquals(f[0], 0);
  assertEquals(f.slice(1, 3), [0x108, 0x1000]);
  assertEquals(f[3] & 0x20000, 0x20000);
  assertEquals(f.slice(4), [0xfff0, 0x5000, 0x3000, 0x1234, 0, 0]);
  assertEquals(r.flags & 0x20000, 0);
});

test("INT n in virtual-8086 mode with IOPL 3 goes through the IDT to ring 0; IRET returns to v86", () => {
  const h = sys();
  userGate(h, 0x21, HANDLER);
  h.write(HANDLER, [...A.movImm(EDX, 0x55), ...A.iretd]);
  h.setHandler(13, HANDLER + 0x100);
  h.write(HANDLER + 0x100, A.hlt);
  // v86: int 0x21; mov cx, dx; hlt (HLT in v86 is #GP: CPL 3)
  h.write(V86_CODE, [0xcd, 0x21, 0x89, 0xd1, 0xf4]);
  const r = start(h, toV86(3));
  assertEquals(r.exit.reason, "hlt");
  assertEquals(r.regs.rcx & 0xffff, 0x55);
  assertEquals(dwords(h, STACK0 - 40, 3), [0, 0x104, 0x1000]); // #GP at the HLT
});

test("IN/OUT in virtual-8086 mode follow the TSS I/O bitmap, whatever IOPL is", () => {
  const h = sys();
  h.setHandler(13, HANDLER);
  h.write(HANDLER, A.hlt);
  // v86: out 0x80, al (allowed); out 0x81, al (denied)
  h.write(V86_CODE, [0xe6, 0x80, 0xe6, 0x81, 0xf4]);
  const r = start(h, toV86(3));
  assertEquals(r.exit.reason, "hlt");
  assertEquals(h.io.map((x) => x.port), [0x80]);
  assertEquals(dwords(h, STACK0 - 40, 2), [0, 0x102]);
});

test("IN/OUT in ring 3 with IOPL 0 follow the TSS I/O bitmap: an allowed port exits to the VMM, a denied one is #GP(0)", () => {
  const h = sys();
  h.setHandler(13, HANDLER);
  h.write(HANDLER, A.hlt);
  // mov al, 0x42; out 0x80, al; mov dx, 0x80; out dx, al; in al, dx (allowed); out 0x81, al (denied); hlt
  h.write(RING3, [0xb0, 0x42, 0xe6, 0x80, 0x66, 0xba, 0x80, 0x00, 0xee, 0xec, 0xe6, 0x81, ...A.hlt]);
  const r = start(h, toRing3());
  assertEquals(r.exit.reason, "hlt");
  assertEquals(r.regs.rip, HANDLER + 1);
  assertEquals(h.io.map((x) => [x.port, x.value]), [[0x80, 0x42], [0x80, 0x42]]);
  assertEquals(r.regs.rax & 0xff, 0xff, "the IN read the open bus");
  // The #GP frame on the ring-0 stack: error code 0, EIP at the denied OUT, CS, EFLAGS, ESP, SS.
  assertEquals(dwords(h, STACK0 - 24, 3), [0, RING3 + 10, SEL.CODE3]);
});

test("the trap flag raises #DB after each instruction, none after the instruction that sets TF, and MOV SS delays it", () => {
  const h = sys();
  const COUNT = 0x9000;
  h.setHandler(1, HANDLER);
  // #DB handler: count, return.
  h.write(HANDLER, [...A.incMem(COUNT), ...A.iretd]);
  const code = [
    ...A.pushfd, 0x81, 0x0c, 0x24, ...u32(0x100), ...A.popfd, // set TF (no trap after this POPF)
    ...A.nop, ...A.nop, // 2 traps
    ...A.movAx(SEL.DATA0), ...A.movSegAx(SS), ...A.nop, // MOV SS: one trap, after the NOP (2 instructions → 2 traps total: mov ax, nop)
    ...A.pushfd, 0x81, 0x24, 0x24, ...u32(~0x100), ...A.popfd, // clear TF: traps after pushfd, and, popfd
    ...A.hlt,
  ];
  const r = start(h, code);
  assertEquals(r.exit.reason, "hlt");
  // nop, nop, mov ax, (mov ss + nop) → 1, pushfd, and, popfd = 7
  assertEquals(h.read32(COUNT), 7);
  assertEquals(r.flags & 0x100, 0);
});

test("INT n with TF set runs its handler untraced and raises no trap after the INT itself", () => {
  const h = sys();
  const COUNT = 0x9000;
  h.setHandler(1, HANDLER);
  h.write(HANDLER, [...A.incMem(COUNT), ...A.iretd]);
  h.setHandler(0x30, HANDLER + 0x100);
  h.write(HANDLER + 0x100, [...A.nop, ...A.nop, ...A.nop, ...A.iretd]);
  const code = [...A.pushfd, 0x81, 0x0c, 0x24, ...u32(0x100), ...A.popfd, ...A.int(0x30), ...A.nop, ...A.hlt];
  const r = start(h, code);
  assertEquals(r.exit.reason, "hlt");
  // No trap after INT (TF cleared by delivery), none in the handler, none after the IRET that sets
  // TF again; the NOP traps, the HLT exits before its trap.
  assertEquals(h.read32(COUNT), 1);
});

test("#GP while delivering #GP (handler gate not present) becomes #DF with error code 0; a fault in #DF is a triple fault", () => {
  const h = sys();
  h.write(IDT_BASE + 13 * 8, gate(SEL.CODE0, HANDLER, 0x0e)); // #GP gate, not present → #NP (contributory)
  h.setHandler(8, HANDLER + 0x100);
  h.write(HANDLER + 0x100, A.hlt);
  let r = start(h, [...A.movAx(0), ...A.movSegAx(SS)]); // MOV SS, null: #GP(0)
  assertEquals(r.exit.reason, "hlt");
  assertEquals(h.read32(STACK0 - 16), 0); // #DF error code
  assertEquals(h.read32(STACK0 - 12), CODE + 4);
  h.write(IDT_BASE + 8 * 8, new Uint8Array(8)); // no #DF handler either
  r = start(h, [...A.movAx(0), ...A.movSegAx(SS)]);
  assertEquals(r.exit.reason, "shutdown");
});

test("segment loads raise #GP/#NP/#SS with the selector as error code", () => {
  const h = sys();
  h.setHandler(11, HANDLER);
  h.setHandler(12, HANDLER);
  h.setHandler(13, HANDLER);
  h.write(HANDLER, A.hlt);
  const cases: [number, number, number, number][] = [
    // [sreg, selector, vector, error code]
    [DS, SEL.NOTPRESENT, 11, SEL.NOTPRESENT],
    [SS, SEL.NOTPRESENT, 12, SEL.NOTPRESENT],
    [SS, SEL.DATA3 & ~3, 13, SEL.DATA3 & ~3], // DPL 3 stack at CPL 0
    [DS, 0x1000, 13, 0x1000], // beyond the GDT limit
    [ES, SEL.TSS_B, 13, SEL.TSS_B], // a system descriptor
  ];
  for (const [sreg, sel, vec, err] of cases) {
    const r = start(h, [...A.movImm(ECX, vec), ...A.movAx(sel), ...A.movSegAx(sreg)]);
    assertEquals([r.exit.reason, h.read32(STACK0 - 16)], ["hlt", err], `sreg ${sreg} sel ${sel.toString(16)}`);
    assertEquals(h.read32(STACK0 - 12), CODE + 9);
  }
});

test("an expand-down data segment allows offsets above its limit and faults at or below it", () => {
  const h = sys();
  h.setHandler(13, HANDLER);
  h.write(HANDLER, A.hlt);
  // ds = expand-down (limit 0xfff); mov [0x2000], eax (fine); mov eax, [0x800] (#GP(0))
  const r = start(h, [...A.movAx(SEL.EXPDOWN), ...A.movSegAx(DS), ...A.movImm(EAX, 0x4242), ...A.store(0x2000), ...A.load(0x800)]);
  assertEquals(r.exit.reason, "hlt");
  assertEquals(h.read32(0x2000), 0x4242);
  assertEquals([h.read32(STACK0 - 16), h.read32(STACK0 - 12)], [0, CODE + 16]);
});

// ---------------------------------------------------------------------------------------------
// Paging
// ---------------------------------------------------------------------------------------------
const PD = 0x100000, PT = 0x101000;
/** 4 KiB identity paging over the first 4 MiB, U/S and R/W set; `pte` overrides entries. */
function paged(h: CpuHarness, pte: Record<number, number> = {}, cr0Extra = 0): void {
  const pd = new Uint8Array(4096), pt = new Uint8Array(4096);
  pd.set(u32(PT | 0x7), 0);
  for (let k = 0; k < 1024; k++) pt.set(u32(pte[k] ?? ((k << 12) | 0x7)), k * 4);
  h.write(PD, pd);
  h.write(PT, pt);
  const s = h.vcpu.getSregs();
  s.cr3 = PD;
  s.cr0 = (s.cr0 | 0x80000001 | cr0Extra) >>> 0;
  h.vcpu.setSregs(s);
}

test("paging sets accessed and dirty bits as the processor accesses pages", () => {
  const h = sys();
  paged(h);
  const r = start(h, [...A.load(0x40000), ...A.store(0x41000), ...A.hlt]);
  assertEquals(r.exit.reason, "hlt");
  const pte = (p: number) => h.read32(PT + p * 4) & 0x60;
  assertEquals([pte(0x40), pte(0x41), pte(0x42)], [0x20, 0x60, 0]);
  assertEquals(h.read32(PD) & 0x20, 0x20);
});

test("CR0.WP: a supervisor write to a read-only page is #PF(3) with WP=1 and allowed with WP=0; user access to a supervisor page is #PF(5)", () => {
  for (const wp of [0, 1]) {
    const h = sys();
    paged(h, { 0x40: 0x40000 | 0x5 }, wp ? 0x10000 : 0); // read-only, user
    h.setHandler(14, HANDLER);
    h.write(HANDLER, [0x0f, 0x20, 0xd1, ...A.hlt]); // mov ecx, cr2
    const r = start(h, [...A.movImm(EAX, 7), ...A.store(0x40010), ...A.hlt]);
    assertEquals(r.exit.reason, "hlt");
    if (wp) assertEquals([r.regs.rcx, h.read32(STACK0 - 16)], [0x40010, 3]);
    else assertEquals([r.regs.rcx, h.read32(0x40010)], [0, 7]);
  }
  const h = sys();
  paged(h, { 0x40: 0x40000 | 0x3 }); // supervisor only
  userGate(h, 14, HANDLER);
  h.write(HANDLER, A.hlt);
  h.write(RING3, A.load(0x40000));
  const r = start(h, toRing3());
  assertEquals([r.exit.reason, h.read32(STACK0 - 24), h.read32(STACK0 - 20)], ["hlt", 5, RING3]);
});

test("the TLB keeps a stale translation until INVLPG or MOV CR3 flushes it", () => {
  const h = sys();
  paged(h);
  h.write32(0x40000, 0xaaaa);
  h.write32(0x50000, 0xbbbb);
  const setPte = [...A.movImm(EAX, 0x50007), ...A.store(PT + 0x40 * 4)]; // map page 0x40 → 0x50000
  const code = [
    ...A.load(0x40000), 0x89, 0xc3, // mov ebx, eax   (fills the TLB)
    ...setPte,
    ...A.load(0x40000), 0x89, 0xc1, // mov ecx, eax   (stale: still 0xaaaa)
    ...A.movImm(EAX, 0x40000), 0x0f, 0x01, 0x38, // invlpg [eax]
    ...A.load(0x40000), 0x89, 0xc2, // mov edx, eax   (new: 0xbbbb)
    ...A.movImm(EAX, 0x40007), ...A.store(PT + 0x40 * 4), // back to 0x40000
    ...A.movImm(EAX, PD), 0x0f, 0x22, 0xd8, // mov cr3, eax
    ...A.load(0x40000), 0x89, 0xc6, // mov esi, eax   (0xaaaa again)
    ...A.hlt,
  ];
  const r = start(h, code);
  assertEquals(r.exit.reason, "hlt");
  assertEquals([r.regs.rbx, r.regs.rcx, r.regs.rdx, r.regs.rsi], [0xaaaa, 0xaaaa, 0xbbbb, 0xaaaa]);
});

// ---------------------------------------------------------------------------------------------
// Descriptor inspection, MSRs, CPUID, UD2
// ---------------------------------------------------------------------------------------------
test("LAR, LSL, VERR, VERW and ARPL report what the SDM says for visible and invisible selectors", () => {
  const h = sys();
  userGate(h, 0x80, HANDLER);
  h.write(HANDLER, A.hlt);
  const zf = (n: number) => [0x9c, 0x8f, 0x05, ...u32(0x9000 + n * 4)]; // pushfd; pop dword [0x9000+4n]
  h.write(RING3, [
    ...A.movImm(ECX, SEL.CODE3), 0x0f, 0x02, 0xc1, ...zf(0), // lar eax, ecx
    ...A.movImm(ECX, SEL.DATA3), 0x0f, 0x03, 0xd9, ...zf(1), // lsl ebx, ecx
    ...A.movImm(ECX, SEL.DATA0), 0x0f, 0x02, 0xd1, ...zf(2), // lar edx, ecx: DPL 0 from ring 3 → ZF=0
    ...A.movImm(ECX, SEL.CODE3), 0x0f, 0x00, 0xe1, ...zf(3), // verr cx: readable code → ZF=1
    0x0f, 0x00, 0xe9, ...zf(4), // verw cx: code → ZF=0
    ...A.movImm(ECX, SEL.DATA3), 0x0f, 0x00, 0xe9, ...zf(5), // verw cx: writable ring-3 data → ZF=1
    ...A.movImm(ESI, 0x10), 0x66, 0x63, 0xce, ...zf(6), // mov esi, 0x10; arpl si, cx → si = 0x13, ZF=1
    ...A.int(0x80),
  ]);
  const r = start(h, toRing3());
  assertEquals(r.exit.reason, "hlt");
  const z = (n: number) => (h.read32(0x9000 + n * 4) >> 6) & 1;
  assertEquals([z(0), z(1), z(2), z(3), z(4), z(5), z(6)], [1, 1, 0, 1, 0, 1, 1]);
  // LAR: the access-rights bytes masked by 00FxFF00H (bits 19:16, the limit, are left 0 here).
  assertEquals(r.regs.rax & ~0xf0000, 0x00c0fb00);
  assertEquals(r.regs.rbx, 0xffffffff);
  assertEquals(r.regs.rsi & 0xffff, 0x13);
});

test("RDMSR and WRMSR reach the kernel's MSR set; an unknown MSR and ring 3 are #GP(0)", () => {
  const h = sys();
  h.setHandler(13, HANDLER);
  h.write(HANDLER, [...A.movImm(EDI, 0xdead), ...A.hlt]);
  // wrmsr SYSENTER_ESP (0x175) = 0x1234; rdmsr → ebx; rdmsr 0x12345 (unknown)
  const r = start(h, [
    ...A.movImm(ECX, 0x175), ...A.movImm(EAX, 0x1234), ...A.movImm(EDX, 0), 0x0f, 0x30,
    ...A.movImm(EAX, 0), 0x0f, 0x32, 0x89, 0xc3,
    ...A.movImm(ECX, 0x12345), 0x0f, 0x32, ...A.hlt,
  ]);
  assertEquals(r.exit.reason, "hlt");
  assertEquals([r.regs.rbx, r.regs.rdi], [0x1234, 0xdead]);
});

test("CPUID reports a Pentium 4 class core: the x87 FPU, MMX, FXSR, SSE, SSE2, SSE3; UD2 raises #UD", () => {
  const h = sys();
  h.setHandler(6, HANDLER);
  h.write(HANDLER, [0x89, 0xc6, ...A.hlt]); // mov esi, eax
  const r = start(h, [...A.movImm(EAX, 1), 0x0f, 0xa2, 0x89, 0xd7, ...A.movImm(EAX, 0x6d6d), ...A.ud2]); // cpuid; mov edi, edx
  assertEquals(r.exit.reason, "hlt");
  const edx = r.regs.rdi;
  assert((edx & (1 << 4)) !== 0, "TSC");
  assert((edx & (1 << 5)) !== 0, "MSR");
  assertEquals(edx & 1, 1); // the x87 FPU (runtime/cpu/x87)
  for (const [bit, name] of [[23, "MMX"], [24, "FXSR"], [25, "SSE"], [26, "SSE2"]] as const) {
    assert((edx & (1 << bit)) !== 0, name); // runtime/cpu/sse
  }
  assertEquals(r.regs.rsi, 0x6d6d);
  assertEquals(h.read32(STACK0 - 12), CODE + 14); // #UD pushes the UD2's own address
});

// ---------------------------------------------------------------------------------------------
// Corners a 386 test ROM found (issue 13), each as the SDM (and the 386) has it.
// ---------------------------------------------------------------------------------------------
const ESP = 4, EBP = 5;
/** Ring-0 code that makes SS the 16-bit data segment (B=0) and sets ESP. */
const stack16 = (esp: number) => [...A.movAx(SEL.DATA16), ...A.movSegAx(SS), ...A.movImm(ESP, esp)];

test("PUSHAD on a 16-bit stack stores the whole ESP, and moves SP only", () => {
  const h = sys();
  const r = start(h, [...stack16(0x20000), 0x60, ...A.hlt], { rax: 0xa0, rcx: 0xc0, rdx: 0xd0, rbx: 0xb0, rbp: 0xbb, rsi: 0x51, rdi: 0xd1 });
  assertEquals(r.exit.reason, "hlt");
  assertEquals(dwords(h, 0xffe0, 8), [0xd1, 0x51, 0xbb, 0x20000, 0xb0, 0xd0, 0xc0, SEL.DATA16]); // EAX holds the selector
  assertEquals(r.regs.rsp, 0x2ffe0);
});

test("POP SS from a 16-bit stack into a B=1 segment moves the stack pointer as the 16-bit stack does", () => {
  const h = sys();
  // mov eax, 0x10; mov [0xfffc], eax; pop ss (32-bit operand size)
  const r = start(h, [...stack16(0x2fffc), ...A.movImm(EAX, SEL.DATA0), ...A.store(0xfffc), 0x17, ...A.hlt]);
  assertEquals(r.exit.reason, "hlt");
  assertEquals(r.regs.rsp, 0x20000);
  assertEquals(h.vcpu.getSregs().ss.db, 1);
});

test("o32 ENTER 8,36 on a 16-bit stack keeps the upper half of ESP in EBP and copies the frame pointers", () => {
  const h = sys();
  const r = start(h, [...stack16(0x20000), 0xc8, 0x08, 0x00, 0x24, ...A.hlt], { rbp: 0x2fff0 });
  assertEquals(r.exit.reason, "hlt");
  assertEquals(r.regs.rbp, 0x1fffc);
  assertEquals(r.regs.rsp, 0x2ffe4);
  assertEquals(h.read32(0xfffc), 0x2fff0, "the old EBP");
  assertEquals(h.read32(0xffec), 0x1fffc, "the frame pointer, the last level");
});

test("ENTER checks its final stack pointer: an allocation past the stack segment's limit is #SS(0) at the ENTER, nothing committed", () => {
  const h = sys();
  h.setSegs({ ss: { ...flatSeg(SEL.DATA0), limit: 0xffff, g: 0 } });
  h.setHandler(12, HANDLER);
  h.write(HANDLER, [...A.movImm(EBX, 0x77), ...A.hlt]);
  // mov esp, 0x1000; enter 0x2000, 0
  const r = start(h, [...A.movImm(ESP, 0x1000), 0xc8, 0x00, 0x20, 0x00, ...A.hlt], { rbp: 0x4444 });
  assertEquals(r.exit.reason, "hlt");
  assertEquals(r.regs.rbx, 0x77, "no #SS");
  assertEquals(r.regs.rbp, 0x4444);
  assertEquals(dwords(h, 0x1000 - 16, 2), [0, CODE + 5]); // error code 0, the ENTER's EIP
});

test("a fault while delivering INT n pushes the EIP of the INT: gate DPL below CPL, a less privileged target, IOPL < 3 in v86", () => {
  // From ring 3 through a DPL-0 gate: #GP(vector * 8 + 2).
  let h = sys();
  h.setHandler(0x30, HANDLER + 0x200);
  h.setHandler(13, HANDLER);
  h.write(HANDLER, A.hlt);
  h.write(RING3, A.int(0x30));
  let r = start(h, toRing3());
  assertEquals(r.exit.reason, "hlt");
  assertEquals(dwords(h, STACK0 - 24, 2), [0x30 * 8 + 2, RING3]);
  // From ring 0 through a gate to a ring-3 code segment: #GP(selector).
  h = sys();
  h.write(IDT_BASE + 0x31 * 8, gate(SEL.CODE3, RING3, 0xee));
  h.setHandler(13, HANDLER);
  h.write(HANDLER, A.hlt);
  r = start(h, [...A.nop, ...A.int(0x31)]);
  assertEquals(r.exit.reason, "hlt");
  assertEquals(dwords(h, STACK0 - 16, 2), [SEL.CODE3 & 0xfffc, CODE + 1]);
  // In virtual-8086 mode with IOPL 0: #GP(0) at the INT.
  h = sys();
  h.setHandler(13, HANDLER);
  h.write(HANDLER, A.hlt);
  h.write(V86_CODE, [0x90, 0xcd, 0x21]);
  r = start(h, toV86(0));
  assertEquals(r.exit.reason, "hlt");
  assertEquals(dwords(h, STACK0 - 40, 3), [0, 0x101, 0x1000]);
});

test("a task switch from a virtual-8086 task into a 16-bit TSS clears EFLAGS.VM: the new task runs in protected mode", () => {
  const h = sys();
  const TSS16 = 0x3400, SEL_TSS16 = 0x70, TASK16_CODE = 0x9000;
  h.write(GDT + SEL_TSS16, desc(TSS16, 0x2b, 0x81, 0)); // 16-bit TSS, available
  const s = h.vcpu.getSregs();
  s.gdt = { base: GDT, limit: SEL_TSS16 + 7 };
  h.vcpu.setSregs(s);
  const t = new Uint8Array(0x2c);
  t.set(u16(TASK16_CODE), 0x0e); // IP
  t.set(u16(0x2), 0x10); // FLAGS
  t.set(u16(0x8000), 0x1a); // SP
  t.set(u16(SEL.DATA16), 0x22); // ES
  t.set(u16(SEL.CODE16), 0x24); // CS
  t.set(u16(SEL.DATA16), 0x26); // SS
  t.set(u16(SEL.DATA16), 0x28); // DS
  h.write(TSS16, t);
  h.write(IDT_BASE + 0x22 * 8, gate(SEL_TSS16, 0, 0xe5)); // task gate, DPL 3
  h.write(TASK16_CODE, [0x8c, 0xcb, ...A.hlt]); // mov bx, cs; hlt
  h.write(V86_CODE, [0xcd, 0x22]); // int 0x22
  const r = start(h, toV86(3));
  assertEquals(r.exit.reason, "hlt");
  assertEquals(r.flags & 0x20000, 0, "VM cleared");
  assertEquals(r.regs.rbx & 0xffff, SEL.CODE16);
  assertEquals(h.vcpu.getSregs().cs.base, 0, "CS loaded from the GDT, not as a real-mode segment");
  assertEquals(r.regs.rip, TASK16_CODE + 3);
});

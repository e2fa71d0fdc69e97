/**
 * The cost of one OUT exit, end to end and by layer (a micro-benchmark).
 *
 *   deno run -A scripts/bench_exit.ts [--reps N] [--outs N] [--engine interp|jit|auto] [--only NAME] [--cpu]
 *   bun scripts/bench_exit.ts …
 *
 * Guest: tests/guests/pm_outloop.bin (32-bit protected mode, a loop `mov al,cl; out 0x80,al; dec ecx;
 * jnz`: four guest instructions per OUT). Each sample is a fresh Machine running `--outs` OUTs; the
 * figure is wall time ÷ OUTs, median (and min, max) of N samples after two warm-ups; under a JIT engine
 * also without the time the sample spent compiling (`jitStats.compileMs`; the JIT's code cache is on,
 * as by default, so after the first sample a fresh Machine takes its regions from it). Variants:
 *
 * - `hook`:   the POST port removed, a userspace `m.onIo` hook on 0x80 (the figure the JIT's target of 100 ns is about:
 *             cpu exit → vmxHandleExit → handleIo → kvmEmulatePio → KVM_EXIT_IO → Machine → hook → KVM_RUN)
 * - `steady`: as `hook`, in one Machine kept across samples (the guest restarted each time): its
 *             compiled code, its hook and the runtime's feedback about them stay, as in a VM that
 *             runs on; no compiling after the first sample
 * - `kvmrun`: the same exits through the bare KVM API (`vcpu.run()` in a loop, no Machine): the
 *             kernel's share of the path
 * - `kernel`: the POST device on the in-kernel bus (kernelPio → completeIo, KVM_RUN never returns)
 * - `loop`:   no OUT exits at all (UNCOND_IO_EXITING cleared: the processor drops the OUT): the
 *             guest's own instructions, for scale
 * - `split`:  as `loop`, but the loop is cut in two blocks where the OUT exit cuts it (`mov al,cl;
 *             out 0x80,al; jmp $+2` and `dec ecx; jnz`): the guest's share of the exit loop, one
 *             JMP more
 */
import { readFileSync } from "node:fs";
import { Machine } from "../runtime/vmm/machine.ts";
import { KvmExit } from "../runtime/kvm/kvm_run.ts";
import { CpuBased, VmcsField } from "../runtime/cpu/vmcs.ts";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
};
const reps = Number(arg("--reps", "9"));
const outs = Number(arg("--outs", "200000"));
const engine = arg("--engine", "interp") as "interp" | "jit" | "auto";
const only = arg("--only", "");
/** --cpu: time by the process's CPU time (process.cpuUsage) instead of the wall clock: steadier on a shared machine. */
const cpuClock = process.argv.includes("--cpu");
const now = cpuClock ? () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; } : () => performance.now();
const img = new Uint8Array(readFileSync(new URL("../tests/guests/pm_outloop.bin", import.meta.url)));

type Variant = "hook" | "steady" | "kvmrun" | "kernel" | "loop" | "split";

/** `steady`'s Machine, kept across samples, its guest's starting registers and its hook's count. */
let steady: { m: Machine; start: ReturnType<Machine["vcpu"]["getRegs"]>; hits: { n: number } } | null = null;

async function machine(v: Variant): Promise<{ m: Machine; count: () => number }> {
  const hooked = v === "hook" || v === "steady";
  if (v === "steady" && steady !== null) {
    const s = steady;
    s.m.vcpu.setRegs({ ...s.start, rcx: outs, rdi: 1 });
    s.hits.n = 0;
    return { m: s.m, count: () => s.hits.n };
  }
  const m = new Machine({ mode: "protected", devices: { post: hooked || v === "kvmrun" ? false : "kernel", debugcon: "kernel" } });
  m.load(img);
  const start = m.vcpu.getRegs();
  m.vcpu.setRegs({ rcx: outs, rdi: 1 });
  const hits = { n: 0 };
  if (hooked) m.onIo({ port: 0x80, direction: "out", handler: () => { hits.n++; } });
  if (v === "split") {
    // At 0x200000: mov esp,0x80000; mov ecx,outs; L: mov al,cl; out 0x80,al; jmp M; M: dec ecx; jnz L; hlt
    const n = [outs & 0xff, (outs >> 8) & 0xff, (outs >> 16) & 0xff, (outs >>> 24) & 0xff];
    m.vm.writeGuest(0x200000, new Uint8Array([0xbc, 0, 0, 8, 0, 0xb9, ...n, 0x88, 0xc8, 0xe6, 0x80, 0xeb, 0x00, 0x49, 0x75, 0xf7, 0xf4]));
    m.vcpu.setRegs({ rip: 0x200000 });
  }
  if (v === "loop" || v === "split") {
    const ctl = m.vcpu.vmcsRead(VmcsField.CPU_BASED_VM_EXEC_CONTROL);
    m.vcpu.vmcsWrite(VmcsField.CPU_BASED_VM_EXEC_CONTROL, ctl & ~CpuBased.UNCOND_IO_EXITING);
  }
  if (engine !== "interp") {
    const { useEngine } = await import("../runtime/vmm/tiering.ts");
    await useEngine(m, engine);
  }
  if (v === "steady") steady = { m, start, hits };
  return { m, count: () => (hooked ? hits.n : outs) };
}

function runKvm(m: Machine): void {
  // The bare KVM_RUN loop a C VMM writes: OUT 0x80 exits come back here; everything else ends it.
  const vcpu = m.vcpu;
  for (;;) {
    const run = vcpu.run();
    if (run.exitReason === KvmExit.IO && run.io.port === 0x80) continue;
    if (run.exitReason !== KvmExit.HLT) throw new Error(`unexpected exit ${run.exitReason}`);
    return;
  }
}

async function sample(v: Variant): Promise<{ ns: number; nsRun: number }> {
  const { m, count } = await machine(v);
  const c0 = m.jitStats?.compileMs ?? 0;
  const t = now();
  if (v === "kvmrun") runKvm(m);
  else {
    const r = m.run();
    if (r.exit.reason !== "hlt") throw new Error(`${v}: ended with ${r.exit.reason}`);
  }
  const ms = now() - t;
  const n = count();
  if (n !== outs) throw new Error(`${v}: ${n} OUTs, expected ${outs}`);
  return { ns: (ms * 1e6) / n, nsRun: ((ms - ((m.jitStats?.compileMs ?? 0) - c0)) * 1e6) / n };
}

const variants: Variant[] = only ? [only as Variant] : ["hook", "steady", "kvmrun", "kernel", "loop", "split"];
const res: Record<string, number[]> = {};
/** The same samples less the time spent compiling (each sample but `steady`'s is a fresh Machine, so it compiles). */
const resRun: Record<string, number[]> = {};
for (let k = 0; k < reps + 2; k++) {
  for (const v of variants) {
    const { ns, nsRun } = await sample(v);
    if (k >= 2) {
      (res[v] ??= []).push(ns);
      (resRun[v] ??= []).push(nsRun);
    }
  }
}
const rt = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined"
  ? `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`
  : `bun ${(process.versions as Record<string, string>).bun}`;
console.log(`OUT exit cost (${rt}, engine ${engine}, ${outs} OUTs per sample, ${reps} samples after 2 warm-ups${cpuClock ? ", process CPU time" : ""})`);
const compiled = engine !== "interp";
console.log(`| variant | median ns/OUT | min | max |${compiled ? " median without compiling | min without |" : ""}`);
console.log(`|---|---:|---:|---:|${compiled ? "---:|---:|" : ""}`);
for (const v of variants) {
  const xs = [...res[v]].sort((a, b) => a - b);
  const ys = [...resRun[v]].sort((a, b) => a - b);
  const extra = compiled ? ` ${ys[Math.floor(ys.length / 2)].toFixed(1)} | ${ys[0].toFixed(1)} |` : "";
  console.log(`| ${v} | ${xs[Math.floor(xs.length / 2)].toFixed(1)} | ${xs[0].toFixed(1)} | ${xs[xs.length - 1].toFixed(1)} |${extra}`);
}

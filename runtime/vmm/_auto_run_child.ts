/**
 * For auto_run_test.ts: one `runAuto` in a fresh process (binaryen not loaded yet), its result as
 * JSON on the last line. Argument: short | long | budget | timeout | near.
 */
import { Machine } from "./machine.ts";
import { jitLoaded, runAuto } from "./tiering.ts";

const what = process.argv[process.argv.length - 1];
// mov ecx,N; l: add eax,ecx; dec ecx; jnz l; hlt   (3N + 2 instructions; eax = N(N+1)/2 mod 2^32)
const sumLoop = (n: number) => new Uint8Array([0xb9, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24, 0x01, 0xc8, 0x49, 0x75, 0xfb, 0xf4]);
const spin = new Uint8Array([0xeb, 0xfe]); // jmp $

const m = new Machine({ mode: "protected" });
m.load(what === "short" ? sumLoop(1000) : what === "long" || what === "near" ? sumLoop(100_000_000) : spin, { format: "raw" });
const limits = { budget: { budget: 2_500_000 }, timeout: { timeoutMs: 50 }, near: { timeoutMs: 400 } }[what] ?? {};
const r = await runAuto(m, limits);
console.log(JSON.stringify({
  exit: r.exit, instructions: r.instructions, exits: r.exits, userspaceExits: r.userspaceExits, wallMs: r.wallMs,
  eax: m.vcpu.getRegs().rax, loaded: jitLoaded(), engine: m.engine, regions: m.jitStats?.regions ?? 0,
}));

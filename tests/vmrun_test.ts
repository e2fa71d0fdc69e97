/** The vmrun contract: options, exit statuses, and bad input answered with one line and status 2. */
import { test } from "node:test";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertEquals, assert, assertMatch } from "./assert.ts";
import { REPO, runScript } from "./run_cli.ts";

const dir = mkdtempSync(join(tmpdir(), "vmrun-test-"));
function file(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}
function vmrun(...args: string[]) {
  return runScript("scripts/vmrun.ts", args);
}
function assertUsageError(r: { status: number; stdout: string; stderr: string }, re: RegExp): void {
  assertEquals(r.status, 2, r.stderr);
  const lines = r.stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, `one line, got: ${r.stderr}`);
  assertMatch(lines[0], re);
}

test("vmrun refuses an empty image with exit status 2", () => {
  assertUsageError(vmrun(file("empty.bin", new Uint8Array(0))), /^vmrun: Image is empty/);
});
test("vmrun refuses a truncated ELF with exit status 2", () => {
  const elf = new Uint8Array(readFileSync(`${REPO}/tests/guests/cguest_O2.elf`)).slice(0, 80);
  assertUsageError(vmrun("--format", "elf", file("trunc.elf", elf)), /^vmrun: Truncated ELF/i);
});
test("vmrun refuses an entry point outside RAM with exit status 2", () => {
  assertUsageError(vmrun("--entry", "0x2000000", file("hlt.bin", new Uint8Array([0xf4]))), /outside guest memory/);
});
test("vmrun refuses an image that does not fit in RAM with exit status 2", () => {
  assertUsageError(vmrun("--mem", "64K", file("big.bin", new Uint8Array(128 * 1024))), /does not fit/i);
});
test("vmrun refuses an unknown option with exit status 2", () => {
  assertUsageError(vmrun("--frobnicate", file("hlt2.bin", new Uint8Array([0xf4]))), /^vmrun: .*frobnicate/);
});
test("vmrun refuses a missing image file with exit status 2", () => {
  assertUsageError(vmrun(join(dir, "nope.bin")), /^vmrun: Cannot read image .*ENOENT/);
});
test("vmrun refuses a bad register name with exit status 2", () => {
  assertUsageError(vmrun("--reg", "xyz=1", file("hlt3.bin", new Uint8Array([0xf4]))), /unknown register xyz/);
});
test("vmrun says an engine that is not built yet is not built yet", () => {
  assertUsageError(vmrun("--engine", "kvm", file("hlt4.bin", new Uint8Array([0xf4]))), /not built yet/);
});
test("vmrun says long mode comes later", () => {
  assertUsageError(vmrun("--mode", "long", file("hlt5.bin", new Uint8Array([0xf4]))), /Long mode is not supported: vmxlab runs 16- and 32-bit guests/);
});

test("vmrun exits with status 3 when the budget runs out, after exactly that many instructions", () => {
  // jmp $ (EB FE): an endless loop
  const r = vmrun("--budget", "1000", "--json", file("loop.bin", new Uint8Array([0xeb, 0xfe])));
  assertEquals(r.status, 3);
  const rep = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assertEquals(rep.exit.reason, "budget");
  assertEquals(rep.instructions, 1000);
});

test("vmrun exits with status 1 on a shutdown and names the fault", () => {
  // ud2 with no IVT handler
  const r = vmrun(file("ud.bin", new Uint8Array([0x0f, 0x0b])));
  assertEquals(r.status, 1);
  assertMatch(r.stderr, /triple fault after #UD/);
});

test("vmrun sets registers, dumps memory and counts ports in the JSON report", () => {
  // mov [0x2000], ax ; out 0x80, al ; in al, 0x99 ; hlt   (real mode)
  const code = new Uint8Array([0xa3, 0x00, 0x20, 0xe6, 0x80, 0xe4, 0x99, 0xf4]);
  const r = vmrun("--reg", "ax=0x1234", "--dump", "0x2000:2", "--json", file("regs.bin", code));
  assertEquals(r.status, 0, r.stderr);
  const rep = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assertEquals(rep.memory["0x2000"], "3412");
  assertEquals(rep.ports["0x80"], { out: 1 });
  assertEquals(rep.ports["0x99"], { in: 1 });
  // IN from a port nobody claims reads all ones (an open bus).
  assertEquals(rep.regs.eax & 0xff, 0xff);
  assertEquals(rep.regs.eip, 0x1008);
  assertEquals(rep.exit.reason, "hlt");
});

test("vmrun runs a protected-mode guest in paged mode with the same result", () => {
  const r = vmrun("--mode", "paged", "--json", "tests/guests/pm_sieve.bin");
  assertEquals(r.status, 0, r.stderr);
  assert(r.stdout.startsWith("6542\n"));
});

test("vmrun --trace exits writes one JSON object per exit to stderr", () => {
  const r = vmrun("--trace", "exits", "--reg", "eax=2", "--reg", "ebx=2", "tests/guests/hello16.bin");
  assertEquals(r.status, 0, r.stderr);
  const events = r.stderr.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(events.map((e) => e.exit), ["io", "io", "hlt"]);
  assertEquals(events[0], { exit: "io", port: 0x3f8, size: 1, direction: "out", count: 1, data: [0x34] });
});

test("vmrun --trace path shows the seed's IO path", () => {
  const r = vmrun("--trace", "path", "--reg", "eax=2", "--reg", "ebx=2", "tests/guests/hello16.bin");
  const stages = r.stderr.trim().split("\n").map((l) => JSON.parse(l).stage);
  const i = stages.indexOf("handleIo");
  assertEquals(stages.slice(i - 2, i + 2), ["vmxVcpuRun", "vmxHandleExit", "handleIo", "kvmEmulatePio"]);
});

test("vmrun --trace insn disassembles each instruction", () => {
  const r = vmrun("--trace", "insn", "--reg", "eax=2", "--reg", "ebx=2", "tests/guests/hello16.bin");
  assertEquals(r.status, 0, r.stderr);
  const first = JSON.parse(r.stderr.split("\n")[0]);
  assertEquals(first.eip, 0x1000);
  assertMatch(first.text, /^mov dx, 0x3f8$/);
});

test("vmrun --help prints the usage", () => {
  const r = vmrun("--help");
  assertEquals(r.status, 0);
  assertMatch(r.stdout, /--mode real\|protected\|paged\|long/);
});

test("vmrun --kernel refuses what does not go with a kernel, and a kernel that is not one, with exit status 2", () => {
  const k = "tests/guests/linux/bzImage";
  assertUsageError(vmrun("--kernel", k, "tests/guests/hello16.bin"), /^vmrun: --kernel boots a kernel: no IMAGE as well/);
  assertUsageError(vmrun("--kernel", k, "--mode", "real"), /^vmrun: --mode does not go with --kernel/);
  assertUsageError(vmrun("--initrd", "x", "tests/guests/hello16.bin"), /^vmrun: --initrd goes with --kernel/);
  assertUsageError(vmrun("--kernel", k, "--rtc", "yesterday"), /^vmrun: Invalid --rtc: yesterday/);
  assertUsageError(vmrun("--kernel", "tests/guests/hello16.bin"), /^vmrun: Kernel image of 12 bytes is too short/);
  assertUsageError(vmrun("--kernel", "tests/guests/cguest_O2.elf"), /^vmrun: Not a Linux kernel image: no boot flag 0xAA55/);
  assertUsageError(vmrun("--kernel", k, "--mem", "16M"), /^vmrun: Linux kernel does not fit in 16 MiB of RAM: .* at least \d+ MiB$/);
  assertUsageError(vmrun("--kernel", k, "--initrd", join(dir, "none.gz")), /^vmrun: Cannot read initrd .*ENOENT/);
});

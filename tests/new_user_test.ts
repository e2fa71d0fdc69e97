/**
 * What a new user tripped over (issue 17), each as a test: the service's exit status on a port in
 * use, scripts/serial.ts at the end of its input, user-facing text that speaks of the project's
 * issues instead of the software, colour codes in npm test's logs, and a C program of one's own:
 * the boot mode, the initial stack, the RAM it needs, a multiboot kernel loaded low.
 */
import { test } from "node:test";
import { spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./assert.ts";
import { REPO, runScript } from "./run_cli.ts";
import { Machine } from "../runtime/vmm/machine.ts";
import { ImageError } from "../runtime/vmm/image.ts";
import { bootModeFor, initialStackTop } from "../runtime/vmm/boot_setup.ts";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";

test("npm start on a port in use says so and exits with status 2 instead of running on without listening", async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
  const port = (blocker.address() as { port: number }).port;
  try {
    const argv = isDeno ? ["run", "-A", "--no-check", "scripts/serve.ts"] : ["scripts/serve.ts"];
    // Asynchronous, so this process's server keeps accepting while the child tries the port.
    const { spawn } = await import("node:child_process");
    const child = spawn(process.execPath, [...argv, "--port", String(port), "--workers", "1"], { cwd: REPO });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const status = await new Promise<number | string>((resolve) => {
      const t = setTimeout(() => { child.kill(); resolve("still running after 60 s"); }, 60_000);
      child.on("close", (code) => { clearTimeout(t); resolve(code ?? -1); });
    });
    assertEquals(status, 2, stderr);
    assertMatch(stderr, /^serve: .*(in use|AddrInUse|EADDRINUSE)/mi);
  } finally {
    blocker.close();
  }
});

test("scripts/serial.ts ends when its input has run out and the guest waits for more, saying so", () => {
  const t0 = performance.now();
  const r = runScript("scripts/serial.ts", [], "");
  assertEquals(r.status, 0, r.stderr);
  assertEquals(r.stdout, "");
  assertStringIncludes(r.stderr, "guest ended with stopped (the input ended and the guest is still waiting for more)");
  assert(performance.now() - t0 < 30_000, "no wait for the run's 10 s time limit");
  // A partial line: echoed, then the same end.
  const p = runScript("scripts/serial.ts", [], "ab");
  assertEquals(p.stdout, "ab");
  assertStringIncludes(p.stderr, "the input ended");
});

test("scripts/serial.ts names only guests that exist, and its protected-mode example runs", () => {
  const src = readFileSync(join(REPO, "scripts/serial.ts"), "utf8");
  const named = [...src.matchAll(/tests\/guests\/[\w.]+/g)].map((m) => m[0]);
  assert(named.length > 0);
  for (const f of named) assert(existsSync(join(REPO, f)), `${f} does not exist`);
  const r = runScript("scripts/serial.ts", ["--mode", "protected", "tests/guests/pm_serial.bin"], "");
  assertEquals(r.status, 0, r.stderr);
  assertEquals(r.stdout, "serial ok\n");
  assertStringIncludes(r.stderr, "guest ended with hlt");
});

test("user-facing text says what the software does, not which issue will do it", () => {
  const files: string[] = ["README.md"];
  const walk = (d: string) => {
    for (const n of readdirSync(join(REPO, d))) {
      const p = join(d, n);
      if (statSync(join(REPO, p)).isDirectory()) walk(p);
      else if (n.endsWith(".ts") && !n.endsWith("_test.ts")) files.push(p);
    }
  };
  for (const d of ["runtime", "jit", "api", "scripts"]) walk(d);
  const bad: string[] = [];
  for (const f of files) {
    readFileSync(join(REPO, f), "utf8").split("\n").forEach((line, i) => {
      if (/later issue|later feature|issue \d+'s goals?|issue \d+ targets/i.test(line)) bad.push(`${f}:${i + 1}: ${line.trim()}`);
    });
  }
  assertEquals(bad, []);
  const long = runScript("scripts/vmrun.ts", ["--mode", "long", "tests/guests/hello16.bin"]);
  assertEquals(long.status, 2);
  assertEquals(long.stderr, "vmrun: Long mode is not supported: vmxlab runs 16- and 32-bit guests (use real, protected or paged)\n");
});

test("npm test's output carries no colour codes (FORCE_COLOR set at all means colour to Deno)", () => {
  const sh = readFileSync(join(REPO, "scripts/test.sh"), "utf8");
  assert(!/FORCE_COLOR=/.test(sh), "scripts/test.sh sets FORCE_COLOR");
  assertMatch(sh, /^export NO_COLOR=1$/m);
  assertMatch(sh, /^unset FORCE_COLOR$/m);
  if (!isDeno) return; // the colour rule is Deno's
  // The environment scripts/test.sh gives deno test: NO_COLOR=1, FORCE_COLOR unset.
  const run = (force: string[]) =>
    spawnSync("env", ["-u", "FORCE_COLOR", "NO_COLOR=1", ...force, process.execPath, "test", "-A", "--no-check", "--filter", "PacketReader", "runtime/vmm/gdbstub_test.ts"], {
      cwd: REPO, encoding: "utf8",
    });
  const plain = run([]);
  assertEquals(plain.status, 0, plain.stderr);
  assertStringIncludes(plain.stdout, "1 passed");
  assert(!/\x1b\[/.test(plain.stdout + plain.stderr), "colour codes in deno test's output");
  // What scripts/test.sh did before: FORCE_COLOR=0 colours Deno's output, NO_COLOR notwithstanding.
  const forced = run(["FORCE_COLOR=0"]);
  assert(/\x1b\[/.test(forced.stdout + forced.stderr), "FORCE_COLOR=0 no longer colours: the rule above may be relaxed");
});

// ---- C programs and bare-metal images: the boot mode, the initial stack, RAM and the multiboot information


const guest = (f: string) => new Uint8Array(readFileSync(join(REPO, "tests/guests", f)));
const MiB = 1 << 20;

test("a C program linked the usual way (at 0x08048000) is refused with how much RAM it needs and how to link it low", () => {
  const r = runScript("scripts/vmrun.ts", ["tests/guests/usual_link.elf"]);
  assertEquals(r.status, 2);
  assertEquals(
    r.stderr,
    "vmrun: Image does not fit in RAM: segment 0x8048000..0x8048138 ends past the 16 MiB of guest memory: " +
      "give the guest 129 MiB of RAM or more (vmrun --mem 129M; Machine: { memSize: 129 * 2 ** 20 }), or link the program " +
      "at 1 MiB: gcc's default link put it at 0x8048000; add -Wl,-Ttext-segment=0x100000 (see \"C guests\" in the README)\n",
  );
});

test("with the RAM it asks for, or linked at 1 MiB, the same C program runs: protected mode picked, a stack given", () => {
  for (const args of [["--mem", "129M", "tests/guests/usual_link.elf"], ["tests/guests/usual_link_low.elf"]]) {
    const r = runScript("scripts/vmrun.ts", ["--json", ...args]);
    assertEquals(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assertEquals(lines[0], "fib(20) = 6765");
    const report = JSON.parse(lines[lines.length - 1]);
    assertEquals(report.exit.reason, "hlt");
    assertEquals(report.regs.cs, 0x08, "flat protected mode");
  }
});

test("Machine.load gives ELF and multiboot guests in protected or paged mode an initial stack at the top of RAM", () => {
  const elf = guest("usual_link_low.elf");
  const pm = new Machine({ mode: "protected" });
  pm.load(elf);
  assertEquals(pm.vcpu.getRegs().rsp, 16 * MiB);
  const paged = new Machine({ mode: "paged", memSize: 32 * MiB });
  paged.load(elf);
  assertEquals(paged.vcpu.getRegs().rsp, 32 * MiB - 4096, "below the page directory");
  const mb = new Machine({ mode: "protected" });
  mb.load(guest("mb_kernel.elf"));
  assertEquals(mb.vcpu.getRegs().rsp, 16 * MiB);
  // A stack the script set before loading is kept; raw images and real mode get none.
  const kept = new Machine({ mode: "protected" });
  kept.vcpu.setRegs({ rsp: 0x80000 });
  kept.load(elf);
  assertEquals(kept.vcpu.getRegs().rsp, 0x80000);
  const raw = new Machine({ mode: "protected" });
  raw.load(guest("pm_fib.bin"));
  assertEquals(raw.vcpu.getRegs().rsp, 0);
  // Under a segment that reaches into the 64 KiB below the top, the stack starts below the segment.
  assertEquals(initialStackTop([{ addr: 0xff8000, data: new Uint8Array(0), memSize: 0x1000 }], 16 * MiB), 0xff8000);
  assertEquals(initialStackTop([{ addr: 0xfe0000, data: new Uint8Array(0), memSize: 0x1000 }], 16 * MiB), 16 * MiB);
  assertEquals(initialStackTop([{ addr: 0x1000, data: new Uint8Array(0), memSize: 0x10000 }], 0x11000), null);
});

test("images that cannot start in real mode: vmrun picks protected mode, Machine says how", () => {
  assertEquals(bootModeFor(guest("mb_kernel.elf")), "protected");
  assertEquals(bootModeFor(guest("mb_aout.bin")), "protected");
  assertEquals(bootModeFor(guest("cguest_O2.elf")), "protected");
  assertEquals(bootModeFor(guest("hello16.bin")), "real");
  const real = new Machine();
  let e: unknown = null;
  try { real.load(guest("mb_aout.bin")); } catch (x) { e = x; }
  assert(e instanceof ImageError, String(e));
  assertStringIncludes((e as Error).message, 'A multiboot kernel starts in 32-bit protected mode: create the Machine with { mode: "protected" }');
  e = null;
  try { new Machine().load(guest("cguest_O2.elf")); } catch (x) { e = x; }
  assertStringIncludes(String(e), 'is not reachable in real mode (above 1 MiB): create the Machine with { mode: "protected" }');
  const r = runScript("scripts/vmrun.ts", ["tests/guests/mb_aout.bin"]);
  assertEquals([r.status, r.stdout], [0, "multiboot aout ok\n"], r.stderr);
});

test("a multiboot kernel loaded low, over 0x9000, gets its information placed clear of it", () => {
  const m = new Machine({ mode: "protected" });
  const img = m.load(guest("mb_low.bin"));
  // The kernel spans 0x8000..0xB000 (8 KiB of file, 4 KiB of bss): the information goes to the next page.
  assertEquals(img.segments[0].addr, 0x8000);
  assertEquals(img.segments[0].addr + img.segments[0].memSize, 0xb000);
  assertEquals(img.multibootInfo, 0xb000);
  assertEquals(m.vcpu.getRegs().rbx, 0xb000);
  const r = m.run({ budget: 10_000 });
  assertEquals([r.exit.reason, m.console], ["hlt", "multiboot low ok\n"]);
  const v = runScript("scripts/vmrun.ts", ["tests/guests/mb_low.bin"]);
  assertEquals([v.status, v.stdout], [0, "multiboot low ok\n"], v.stderr);
});

test("vmrun --trace exits writes an MMIO exit's data as an array of bytes", () => {
  // mov dword [0xF0000000], 0x04030201 (no memslot there: an MMIO exit nobody handles); hlt
  const path = join(REPO, `.mmio_trace_${process.pid}.bin`);
  writeFileSync(path, new Uint8Array([0xc7, 0x05, 0x00, 0x00, 0x00, 0xf0, 0x01, 0x02, 0x03, 0x04, 0xf4]));
  try {
    const r = runScript("scripts/vmrun.ts", ["--mode", "protected", "--trace", "exits", path]);
    const line = r.stderr.split("\n").find((l) => l.startsWith('{"exit":"mmio"'));
    assert(line !== undefined, r.stderr);
    const x = JSON.parse(line);
    assertEquals([x.physAddr, x.len, x.isWrite, x.data], [0xf0000000, 4, true, [1, 2, 3, 4]]);
  } finally {
    unlinkSync(path);
  }
});


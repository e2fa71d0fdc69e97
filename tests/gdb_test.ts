/**
 * A real gdb (Debian's `gdb`, which .ci/run installs) debugging the C guest tests/guests/gdb_demo.elf
 * (built with -O0 -g) through `vmrun --gdb 0 --gdb-wait`, under the interpreter and the JIT: break
 * on a function, continue, next, print a local, watch a global, info registers, x/4i $pc, and run
 * to the end. What gdb prints comes from its own reading of the ELF's DWARF and its own
 * disassembler, so the stub's registers and memory are checked against a second implementation.
 */
import { test } from "node:test";
import { spawn, spawnSync } from "node:child_process";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./assert.ts";
import { REPO, runScript } from "./run_cli.ts";

const gdbVersion = spawnSync("gdb", ["--version"], { encoding: "utf8" });
const skip = gdbVersion.status === 0 ? false : "gdb is not installed (Debian: apt-get install gdb; .ci/run installs it)";
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";

/** vmrun under the GDB stub; resolves with its port once it listens. */
function startVmrun(engine: string) {
  const script = "scripts/vmrun.ts";
  const args = ["--mode", "protected", "--engine", engine, "--gdb", "0", "--gdb-wait", "tests/guests/gdb_demo.elf"];
  const child = spawn(process.execPath, isDeno ? ["run", "-A", "--no-check", script, ...args] : [script, ...args], {
    cwd: REPO, env: { ...process.env, VMXLAB_ENGINE: "" },
  });
  let stdout = "", stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  const exited = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? -1)));
  const port = new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`vmrun did not listen: ${stderr}`)), 60_000);
    child.stderr.on("data", (d) => {
      stderr += d;
      const m = /gdb stub listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    });
  });
  return { port, exited, out: () => stdout, err: () => stderr, kill: () => child.kill() };
}

/** Run gdb in batch mode with these commands; its stdout and stderr together. */
function gdb(port: number, commands: string[]): Promise<{ status: number; output: string }> {
  // The ELF names its source relative to the folder it was built in: tell gdb where that is.
  const args = ["-q", "-batch", "-nx", "-ex", "set confirm off", "-ex", "set pagination off", "-ex", "directory tests/guests", "-ex", `target remote 127.0.0.1:${port}`];
  for (const c of commands) args.push("-ex", c);
  args.push("tests/guests/gdb_demo.elf");
  return new Promise((resolve) => {
    const child = spawn("gdb", args, { cwd: REPO });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    const t = setTimeout(() => child.kill(), 120_000);
    child.on("close", (code) => { clearTimeout(t); resolve({ status: code ?? -1, output }); });
  });
}

for (const engine of ["interp", "jit"]) {
  test(`gdb debugs the C guest through vmrun --gdb (${engine}): break, continue, next, print, watch, info registers, x/4i`, { skip }, async () => {
    const vm = startVmrun(engine);
    try {
      const port = await vm.port;
      const r = await gdb(port, [
        "break sum_squares", "continue", "next", "next", "print total", "print n",
        "next", "print total", // over the call to square(1): a breakpoint at its return, and continue
        "watch progress", "continue", "print progress", "continue",
        "info registers", "x/4i $pc", "delete", "continue",
      ]);
      const o = r.output;
      assertEquals(r.status, 0, o);
      assertMatch(o, /Breakpoint 1 at 0x[0-9a-f]+: file c\/gdb_demo\.c, line 18\./);
      assertMatch(o, /Breakpoint 1, sum_squares \(n=5\) at c\/gdb_demo\.c:18/);
      assertMatch(o, /^19\s+for \(uint32_t i = 1; i <= n; i\+\+\) \{$/m, "next: line 19");
      assertMatch(o, /^20\s+total \+= square\(i\);$/m, "next: line 20");
      assertMatch(o, /^\$1 = 0$/m, "print total");
      assertMatch(o, /^\$2 = 5$/m, "print n");
      assertMatch(o, /^21\s+progress = i;$/m, "next over square(i): line 21");
      assertMatch(o, /^\$3 = 1$/m, "print total after square(1)");
      assertStringIncludes(o, "Hardware watchpoint 2: progress");
      assertMatch(o, /Old value = 0\nNew value = 1\n/);
      assertMatch(o, /^\$4 = 1$/m, "print progress after the first watchpoint stop");
      assertMatch(o, /Old value = 1\nNew value = 2\n/);
      assertMatch(o, /^eip\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <sum_squares\+\d+>$/m, "info registers: eip in sum_squares");
      assertMatch(o, /^cs\s+0x8\s+8$/m);
      assertMatch(o, /^ss\s+0x10\s+16$/m);
      assertMatch(o, /^=> 0x[0-9a-f]+ <sum_squares\+\d+>:\t\S+/m, "x/4i: the instruction at $pc");
      assertEquals(o.match(/^ {3}0x[0-9a-f]+ <sum_squares\+\d+>:\t/gm)?.length, 3, "x/4i: three more");
      assertStringIncludes(o, "exited normally", "the guest ran to its HLT");
      assertEquals(await vm.exited, 0, vm.err());
      assertEquals(vm.out(), "sum_squares(5) = 55\n");
      assert(vm.err().includes("client connected"), vm.err());
    } finally {
      vm.kill();
    }
  });
}

test("vmrun --gdb: usage errors say what is wrong (exit status 2)", () => {
  const cases: [string[], RegExp][] = [
    [["--gdb-wait", "tests/guests/gdb_demo.elf"], /--gdb-wait needs --gdb PORT/],
    [["--gdb", "70000", "tests/guests/gdb_demo.elf"], /Invalid --gdb: 70000/],
    [["--gdb", "0", "--trace", "insn", "tests/guests/gdb_demo.elf"], /--gdb and --trace insn/],
    [["--gdb", "0", "--engine", "lockstep", "tests/guests/gdb_demo.elf"], /--gdb works with --engine interp, jit or auto/],
    [["--gdb", "0", "--budget", "100", "tests/guests/gdb_demo.elf"], /--gdb takes no --budget or --timeout/],
  ];
  for (const [args, message] of cases) {
    const r = runScript("scripts/vmrun.ts", args);
    assertEquals(r.status, 2, r.stderr);
    assertMatch(r.stderr, message);
  }
});

/**
 * What a new user tripped over (issue 17), each as a test: the service's exit status on a port in
 * use, scripts/serial.ts at the end of its input, user-facing text that speaks of the project's
 * issues instead of the software.
 */
import { test } from "node:test";
import { spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./assert.ts";
import { REPO, runScript } from "./run_cli.ts";

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

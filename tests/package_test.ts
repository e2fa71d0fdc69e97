/**
 * vmxlab as a dependency of another project: `npm pack` makes the tarball (its prepack script builds
 * dist/, the JavaScript Deno loads from node_modules), a consumer project in a temporary folder
 * depends on it by a `file:` specifier and installs it with npm (from npm's cache, which the repo's
 * own `npm ci` filled: `--prefer-offline`), then runs the KVM hello through `import { Kvm, Machine }
 * from "vmxlab"` under the interpreter and the JIT (`vmxlab/jit`, binaryen resolved from the
 * consumer's node_modules), and asks the service (`vmxlab/service`) for /healthz and a run, under
 * Deno and under Bun. Deno also type-checks the consumer against the package's types.
 */
import { test } from "node:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { REPO } from "./run_cli.ts";

const CONSUMER = `
import { Kvm, KvmExit, Machine } from "vmxlab";
import { JitEngine } from "vmxlab/jit";
import { createService } from "vmxlab/service";

// mov dx,0x3f8; add al,bl; add al,'0'; out dx,al; mov al,'\\n'; out dx,al; hlt
const code = new Uint8Array([0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, 0x30, 0xee, 0xb0, 0x0a, 0xee, 0xf4]);
const results: Record<string, unknown> = {};

const kvm = await Kvm.open();
const vm = kvm.createVm();
vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0x1000, memorySize: 0x1000 });
vm.writeGuest(0x1000, code);
const vcpu = vm.createVcpu(0);
const sregs = vcpu.getSregs();
sregs.cs.base = 0;
sregs.cs.selector = 0;
vcpu.setSregs(sregs);
vcpu.setRegs({ rip: 0x1000, rax: 2, rbx: 2, rflags: 2 });
let kvmOut = "";
for (;;) {
  const run = vcpu.run();
  if (run.exitReason === KvmExit.HLT) break;
  if (run.exitReason !== KvmExit.IO) throw new Error("unexpected exit " + run.exitReason);
  kvmOut += String.fromCharCode(run.data[run.io.dataOffset]);
}
results.kvm = kvmOut;

for (const engine of ["interp", "jit"] as const) {
  // Machine.create loads binaryen (from this project's node_modules) when the engine needs it.
  const m = await Machine.create({ mode: "real", devices: { serial: false }, engine });
  m.load(code, { format: "raw" });
  m.vcpu.setRegs({ rax: 2, rbx: 2 });
  let printed = "";
  m.onIo({ port: 0x3f8, direction: "out", handler: (io) => { printed += String.fromCharCode(io.value); } });
  const r = m.run({ budget: 1000 });
  results[engine] = { engine: m.engine, printed, exit: r.exit.reason, instructions: r.instructions, compiled: (m.jitStats?.regions ?? 0) > 0 };
  if (engine === "jit" && !(m.vcpu.cpu.engine instanceof JitEngine)) throw new Error("vmxlab/jit's JitEngine is not the engine attached");
}

const service = await createService();
try {
  results.healthz = (await service.app.request("/healthz")).status;
  let b64 = "";
  for (const x of code) b64 += String.fromCharCode(x);
  const res = await service.app.request("/v1/runs", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ image: btoa(b64), regs: { eax: 2, ebx: 2 } }),
  });
  const body = await res.json();
  results.service = { status: res.status, console: body.console, exit: body.exit?.reason };
} finally {
  await service.close();
}
console.log(JSON.stringify(results));
`;

const EXPECTED = {
  kvm: "4\n",
  interp: { engine: "interp", printed: "4\n", exit: "hlt", instructions: 7, compiled: false },
  jit: { engine: "jit", printed: "4\n", exit: "hlt", instructions: 7, compiled: true },
  healthz: 200,
  service: { status: 200, console: "4\n", exit: "hlt" },
};

function sh(cmd: string, args: string[], cwd: string, timeout = 300_000) {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout, env: { ...process.env, VMXLAB_ENGINE: "", NO_COLOR: "1" } });
  return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
}

// The test runs the consumer under both runtimes itself; from bun test it would repeat the same work.
const skip = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"
  ? "runs from deno test only: it runs the consumer under Deno and Bun itself (~40 s)"
  : false;

test("another project depends on the packed vmxlab and runs the KVM hello, the JIT and the service under Deno and Bun", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "vmxlab-consumer-"));
  try {
    // npm pack runs prepack (scripts/build_package.ts under bun) and postpack (dist/ removed).
    const pack = sh("npm", ["pack", "--silent", "--pack-destination", dir], REPO);
    assertEquals(pack.status, 0, pack.stderr);
    const tgz = readdirSync(dir).find((f) => f.endsWith(".tgz"));
    assertEquals(typeof tgz, "string", `no tarball in ${dir}: ${pack.stdout}`);
    const app = join(dir, "app");
    spawnSync("mkdir", [app]);
    writeFileSync(join(app, "package.json"), JSON.stringify({
      name: "vmxlab-consumer", private: true, type: "module", dependencies: { vmxlab: `file:../${tgz}` },
    }, null, 2));
    writeFileSync(join(app, "main.ts"), CONSUMER);
    const install = sh("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], app);
    assertEquals(install.status, 0, install.stderr);

    const deno = join(REPO, "node_modules/.bin/deno"), bun = join(REPO, "node_modules/.bin/bun");
    const check = sh(deno, ["check", "main.ts"], app);
    assertEquals(check.status, 0, `deno check: ${check.stderr}`);
    for (const [name, cmd, args] of [["deno", deno, ["run", "-A", "main.ts"]], ["bun", bun, ["main.ts"]]] as const) {
      const r = sh(cmd, [...args], app);
      assertEquals(r.status, 0, `${name}: ${r.stderr}`);
      assertEquals(JSON.parse(r.stdout.trim().split("\n").pop()!), EXPECTED, name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("deno.json and package.json name the same version and the same entry points", async () => {
  const { readFileSync } = await import("node:fs");
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));
  const deno = JSON.parse(readFileSync(join(REPO, "deno.json"), "utf8"));
  assertEquals(deno.version, pkg.version);
  assertEquals(deno.name, "@vmxlab/vmxlab");
  const npmTs: Record<string, string> = {};
  for (const [k, v] of Object.entries(pkg.exports as Record<string, string | { types: string }>)) if (typeof v !== "string") npmTs[k] = v.types;
  assertEquals(deno.exports, npmTs);
  assertEquals(pkg.private, true, "packable, never published to npm by accident");
});

/**
 * Repo rules for code on the hot paths (runtime/ and jit/), from what V8's optimising compiler
 * does with them (DESIGN-NOTES.md, "What V8 does with the exit path"):
 *
 * - An imported binding is read from its module cell, with a TDZ check, at every use; a module's
 *   own `const` is folded into the code. So the constant tables (`St`, `Fl`, `ExitReason`,
 *   `KvmExit`, …) are taken as module-local bindings: `import * as stateMod …; const { St } = stateMod;`.
 * - An array filled with `undefined` is stored as doubles (with undefined as a NaN pattern), and
 *   every element read from it is boxed. Empty slots of the port and reason tables are `null`.
 */
import { test } from "node:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { assertEquals } from "./assert.ts";
import { REPO } from "./run_cli.ts";

/** The modules that define constant tables, and which of their exports are classes or types (importable by name). */
const TABLE_MODULES: Record<string, Set<string>> = {
  "state.ts": new Set(),
  "vmcs.ts": new Set(["Vmcs", "VmcsError", "VmcsFieldName", "ExitReasonName", "GuestStateAccess"]),
  "kvm_run.ts": new Set(["KvmRun", "KvmExitName", "VcpuExit"]),
  "insn.ts": new Set(["Insn", "Exec"]),
  "sse_state.ts": new Set(),
};

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith(".ts") && !name.endsWith("_test.ts")) out.push(p);
  }
  return out;
}
const HOT = [...sources(join(REPO, "runtime")), ...sources(join(REPO, "jit"))];

/** The constant tables `src` imports by name (what the rule forbids); `self` is the file's own module name. */
function namedTableImports(src: string, self = ""): string[] {
  const found: string[] = [];
  for (const m of src.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
    const mod = m[2].split("/").pop()!;
    const allowed = TABLE_MODULES[mod];
    if (allowed === undefined || mod === self) continue;
    for (const spec of m[1].split(",").map((s) => s.trim()).filter(Boolean)) {
      if (!spec.startsWith("type ") && !allowed.has(spec)) found.push(`${spec} from ${mod}`);
    }
  }
  return found;
}

test("runtime/ and jit/ take the constant tables as module-local bindings, not named imports", () => {
  const offenders = HOT.flatMap((f) => namedTableImports(readFileSync(f, "utf8"), f.split("/").pop()).map((x) => `${relative(REPO, f)}: ${x}`));
  assertEquals(offenders, [], "bind these as `import * as xMod from …; const { … } = xMod;`");
});

test("the table rule finds a named import of a table (it is not vacuous)", () => {
  const src = 'import { Cr0, type Vec } from "./state.ts";\nimport { Vmcs, ExitReason } from "../cpu/vmcs.ts";';
  assertEquals(namedTableImports(src), ["Cr0 from state.ts", "ExitReason from vmcs.ts"]);
});

test("no array in runtime/ or jit/ is filled with undefined", () => {
  const offenders = HOT.filter((f) => /\.fill\(undefined\)/.test(readFileSync(f, "utf8"))).map((f) => relative(REPO, f));
  assertEquals(offenders, [], "fill with null: an array filled with undefined holds doubles and boxes every read");
});

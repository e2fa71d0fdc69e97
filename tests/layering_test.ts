/**
 * The layers of ../shared/DESIGN.md, kept by a test (as Firecracker keeps its style rules): the
 * import graph of the project's modules is read from the source and
 * - has no cycle of value imports (a module graph that must be evaluated in an order);
 * - crosses folders only along the arrows the design draws (type imports included: a type from a
 *   layer above is still a dependency on it);
 * - reaches a `_`-prefixed (private) module only from its own folder.
 * Test files and test helpers (`*_test.ts`, `_testing.ts`) may import anything.
 *
 * KNOWN lists arrows still to be removed, file by file (none today); the test fails when one of them
 * is gone, so the list stays true and shrinks.
 */
import { test } from "node:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { assertEquals } from "./assert.ts";

const REPO = normalize(join(dirname(new URL(import.meta.url).pathname), ".."));
const ROOTS = ["runtime", "jit", "api", "scripts"];

/** Which layer may import which (DESIGN.md's table, top to bottom). */
const ALLOWED: Record<string, string[]> = {
  "runtime/cpu": [],
  "runtime/devices": [],
  "runtime/kvm": ["runtime/cpu", "runtime/devices"],
  "runtime/vmx": ["runtime/kvm", "runtime/cpu"],
  "runtime/vmm": ["runtime/kvm", "runtime/vmx", "runtime/devices", "runtime/cpu", "jit"],
  runtime: ["runtime/cpu", "runtime/devices", "runtime/kvm", "runtime/vmx", "runtime/vmm"], // runtime/mod.ts, the public face
  jit: ["runtime/cpu"],
  api: ["runtime/vmm"],
  scripts: ["runtime", "runtime/cpu", "runtime/devices", "runtime/kvm", "runtime/vmx", "runtime/vmm", "jit", "api", "tests"],
};

/** Arrows the design does not allow that the code still has ("from -> to", file paths). */
const KNOWN = new Set<string>([]);
/** Private modules still used from another folder. */
const KNOWN_PRIVATE = new Set<string>([]);

interface Edge { from: string; to: string; typeOnly: boolean }

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(join(REPO, dir))) {
    const rel = join(dir, name);
    if (name === "node_modules" || name === "testdata") continue;
    if (statSync(join(REPO, rel)).isDirectory()) sourceFiles(rel, out);
    else if (name.endsWith(".ts")) out.push(rel);
  }
  return out;
}
const isTestCode = (f: string) => f.endsWith("_test.ts") || f.endsWith("/_testing.ts") || f.startsWith("tests/");

/** Static imports and re-exports at the start of a line (comments and dynamic imports are not edges). */
function importsOf(file: string): Edge[] {
  const src = readFileSync(join(REPO, file), "utf8");
  const edges: Edge[] = [];
  const re = /^(import|export)\s+(type\s+)?(?:[^;'"]*?\s+from\s+)?["'](\.{1,2}\/[^"']+)["']/gm;
  for (const m of src.matchAll(re)) {
    edges.push({ from: file, to: normalize(join(dirname(file), m[3])), typeOnly: m[2] !== undefined });
  }
  return edges;
}
/** The layer of a file: its folder under runtime/, or its top folder. */
function layer(f: string): string {
  const p = f.split("/");
  if (p[0] === "runtime") return p.length > 2 ? `runtime/${p[1]}` : "runtime";
  return p[0];
}

const files = ROOTS.flatMap((r) => sourceFiles(r)).filter((f) => !isTestCode(f));
const edges = files.flatMap(importsOf);

test("the modules' value imports form no cycle", () => {
  const next = new Map<string, string[]>();
  for (const e of edges) if (!e.typeOnly) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  // Tarjan's strongly connected components; a component of two or more modules is a cycle.
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], on = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index); low.set(v, index); index++; stack.push(v); on.add(v);
    for (const w of next.get(v) ?? []) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const c: string[] = [];
      let w: string;
      do { w = stack.pop()!; on.delete(w); c.push(w); } while (w !== v);
      if (c.length > 1) cycles.push(c.sort());
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
  assertEquals(cycles, []);
});

test("imports cross layers only along the design's arrows (the KNOWN list shrinks, never grows)", () => {
  const bad = new Set<string>();
  for (const e of edges) {
    const a = layer(e.from), b = layer(e.to);
    if (a === b || b === "tests" && a === "scripts") continue;
    if (!(ALLOWED[a] ?? []).includes(b)) bad.add(`${e.from} -> ${e.to}`);
  }
  assertEquals([...bad].filter((x) => !KNOWN.has(x)).sort(), [], "arrows the design does not draw");
  assertEquals([...KNOWN].filter((x) => !bad.has(x)).sort(), [], "gone from the code: take them off KNOWN");
});

test("a private module (_name.ts) is imported only from its own folder", () => {
  const bad = new Set(edges.filter((e) => e.to.split("/").pop()!.startsWith("_") && dirname(e.to) !== dirname(e.from))
    .map((e) => `${e.from} -> ${e.to}`));
  assertEquals([...bad].filter((x) => !KNOWN_PRIVATE.has(x)).sort(), []);
  assertEquals([...KNOWN_PRIVATE].filter((x) => !bad.has(x)).sort(), [], "gone from the code: take them off KNOWN_PRIVATE");
});

test("the layering rules see the whole tree (a sanity check on the reader)", () => {
  const layers = new Set(files.map(layer));
  for (const l of ["runtime/cpu", "runtime/kvm", "runtime/vmx", "runtime/vmm", "runtime/devices", "jit", "api"]) {
    assertEquals(layers.has(l), true, `no module found in ${l}`);
  }
  assertEquals(edges.some((e) => e.from === "runtime/vmx/vmx.ts" && e.to === "runtime/kvm/kvm_main.ts"), true);
  assertEquals(relative(REPO, join(REPO, "runtime")), "runtime");
});

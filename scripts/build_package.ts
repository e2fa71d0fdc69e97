/**
 * The JavaScript half of the npm package: `npm pack` (its `prepack` script) runs this to write
 * `dist/`, a JavaScript copy of runtime/, jit/ and api/ (tests left out), which `postpack` removes.
 *
 * Why: Deno runs no TypeScript from `node_modules` ("Stripping types is currently unsupported for
 * files under node_modules"), so a Deno project that depends on the package loads `dist/` (the
 * `deno` and `default` conditions of package.json's `exports`) and type-checks against the
 * TypeScript sources (the `types` condition); Bun runs the sources themselves (`bun`).
 *
 *   bun scripts/build_package.ts [OUTDIR]     (default dist)
 *
 * Types are stripped by Bun's transpiler (type-only imports and parameter properties as
 * TypeScript defines them), and each relative specifier ending in `.ts` (imports, dynamic imports,
 * `new URL("./_child.ts", import.meta.url)`) is rewritten to `.js`.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const FOLDERS = ["runtime", "jit", "api"];

/** The package's TypeScript files: every .ts under the folders but tests and test helpers. */
export function packageSources(root = ROOT): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) { if (name !== "testdata") walk(p); continue; }
      if (name.endsWith(".ts") && !name.endsWith("_test.ts") && !name.endsWith(".d.ts") && name !== "_testing.ts") out.push(relative(root, p));
    }
  };
  for (const f of FOLDERS) walk(join(root, f));
  return out;
}

/** Relative `.ts` specifiers in quotes become `.js`. */
export function rewriteSpecifiers(js: string): string {
  return js.replace(/(["'])(\.{1,2}\/[^"'\n]*?)\.ts\1/g, "$1$2.js$1");
}

if (import.meta.main) {
  const Bun = (globalThis as { Bun?: { Transpiler: new (o: object) => { transformSync(code: string): string } } }).Bun;
  if (Bun === undefined) {
    console.error("build_package: run it with bun (node_modules/.bin/bun scripts/build_package.ts): it uses Bun's transpiler");
    process.exit(2);
  }
  const out = join(ROOT, process.argv[2] ?? "dist");
  rmSync(out, { recursive: true, force: true });
  const t = new Bun.Transpiler({ loader: "ts", target: "browser" });
  const files = packageSources();
  for (const f of files) {
    const js = rewriteSpecifiers(t.transformSync(readFileSync(join(ROOT, f), "utf8")));
    const dest = join(out, f.replace(/\.ts$/, ".js"));
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, js);
  }
  console.error(`build_package: ${files.length} modules to ${relative(ROOT, out) || "."}/`);
}

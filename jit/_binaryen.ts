/**
 * binaryen, loaded on first use. Its ESM build has a top-level await and takes 0.3–0.8 s to start on a calm host,
 * so only a run that asks for a JIT engine pays for it (jit/DESIGN.md, section 9).
 *
 * An assertion inside binaryen aborts its wasm instance (a `WebAssembly.RuntimeError`
 * "Aborted(...)"): the instance may go on working, but its C++ stack and heap may be left
 * half-changed. The JIT then stops using it (`binaryenAborted`) and a fresh instance is loaded in
 * the background from a copy of binaryen's module file (an ES module evaluates once per URL, and
 * binaryen exports only its instance, not its factory); until it is there, `liveBinaryen()` is null
 * and code stays with the interpreter.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export type Binaryen = typeof import("binaryen").default;

let loaded: Binaryen | null = null;
let loading: Promise<Binaryen> | null = null;
/** The instance in `loaded` aborted; a fresh one is loading (or failed to: then it stays null). */
let broken = false;
let replacing: Promise<void> | null = null;
let replacements = 0;

/** Load binaryen once per process. */
export function loadBinaryen(): Promise<Binaryen> {
  if (loaded !== null) return Promise.resolve(loaded);
  loading ??= import("binaryen").then((m) => (loaded = m.default));
  return loading;
}

/** binaryen when it has been loaded, else null (for code that must not trigger the load). */
export function binaryenIfLoaded(): Binaryen | null {
  return loaded;
}

/** The instance to translate with: null before loading and while an aborted instance is replaced. */
export function liveBinaryen(): Binaryen | null {
  return broken ? null : loaded;
}

/**
 * `b` aborted (an assertion in binaryen): stop using it, and load a fresh instance in the
 * background. Returns at once; the promise of `binaryenReplaced()` settles when the new one is live.
 */
export function binaryenAborted(b: Binaryen): void {
  if (b !== loaded || broken) return;
  broken = true;
  replacing = freshInstance().then((nb) => {
    loaded = nb;
    broken = false;
    replacements++;
  }, () => {
    // No fresh instance (no temporary directory, no read permission): the JIT compiles nothing
    // more in this process, and guest code runs interpreted.
  }).finally(() => {
    replacing = null;
  });
}

/** Settles once a replacement started by `binaryenAborted` is done (at once if none is). */
export function binaryenReplaced(): Promise<void> {
  return replacing ?? Promise.resolve();
}

/** Fresh binaryen instances loaded after an abort, in this process. */
export function binaryenReplacements(): number {
  return replacements;
}

/** A new, independent binaryen instance: its module file copied under a new URL and imported. */
async function freshInstance(): Promise<Binaryen> {
  const src = await readFile(fileURLToPath(import.meta.resolve("binaryen")));
  const dir = await mkdtemp(join(tmpdir(), "vmxlab-binaryen-"));
  try {
    const file = join(dir, "index.mjs");
    await writeFile(file, src);
    return (await import(pathToFileURL(file).href)).default as Binaryen;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

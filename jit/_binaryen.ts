/**
 * binaryen, loaded on first use. Its ESM build has a top-level await and takes 0.3–0.8 s to start on a calm host,
 * so only a run that asks for a JIT engine pays for it (jit/DESIGN.md, section 9).
 */
export type Binaryen = typeof import("binaryen").default;

let loaded: Binaryen | null = null;
let loading: Promise<Binaryen> | null = null;

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

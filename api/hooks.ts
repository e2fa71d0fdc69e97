/**
 * Operator hook scripts: trusted TypeScript modules, named at start-up
 * (`npm start -- --script path/to/hooks.ts`), that export `hookSets`. A request picks hook sets by
 * name (`"hooks": ["hypercalls"]`) and each is installed on the request's `Machine` before it runs.
 *
 * @example
 * ```ts
 * import { defineHookSets } from "./hooks.ts";
 *
 * export const hookSets = defineHookSets({
 *   name: "answer",
 *   description: "Hypercall 42 returns 42",
 *   install(machine) {
 *     machine.onHypercall(42, () => 42, "answer");
 *   },
 * });
 * ```
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Machine } from "../runtime/vmm/mod.ts";
import type { HookSetInfo } from "./protocol.ts";

/** What a hook set may use besides the machine. */
export interface HookSetEnv {
  /** Add a line to the run's `logs` (capped by the limits). */
  log(line: string): void;
}

/** A named set of hooks (IO ports, MMIO, exits, hypercalls) an operator offers to requests. */
export interface HookSet {
  /** Lower-case letters, digits and dashes. */
  name: string;
  /** One line for `/v1/info`. */
  description: string;
  /** Register the hooks on a fresh machine (before the image's first run). */
  install(machine: Machine, env: HookSetEnv): void;
}

const NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

/**
 * Check hook sets and return them, for a script's `export const hookSets = defineHookSets(…)`.
 * @throws TypeError for a set without a valid name, description or install function
 */
export function defineHookSets(...sets: HookSet[]): HookSet[] {
  for (const s of sets) checkHookSet(s, "defineHookSets");
  return sets;
}

function checkHookSet(s: unknown, where: string): asserts s is HookSet {
  const h = s as Partial<HookSet> | null;
  if (!h || typeof h !== "object") throw new TypeError(`Invalid hook set in ${where}: expected an object`);
  if (typeof h.name !== "string" || !NAME.test(h.name)) throw new TypeError(`Invalid hook set name in ${where}: ${JSON.stringify(h.name)} (lower-case letters, digits and dashes)`);
  if (typeof h.description !== "string") throw new TypeError(`Invalid hook set "${h.name}" in ${where}: description must be a string`);
  if (typeof h.install !== "function") throw new TypeError(`Invalid hook set "${h.name}" in ${where}: install must be a function`);
}

/** The hook scripts `npm start` loads unless told not to. */
export const BUNDLED_SCRIPTS: readonly string[] = [
  new URL("./hook_sets/hypercalls.ts", import.meta.url).href,
  new URL("./hook_sets/isa_debug_exit.ts", import.meta.url).href,
  new URL("./hook_sets/io_log.ts", import.meta.url).href,
];

/** A script path (relative to the working directory) or URL, as a file URL string. */
export function scriptUrl(s: string | URL): string {
  if (s instanceof URL) return s.href;
  if (/^[a-z][a-z0-9+.-]*:/i.test(s) && !/^[a-z]:[\\/]/i.test(s)) return s;
  return pathToFileURL(isAbsolute(s) ? s : resolve(s)).href;
}

/** Hook sets by name, and where each came from. */
export interface LoadedHookSets {
  sets: Map<string, HookSet>;
  info: HookSetInfo[];
}

/**
 * Import operator scripts and collect their hook sets.
 * @throws Error naming the script when it cannot be imported, exports no `hookSets`, or reuses a name
 */
export async function loadHookScripts(urls: readonly string[]): Promise<LoadedHookSets> {
  const sets = new Map<string, HookSet>();
  const info: HookSetInfo[] = [];
  for (const url of urls) {
    let mod: { hookSets?: unknown; default?: unknown };
    try {
      mod = await import(url);
    } catch (e) {
      throw new Error(`Cannot load hook script ${url}: ${(e as Error).message}`, { cause: e });
    }
    const list = mod.hookSets ?? mod.default;
    if (!Array.isArray(list)) throw new Error(`Hook script ${url} exports no hookSets array`);
    for (const s of list) {
      checkHookSet(s, url);
      const prev = info.find((i) => i.name === s.name);
      if (prev) throw new Error(`Hook set "${s.name}" in ${url} is already defined by ${prev.script}`);
      sets.set(s.name, s);
      info.push({ name: s.name, description: s.description, script: url });
    }
  }
  return { sets, info };
}

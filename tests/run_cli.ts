/** Run a repo script as a child process under the runtime running the tests (deno or bun). */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("..", import.meta.url));

export function runScript(script: string, args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  const argv = isDeno ? ["run", "-A", "--no-check", script, ...args] : [script, ...args];
  const r = spawnSync(process.execPath, argv, { cwd: REPO, encoding: "utf8", input, timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

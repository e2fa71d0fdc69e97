/** The README's examples run: every ```ts block executes (and checks itself), every vmrun example exits 0. */
import { test } from "node:test";
import { readFileSync, writeFileSync, unlinkSync } from "node:fs";
import { assertEquals } from "./assert.ts";
import { REPO, runScript } from "./run_cli.ts";

const readme = readFileSync(`${REPO}/README.md`, "utf8");
const tsBlocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
const vmrunLines = [...readme.matchAll(/^npm run vmrun -- (.+)$/gm)].map((m) => m[1]).filter((a) => !a.includes("[options]"));

tsBlocks.forEach((code, i) => {
  test(`README TypeScript example ${i + 1} runs`, async () => {
    const path = `${REPO}/.readme_example_${i}_${process.pid}.ts`;
    writeFileSync(path, code);
    try {
      await import(path);
    } finally {
      unlinkSync(path);
    }
  });
});

vmrunLines.forEach((args) => {
  test(`README vmrun example runs: ${args}`, () => {
    const r = runScript("scripts/vmrun.ts", args.split(/\s+/));
    assertEquals(r.status, 0, r.stderr);
  });
});

test("README names both commands", () => {
  assertEquals(readme.includes("npm ci && npm start") && readme.includes("npm ci && npm test"), true);
});

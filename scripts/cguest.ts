/**
 * A C guest: tests/guests/c/main.c, built with gcc -m32 -ffreestanding at -O0 and -O2 (see
 * tests/guests/README.md), loaded as an ELF32 executable in protected mode; it prints through the
 * debug console at port 0xE9. Prints both outputs and the instruction counts.
 *
 *   node_modules/.bin/deno run -A scripts/cguest.ts
 */
import { readFileSync } from "node:fs";
import { Machine } from "../runtime/vmm/machine.ts";

export function runCGuest(file: "cguest_O0.elf" | "cguest_O2.elf" | "mb_kernel.elf") {
  const m = new Machine({ mode: "protected" });
  m.load(new Uint8Array(readFileSync(new URL(`../tests/guests/${file}`, import.meta.url))));
  const r = m.run({ budget: 50_000_000 });
  return { output: m.console, exit: r.exit.reason, instructions: r.instructions, wallMs: r.wallMs };
}

if (import.meta.main) {
  for (const f of ["cguest_O0.elf", "cguest_O2.elf"] as const) {
    const r = runCGuest(f);
    console.log(`== ${f}: ${r.exit} after ${r.instructions} instructions (${r.wallMs.toFixed(1)} ms)`);
    console.log(r.output);
  }
}

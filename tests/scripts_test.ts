/** The example scripts in scripts/ run and do what they say. */
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { assertEquals } from "./assert.ts";
import { helloKvm, helloMachine } from "../scripts/hello.ts";
import { ECHO_GUEST, runSerial } from "../scripts/serial.ts";
import { runHypercallDemo } from "../scripts/hypercall.ts";
import { runCGuest } from "../scripts/cguest.ts";
import { REPO, runScript } from "./run_cli.ts";

test("scripts/hello.ts prints 4 through the KVM API and through Machine", () => {
  assertEquals(helloKvm(), { output: "4\n", exits: ["io", "io", "hlt"], rip: 0x100c });
  assertEquals(helloMachine(), { output: "4\n", exit: "hlt", instructions: 7 });
});
test("npm run hello says what it did", () => {
  const r = runScript("scripts/hello.ts", []);
  assertEquals(r.status, 0);
  assertEquals(r.stdout.includes('the guest printed "4\\n"'), true);
});
test("scripts/serial.ts echoes what is fed to the UART up to a newline", () => {
  assertEquals(runSerial(ECHO_GUEST, "abc\nnot this").output, "abc\n");
});
test("scripts/serial.ts reads its input from stdin", () => {
  const r = runScript("scripts/serial.ts", [], "piped\n");
  assertEquals(r.stdout, "piped\n");
});
test("scripts/hypercall.ts: the hook's sum reaches the guest", () => {
  const r = runHypercallDemo();
  assertEquals(r.output, "33333333\n");
  assertEquals(r.userspaceExits.hypercall, 1);
});
test("scripts/cguest.ts runs the C guest at -O0 and -O2 with the same output", () => {
  const expected = JSON.parse(readFileSync(`${REPO}/tests/guests/expected.json`, "utf8"));
  const o0 = runCGuest("cguest_O0.elf"), o2 = runCGuest("cguest_O2.elf");
  assertEquals(o0.output, expected["cguest_O0.elf"].stdout);
  assertEquals(o2.output, o0.output);
  assertEquals(o0.instructions > o2.instructions, true);
});

test("scripts/serial.ts exports a serial-lines hook set that turns UART lines into log lines", async () => {
  const { hookSets } = await import("../scripts/serial.ts");
  const { Machine } = await import("../runtime/vmm/machine.ts");
  const m = new Machine({ mode: "real" });
  m.load(ECHO_GUEST);
  m.feedSerial("one\n");
  const logs: string[] = [];
  hookSets[0].install(m, { log: (l: string) => void logs.push(l) });
  m.run({ budget: 100000 });
  assertEquals([hookSets[0].name, logs], ["serial-lines", ["one"]]);
});

test("the HTTP service loads scripts/serial.ts as an operator script", async () => {
  const { loadHookScripts, scriptUrl } = await import("../api/hooks.ts");
  const loaded = await loadHookScripts([scriptUrl(`${REPO}/scripts/serial.ts`)]);
  assertEquals(loaded.info.map((i) => i.name), ["serial-lines"]);
});

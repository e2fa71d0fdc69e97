/**
 * A serial console: the guest's 16550 UART at 0x3F8 is wired to this process's stdin and stdout.
 * stdin (read to its end first: pipe it, or type and end with Ctrl-D) goes to the UART's receive
 * FIFO; what the guest transmits is printed.
 *
 *   node_modules/.bin/deno run -A scripts/serial.ts [--mode real|protected|paged] [--input TEXT] [IMAGE]
 *   echo hello | node_modules/.bin/bun scripts/serial.ts
 *   node_modules/.bin/deno run -A scripts/serial.ts --mode protected tests/guests/pm_serial.bin < /dev/null
 *
 * Without an IMAGE it runs a built-in real-mode echo guest that reads the UART until it sees a
 * newline, echoes each byte, and halts. When the input has run out and the guest keeps polling
 * the line status register for more (10,000 reads with nothing received or sent between them),
 * the run ends, saying so, instead of spinning until its time limit.
 */
import { readFileSync, writeSync } from "node:fs";
import { parseArgs } from "node:util";
import { Machine } from "../runtime/vmm/machine.ts";
import { defineHookSets } from "../api/hooks.ts";

/**
 * A real-mode echo guest:
 *   mov dx,0x3fd
 * wait: in al,dx ; test al,1 ; jz wait        ; LSR.DR: a byte has arrived
 *   mov dx,0x3f8 ; in al,dx ; out dx,al       ; read RBR, write THR
 *   cmp al,10 ; jne (back to mov dx,0x3fd) ; hlt
 */
export const ECHO_GUEST = new Uint8Array([
  0xba, 0xfd, 0x03, 0xec, 0xa8, 0x01, 0x74, 0xfb, 0xba, 0xf8, 0x03, 0xec, 0xee, 0x3c, 0x0a, 0x75, 0xef, 0xf4,
]);

/**
 * An operator hook set for the HTTP service (`npm start -- --script scripts/serial.ts`, then
 * `"hooks": ["serial-lines"]` in a request): each line the guest transmits on the UART at 0x3F8
 * becomes a line of the run's `logs`. It watches the IO exits without claiming the port, so the
 * UART itself keeps working.
 */
export const hookSets = defineHookSets({
  name: "serial-lines",
  description: "Each line the guest sends to the UART at 0x3F8 becomes a line of the run's logs",
  install(machine, env) {
    let line = "";
    machine.onExit("io", (exit) => {
      if (exit.reason !== "io" || exit.direction !== "out" || exit.port !== 0x3f8) return;
      for (const b of exit.data) {
        if (b === 10) { env.log(line); line = ""; } else line += String.fromCharCode(b);
      }
    }, "serial-lines");
  },
});

/** LSR reads in a row, with the input used up and nothing received or sent, that end the run. */
export const IDLE_POLLS = 10_000;

/**
 * Run `image` with the UART fed from `input`; returns what the guest transmitted and how it ended
 * (`exit` "stopped" with `detail` when the guest waited for input after it ran out).
 */
export function runSerial(image: Uint8Array, input: string | Uint8Array, mode: "real" | "protected" | "paged" = "real", sink?: (b: number) => void) {
  const m = new Machine({ mode, console: sink });
  m.load(image);
  m.feedSerial(input);
  const uart = m.serial!;
  let polls = 0;
  // Watches the UART's IO exits without claiming its ports: an LSR read (0x3FD) with the receive
  // FIFO empty counts; a byte received or sent (0x3F8) starts the count again.
  m.onExit("io", (exit, ctx) => {
    if (exit.reason !== "io") return;
    if (exit.port === uart.base + 5 && exit.direction === "in" && uart.pendingInput === 0) {
      if (++polls >= IDLE_POLLS) ctx.stop("the input ended and the guest is still waiting for more");
    } else if (exit.port === uart.base) {
      polls = 0;
    }
  }, "serial-eof");
  const r = m.run({ budget: 100_000_000, timeoutMs: 10_000 });
  const detail = r.exit.reason === "stopped" ? r.exit.detail : undefined;
  return { output: m.console, exit: r.exit.reason, detail, instructions: r.instructions };
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2), allowPositionals: true,
    options: { mode: { type: "string" }, input: { type: "string" } },
  });
  const image = positionals[0] ? new Uint8Array(readFileSync(positionals[0])) : ECHO_GUEST;
  let input: string | Uint8Array = values.input ?? "";
  if (values.input === undefined) {
    try {
      input = new Uint8Array(readFileSync(0)); // stdin, when piped
    } catch {
      input = "hello from the serial console\n";
    }
  }
  const r = runSerial(image, input, (values.mode ?? "real") as "real", (b) => void writeSync(1, new Uint8Array([b])));
  writeSync(2, `\n[serial] guest ended with ${r.exit}${r.detail ? ` (${r.detail})` : ""} after ${r.instructions} instructions\n`);
}

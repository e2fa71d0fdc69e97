/**
 * Driving a guest's serial console from the host: scripted input fed as the guest reads it, watching
 * the output for a string (a shell prompt) and the instruction it appeared at, and a run made of
 * slices that can wait between them (for the terminal, for binaryen, for the wall clock).
 *
 * Scripted input is fed a line at a time when the guest goes idle (KVM_EXIT_IDLE: halted, waiting
 * for a timer), its receive FIFO is empty and a reader has enabled the UART's received-data
 * interrupt, and, when a prompt is given, once the prompt has been printed since the last line: so
 * a shell gets each command when it waits for one, and the run is the same on every engine.
 */
import type { Machine, RunExit, RunResult } from "./machine.ts";
import { addSlice, dropSliceEnd, emptyRun } from "./run_slices.ts";

/** Options for `SerialInput`. */
export interface SerialInputOptions {
  /** Feed a line only after this text has appeared on the console since the previous line (a shell prompt). */
  prompt?: string;
  /** When every line is fed and answered (the prompt is back, or the guest idles with nothing left), stop the run with detail "serial input done". */
  stopWhenDone?: boolean;
}

/**
 * Feeds `input` to the machine's UART a line at a time as the guest reads it (see the module doc).
 * @example
 * ```ts
 * import { Machine, PC_DEVICES } from "./machine.ts";
 * import { SerialInput } from "./serial_console.ts";
 *
 * const m = new Machine({ mode: "protected", memSize: 128 << 20, devices: { ...PC_DEVICES } });
 * m.load(Deno.readFileSync("tests/guests/linux/bzImage"), {
 *   initrd: Deno.readFileSync("tests/guests/linux/initramfs.cpio.gz"), cmdline: "console=ttyS0 quiet",
 * });
 * new SerialInput(m, "echo $((6*7))\n", { prompt: "vmxlab# ", stopWhenDone: true });
 * const r = m.run({ budget: 1_000_000_000 });
 * if (r.exit.reason !== "stopped" || !m.console.includes("\n42\r\n")) throw new Error(m.console);
 * ```
 */
export class SerialInput {
  private readonly bytes: Uint8Array;
  private pos = 0;
  /** Console bytes seen since the last line was fed (only the tail the prompt needs is kept). */
  private seen = "";
  private promptSeen: boolean;
  /** Lines fed so far. */
  fed = 0;

  constructor(private readonly m: Machine, input: string | Uint8Array, private readonly opts: SerialInputOptions = {}) {
    if (!m.serial) throw new TypeError("This machine has no serial port to feed");
    this.bytes = typeof input === "string" ? new TextEncoder().encode(input) : input.slice();
    this.promptSeen = opts.prompt === undefined;
    const prompt = opts.prompt;
    if (prompt !== undefined) {
      m.onConsole((b) => {
        if (this.promptSeen) return;
        this.seen = (this.seen + String.fromCharCode(b)).slice(-prompt.length);
        if (this.seen === prompt) this.promptSeen = true;
      });
    }
    m.onExit("idle", (_x, ctx) => {
      this.onIdle();
      if (this.done && opts.stopWhenDone && this.promptSeen && m.serial!.pendingInput === 0) ctx.stop("serial input done");
      // No "resume": the other idle hooks run too, then the vCPU sleeps on the next KVM_RUN.
    }, "serial-input");
  }

  /** All the input has been fed. */
  get done(): boolean {
    return this.pos >= this.bytes.length;
  }

  private onIdle(): void {
    const uart = this.m.serial!;
    if (this.done || uart.pendingInput > 0 || (uart.interruptEnable & 1) === 0 || !this.promptSeen) return;
    let end = this.bytes.indexOf(10, this.pos);
    end = end < 0 ? this.bytes.length : end + 1;
    uart.feed(this.bytes.subarray(this.pos, end));
    this.pos = end;
    this.fed++;
    if (this.opts.prompt !== undefined) {
      this.promptSeen = false;
      this.seen = "";
    }
  }
}

/**
 * Notes the first time `text` appears on the console: the retired-instruction count then (the
 * exit that wrote its last byte) and the wall time since construction.
 */
export class ConsoleWatch {
  /** Instructions retired when the text was complete, or null while it has not appeared. */
  instructions: number | null = null;
  wallMs: number | null = null;
  private tail = "";
  private readonly t0 = performance.now();
  private readonly i0: number;

  constructor(m: Machine, readonly text: string) {
    this.i0 = m.vcpu.instructions;
    const off = m.onConsole((b) => {
      this.tail = (this.tail + String.fromCharCode(b)).slice(-text.length);
      if (this.tail === text) {
        this.instructions = m.vcpu.instructions - this.i0;
        this.wallMs = performance.now() - this.t0;
        off();
      }
    });
  }
}

/** Options for `runSliced`. */
export interface SlicedRunOptions {
  /** Instruction budget of the whole run. */
  budget?: number;
  /** Wall-time limit of the whole run (ms). */
  timeoutMs?: number;
  /** Instructions per slice (default 5M). */
  slice?: number;
  /**
   * Called between slices, and when the run stopped to wait (see `realtime`); may await (the
   * terminal, binaryen). Returning "quit" ends the run with `{ reason: "stopped", detail: "quit" }`.
   */
  between?: (waitMs: number) => Promise<void | "quit"> | void | "quit";
  /**
   * Keep virtual time from running ahead of the wall clock while the guest idles: before a halted
   * vCPU's time jump would take virtual time past the wall time since the start, the run stops and
   * `between` gets the milliseconds to wait (an interactive console; off, idle time passes at once).
   */
  realtime?: boolean;
}

/**
 * Run in slices of `slice` instructions with `between` called after each, as one run: the result
 * sums the slices, and a slice's own end is not among the exits.
 */
export async function runSliced(m: Machine, opts: SlicedRunOptions = {}): Promise<RunResult> {
  const t0 = performance.now();
  const total = emptyRun();
  const slice = opts.slice ?? 5_000_000;
  let left = opts.budget ?? Infinity;
  const deadline = opts.timeoutMs === undefined ? Infinity : t0 + opts.timeoutMs;
  let waitMs = 0;
  if (opts.realtime) {
    const v0 = m.vm.clock();
    m.onExit("idle", (x, ctx) => {
      if (x.reason !== "idle") return;
      const ahead = (m.vm.clock() - v0 + x.sleepNs) / 1e6 - (performance.now() - t0);
      if (ahead > 1) {
        waitMs = ahead;
        ctx.stop("realtime wait");
      }
    }, "realtime");
  }
  for (;;) {
    waitMs = 0;
    const r = m.run({
      budget: Math.min(left, slice),
      timeoutMs: deadline === Infinity ? undefined : Math.max(0, deadline - performance.now()),
    });
    addSlice(total, r);
    left -= r.instructions;
    const paused = r.exit.reason === "stopped" && r.exit.detail === "realtime wait";
    if (!paused && (r.exit.reason !== "budget" || left <= 0)) {
      total.exit = r.exit;
      break;
    }
    if (!paused) dropSliceEnd(total);
    if (performance.now() >= deadline) {
      total.exit = { reason: "timeout" };
      break;
    }
    if (opts.between && (await opts.between(waitMs)) === "quit") {
      total.exit = { reason: "stopped", detail: "quit" } satisfies RunExit;
      break;
    }
  }
  total.wallMs = performance.now() - t0;
  return total;
}

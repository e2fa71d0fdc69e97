/**
 * The terminal side of `vmrun --kernel`'s console, as `qemu -nographic` has it: stdin in raw mode
 * (every key goes to the guest, Ctrl-C included), Ctrl-A X to quit, Ctrl-A Ctrl-A for a Ctrl-A,
 * Ctrl-A H for help, and the terminal restored on every way out (return, throw, exit, signals).
 * Works under Deno and Bun through node:process.
 */
import process from "node:process";
import { writeSync } from "node:fs";

const CTRL_A = 0x01;

/** What `Terminal.take()` hands over: bytes for the guest, and whether the user asked to quit. */
export interface TerminalInput {
  bytes: Uint8Array;
  quit: boolean;
}

export class Terminal {
  private chunks: number[] = [];
  private quit = false;
  private escape = false;
  private ended = false;
  private waiter: (() => void) | null = null;
  private raw = false;
  private readonly restore = () => this.close();
  private readonly onSignal = (sig: NodeJS.Signals) => {
    this.close();
    process.exit(sig === "SIGINT" ? 130 : 143);
  };
  private readonly onData = (d: Uint8Array | string) => this.input(typeof d === "string" ? new TextEncoder().encode(d) : d);
  private readonly onEnd = () => {
    this.ended = true;
    this.wake();
  };

  /** Start reading stdin (raw mode when it is a terminal). */
  constructor() {
    const stdin = process.stdin;
    if (stdin.isTTY && typeof stdin.setRawMode === "function") {
      stdin.setRawMode(true);
      this.raw = true;
    }
    process.on("exit", this.restore);
    for (const s of ["SIGTERM", "SIGHUP", "SIGINT"] as const) process.on(s, this.onSignal);
    stdin.on("data", this.onData);
    stdin.on("end", this.onEnd);
    stdin.resume();
  }

  /** Whether stdin is a terminal in raw mode (the escape keys apply then). */
  get interactive(): boolean {
    return this.raw;
  }
  /** stdin reached its end (a pipe). */
  get closed(): boolean {
    return this.ended;
  }

  private input(d: Uint8Array): void {
    for (const b of d) {
      if (this.raw && this.escape) {
        this.escape = false;
        if (b === 0x78 || b === 0x58) { this.quit = true; break; } // x: quit
        if (b === CTRL_A) { this.chunks.push(CTRL_A); continue; }
        if (b === 0x68 || b === 0x48) { // h: help
          writeSync(2, "\r\nC-a x    exit\r\nC-a C-a  send C-a\r\nC-a h    this help\r\n");
          continue;
        }
        continue; // an unknown escape is dropped, as QEMU drops it
      }
      if (this.raw && b === CTRL_A) { this.escape = true; continue; }
      this.chunks.push(b);
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Take what arrived since the last call. */
  take(): TerminalInput {
    const bytes = new Uint8Array(this.chunks);
    this.chunks = [];
    return { bytes, quit: this.quit };
  }

  /** Wait up to `ms` for input (or the end of stdin); returns at once when some is waiting. */
  wait(ms: number): Promise<void> {
    if (this.chunks.length || this.quit || this.ended) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.waiter = null; resolve(); }, Math.max(0, ms));
      this.waiter = () => { clearTimeout(t); resolve(); };
    });
  }

  /** Put the terminal back as it was and stop reading stdin (idempotent). */
  close(): void {
    const stdin = process.stdin;
    if (this.raw) {
      try { stdin.setRawMode(false); } catch { /* the terminal is gone */ }
      this.raw = false;
    }
    stdin.off("data", this.onData);
    stdin.off("end", this.onEnd);
    stdin.pause();
    process.off("exit", this.restore);
    for (const s of ["SIGTERM", "SIGHUP", "SIGINT"] as const) process.off(s, this.onSignal);
    // stdin keeps the event loop alive while it is open: unref it so the process can end.
    (stdin as unknown as { unref?: () => void }).unref?.();
  }
}

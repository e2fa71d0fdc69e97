/**
 * Helpers for the api tests: requests through `app.request`, guest images, and small guests
 * assembled by hand.
 */
import { readFileSync } from "node:fs";
import { Buffer } from "node:buffer";
import process from "node:process";
import type { Service } from "./app.ts";
import { defaultEngine } from "../runtime/vmm/mod.ts";

/** The engine requests run under when they name none: interp, or VMXLAB_ENGINE (scripts/test.sh runs the api tests again with jit). */
export const ENGINE = defaultEngine();

export const REPO = new URL("..", import.meta.url).pathname;

export interface Expected {
  mode: "real" | "protected";
  format: "raw" | "elf" | "multiboot";
  regs?: Record<string, number>;
  stdout: string;
  exit: string;
}
export const expected: Record<string, Expected> = JSON.parse(readFileSync(`${REPO}tests/guests/expected.json`, "utf8"));

/** A guest image from tests/guests, base64. */
export function guest(file: string): string {
  return readFileSync(`${REPO}tests/guests/${file}`).toString("base64");
}
export function b64(bytes: number[] | Uint8Array): string {
  return Buffer.from(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes)).toString("base64");
}

/** Real-mode guests assembled by hand. */
export const GUESTS = {
  /** jmp $ */
  spin: [0xeb, 0xfe],
  /** l: mov dx,0xe9; mov al,'x'; out dx,al; jmp l — prints forever on the debug console */
  printForever: [0xba, 0xe9, 0x00, 0xb0, 0x78, 0xee, 0xeb, 0xf8],
  /** in al,0x60; mov dx,0xe9; out dx,al; hlt — prints the byte port 0x60 reads */
  echoPort60: [0xe4, 0x60, 0xba, 0xe9, 0x00, 0xee, 0xf4],
  /** inc ax; hlt; jmp back — each run adds one to AX and halts */
  incHalt: [0x40, 0xf4, 0xeb, 0xfc],
};

export interface Reply {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
  text: string;
}

/** Send a request; parse a JSON or problem body. */
export async function call(s: Service, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" || body instanceof Uint8Array ? body as BodyInit : JSON.stringify(body);
    if (!("content-type" in headers)) (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const res = await s.app.request(path, init);
  const text = await res.text();
  const ct = res.headers.get("content-type") ?? "";
  return { status: res.status, headers: res.headers, body: /json/.test(ct) && text ? JSON.parse(text) : undefined, text };
}

/** The failing field names of a problem reply. */
export function fields(r: Reply): string[] {
  return (r.body?.errors ?? []).map((e: { field: string }) => e.field);
}

/**
 * CPU time (ms, all threads of this process) used while the process waits `windowMs` doing
 * nothing: a thread left spinning by an earlier request shows here as roughly `windowMs` (less on
 * a busy machine, never near 0). CPU time, not wall time, so a loaded host does not inflate it.
 */
export async function idleCpuMs(windowMs = 1000): Promise<number> {
  const before = process.cpuUsage();
  await new Promise((r) => setTimeout(r, windowMs));
  const d = process.cpuUsage(before);
  return (d.user + d.system) / 1000;
}

/**
 * What the timed api tests allow on top of a limit plus the service's grace: a loaded machine
 * (tests share 2 cores with builds) delays any answer, and speed is not what these tests check —
 * that an answer comes at all, bounded, where it used to take 19 s or never. 1 s unless
 * VMXLAB_TIMING_SLACK_MS says otherwise (0 checks the limit plus the grace exactly, on a quiet
 * machine; `npm run fuzz:service` counts late answers with no slack).
 */
export const TIMING_SLACK_MS = Number(process.env.VMXLAB_TIMING_SLACK_MS ?? 1000);

/**
 * A worker process of the pool (`pool.ts` starts it with this runtime: `deno run -A` or `bun`):
 * owns the machines of the runs and sessions sent to it and performs one request at a time. Frames
 * (`_wire.ts`) come on stdin and go back on stdout; anything the runtime prints goes to stderr.
 * A process, not a thread, so the service can always kill it (SIGKILL) and get its core back:
 * a worker thread spinning in JavaScript or WebAssembly keeps running after `terminate()` in Deno.
 * It exits when stdin closes (the service went away).
 */
import process from "node:process";
import { loadHookScripts } from "./hooks.ts";
import { loadJit } from "../runtime/vmm/mod.ts";
import { loadQuickJs } from "./sandbox.ts";
import type { VmHost } from "./actions.ts";
import { encodeFrame, FrameReader } from "./_wire.ts";
import type { Limits } from "./config.ts";
import { reportJsonHead, type RunReply, type WorkerError, type WorkerMessage, type WorkerRequest } from "./protocol.ts";

// stdout carries frames only.
console.log = console.info = console.debug = (...a: unknown[]) => console.error(...a);

/**
 * The VMM side, imported after stdin is read: with VMXLAB_ENGINE=jit the runtime's module graph
 * loads binaryen at its top level; requests wait for it in `handle`.
 */
const actions = import("./actions.ts");
let ActionErrorClass: typeof import("./actions.ts").ActionError | null = null;

let host: VmHost | null = null;
let limits: Limits | null = null;
let capReport: typeof import("./actions.ts").capReport;
let idleTimer: ReturnType<typeof setTimeout> | undefined;

function post(m: WorkerMessage): void {
  process.stdout.write(encodeFrame(m));
}

async function handle(req: WorkerRequest): Promise<unknown> {
  if (req.op === "init") {
    const { VmHost, ActionError, capReport: cap } = await actions;
    ActionErrorClass = ActionError;
    capReport = cap;
    const { sets, info } = await loadHookScripts(req.scripts);
    // jit: "preload": binaryen now, so no run waits for it (otherwise the first jit run, or an auto run that goes on, loads it).
    if (req.preloadJit) await loadJit();
    // QuickJS too (~50 ms), so a request's first script does not wait for it.
    await loadQuickJs();
    host = new VmHost(req.limits, sets, (event) => post({ event }));
    limits = req.limits;
    return { hookSets: info };
  }
  if (!host) throw new Error("Worker is not initialised");
  const t0 = performance.now();
  switch (req.op) {
    case "run": {
      const r = await host.run(req.machine, req.run);
      r.timings.workerMs = Math.round((performance.now() - t0) * 1000) / 1000;
      // The report goes to the client as it is: send it as JSON text (the service does not parse it).
      let json = reportJsonHead(r);
      if (json.length > limits!.maxAnswerBytes) {
        capReport(r, limits!.maxAnswerBytes);
        json = reportJsonHead(r);
      }
      return { json } satisfies RunReply;
    }
    case "create": return await host.create(req.session, req.machine);
    case "sessionRun": {
      const r = await host.sessionRun(req.session, req.run);
      r.timings.workerMs = Math.round((performance.now() - t0) * 1000) / 1000;
      capReport(r, limits!.maxAnswerBytes);
      return r;
    }
    case "getRegs": return host.getRegs(req.session);
    case "setRegs": return host.setRegs(req.session, req.regs);
    case "readMemory": return host.readMemory(req.session, req.addr, req.len);
    case "writeMemory": return host.writeMemory(req.session, req.addr, req.data);
    case "disasm": return await host.disasm(req.session, req.addr, req.count, req.bits);
    case "console": return host.console(req.session, req.input);
    case "destroy": return host.destroy(req.session);
  }
}

function toWorkerError(e: unknown): WorkerError {
  if (ActionErrorClass !== null && e instanceof ActionErrorClass) return e.error;
  const err = e as Error;
  return { kind: "internal", message: `${err?.name ?? "Error"}: ${err?.message ?? String(e)}` };
}

async function onRequest(m: { id: number; req: WorkerRequest }): Promise<void> {
  const { id, req } = m;
  clearTimeout(idleTimer);
  try {
    const value = await handle(req);
    post({ id, ok: true, value });
  } catch (e) {
    post({ id, ok: false, error: toWorkerError(e) });
  }
  // The reply is on its way: reset the machine it used now, while the service answers.
  try {
    host?.recycle();
  } catch { /* a reused machine is an optimisation */ }
  // Idle: make the next machine now, so the next run does not pay for it.
  idleTimer = setTimeout(() => {
    try {
      host?.prepareSpare();
    } catch { /* a spare is an optimisation */ }
  }, 0);
}

// One request at a time: the service sends the next only after this one's reply.
const reader = new FrameReader((m) => void onRequest(m as { id: number; req: WorkerRequest }));
process.stdin.on("data", (chunk: Uint8Array) => {
  try {
    reader.push(chunk);
  } catch (e) {
    console.error(`vmxlab worker: ${(e as Error).message}`);
    process.exit(70);
  }
});
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));

/**
 * A worker of the pool: owns the machines of the runs and sessions sent to it and performs one
 * request at a time (guest code runs synchronously, so nothing else would interleave anyway).
 */
import { loadHookScripts } from "./hooks.ts";
import { loadJit } from "../runtime/vmm/mod.ts";
import type { VmHost } from "./actions.ts";
import { reportJsonHead, type RunReply, type WorkerError, type WorkerMessage, type WorkerRequest } from "./protocol.ts";

// deno-lint-ignore no-explicit-any
const port = globalThis as any as {
  postMessage(m: WorkerMessage, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<{ id: number; req: WorkerRequest }>) => void) | null;
};

/**
 * The VMM side, imported after `onmessage` is set: with VMXLAB_ENGINE=jit the runtime's module graph
 * loads binaryen at its top level, and a message that arrives while a worker's modules are still
 * evaluating finds no handler and is lost.
 */
const actions = import("./actions.ts");
let ActionErrorClass: typeof import("./actions.ts").ActionError | null = null;

let host: VmHost | null = null;
let idleTimer: ReturnType<typeof setTimeout> | undefined;

function post(m: WorkerMessage, transfer?: Transferable[]): void {
  port.postMessage(m, transfer);
}

async function handle(req: WorkerRequest): Promise<unknown> {
  if (req.op === "init") {
    const { VmHost, ActionError } = await actions;
    ActionErrorClass = ActionError;
    const { sets, info } = await loadHookScripts(req.scripts);
    // jit: "preload": binaryen now, so no run waits for it (otherwise the first jit run, or an auto run that goes on, loads it).
    if (req.preloadJit) await loadJit();
    host = new VmHost(req.limits, sets, (event) => post({ event }));
    return { hookSets: info };
  }
  if (!host) throw new Error("Worker is not initialised");
  const t0 = performance.now();
  switch (req.op) {
    case "run": {
      const r = await host.run(req.machine, req.run);
      r.timings.workerMs = Math.round((performance.now() - t0) * 1000) / 1000;
      // The report goes to the client as it is: send it as JSON text (cheaper to post than an
      // object, and the main thread does not serialise it again).
      return { json: reportJsonHead(r) } satisfies RunReply;
    }
    case "create": return await host.create(req.session, req.machine);
    case "sessionRun": {
      const r = await host.sessionRun(req.session, req.run);
      r.timings.workerMs = Math.round((performance.now() - t0) * 1000) / 1000;
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

port.onmessage = async (ev) => {
  const { id, req } = ev.data;
  clearTimeout(idleTimer);
  try {
    const value = await handle(req);
    post({ id, ok: true, value }, value instanceof Uint8Array ? [value.buffer as ArrayBuffer] : undefined);
  } catch (e) {
    post({ id, ok: false, error: toWorkerError(e) });
  }
  // The reply is on its way: reset the machine it used now, while the main thread answers.
  try {
    host?.recycle();
  } catch { /* a reused machine is an optimisation */ }
  // Idle: make the next machine now, so the next run does not pay for it.
  idleTimer = setTimeout(() => {
    try {
      host?.prepareSpare();
    } catch { /* a spare is an optimisation */ }
  }, 0);
};

/**
 * The worker pool: guest code runs in worker processes (`_child.ts`) so the event loop keeps
 * answering (`/healthz` during a long guest), and so a run can always be ended: a process is
 * killed with SIGKILL and its core is free at once, which a worker thread is not (Deno's
 * `Worker.terminate()` leaves a thread spinning in JavaScript or WebAssembly running). Each worker
 * does one job at a time. A job either goes to any worker (a one-shot run) or to the worker that
 * holds its session's machine. A watchdog kills a worker whose job overruns its limits plus the
 * grace, and starts a new one in its slot; the sessions it held are lost, the others' are not.
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { ANSWER_GRACE_MS, type Limits } from "./config.ts";
import { encodeFrame, FrameReader } from "./_wire.ts";
import type { HookSetInfo, WorkerError, WorkerMessage, WorkerRequest, SessionEvent } from "./protocol.ts";

/** A job that failed in a worker; `error.kind` says how. */
export class WorkerJobError extends Error {
  constructor(readonly error: WorkerError | { kind: "worker-lost" | "busy" | "deadline-exceeded"; message: string }) {
    super(error.message);
    this.name = "WorkerJobError";
  }
}

interface Job {
  id: number;
  req: WorkerRequest;
  watchdogMs: number;
  enqueuedAt: number;
  startedAt: number;
  /** When a run must be over (enqueuedAt + its timeoutMs); Infinity for other jobs. */
  deadline: number;
  /** Answers the caller at deadline + ANSWER_GRACE_MS if the worker has not. */
  answerTimer?: ReturnType<typeof setTimeout>;
  resolve(v: { value: unknown; worker: number; queueMs: number }): void;
  reject(e: unknown): void;
}

interface Slot {
  index: number;
  child: ChildProcess;
  /** The process has exited (or been killed). */
  exited: boolean;
  /** It replaces a worker that was lost. */
  replacement: boolean;
  /** A jit or auto run was sent to it (so it may hold binaryen, and its replacement loads it too). */
  usedJit: boolean;
  busy: Job | null;
  queue: Job[];
  timer?: ReturnType<typeof setTimeout>;
  ready: boolean;
}

export interface PoolOptions {
  size: number;
  limits: Limits;
  scripts: string[];
  /** Load binaryen in each worker as it starts (ServiceOptions.jit "preload"). */
  preloadJit?: boolean;
  /** Console bytes and other events from session machines. */
  onEvent(e: SessionEvent): void;
  /** A worker was replaced: the sessions it held are gone. */
  onWorkerLost(index: number, reason: string): void;
}

/** The command that starts a worker process under this runtime (Deno or Bun). */
function childCommand(): { cmd: string; args: string[] } {
  const entry = new URL("./_child.ts", import.meta.url).pathname;
  if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined") return { cmd: process.execPath, args: [entry] };
  return { cmd: process.execPath, args: ["run", "-A", "--quiet", entry] };
}

let nextJobId = 1;

/** Time a run may wait for a worker and still get its whole timeoutMs (it comes out of the grace). */
const QUEUE_ALLOWANCE_MS = 100;
/** Of the grace, what is kept for writing the answer itself. */
const ANSWER_MARGIN_MS = 25;

export class WorkerPool {
  readonly size: number;
  private slots: Slot[] = [];
  private readonly shared: Job[] = [];
  private started: Promise<HookSetInfo[]> | null = null;
  private hookSets: HookSetInfo[] = [];
  private closed = false;
  /** Workers killed because a job overran its limits, since start. */
  killed = 0;
  /** Jobs refused or failed because their worker was lost. */
  lostJobs = 0;
  /** How long recent jobs held a worker (ms, a moving average): the wait a queued run can expect. */
  private serviceMs = 0;

  constructor(private readonly opts: PoolOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new RangeError(`Invalid worker count: ${opts.size}`);
    this.size = opts.size;
  }

  /** Spawn the workers and load the hook scripts in each; resolves with the hook sets they report. */
  start(): Promise<HookSetInfo[]> {
    if (this.closed) return Promise.reject(new Error("Worker pool is closed"));
    if (!this.started) {
      const started = (async () => {
        const infos = await Promise.all(Array.from({ length: this.size }, (_, i) => this.slots[i]?.ready ? this.hookSets : this.spawn(i)));
        this.hookSets = infos[0];
        return infos[0];
      })();
      this.started = started;
      // A failed start (a worker that cannot load) is retried by the next request, not cached.
      started.catch(() => {
        if (this.started === started) this.started = null;
      });
    }
    return this.started;
  }

  /** Jobs running or waiting. */
  get pending(): number {
    let n = this.shared.length;
    for (const s of this.slots) n += s.queue.length + (s.busy && s.busy.id !== 0 ? 1 : 0);
    return n;
  }

  /** Worker processes started and answering (fewer than `size` while one is being replaced). */
  get readyCount(): number {
    let n = 0;
    for (const s of this.slots) if (s?.ready && !s.exited) n++;
    return n;
  }

  /** A worker was lost and its replacement does not answer yet. */
  get degraded(): boolean {
    return this.slots.some((s) => s && s.replacement && !(s.ready && !s.exited));
  }

  /** The process ids of the workers (for tests and operators). */
  get pids(): number[] {
    return this.slots.map((s) => s?.child.pid ?? 0);
  }

  /** The worker with the least work queued (for a new session), counting `held[i]` more for worker i. */
  leastLoaded(held: readonly number[] = []): number {
    let best = 0, bestLoad = Infinity;
    for (let i = 0; i < this.size; i++) {
      const s = this.slots[i];
      const load = (held[i] ?? 0) + (s ? s.queue.length + (s.busy ? 1 : 0) : 0);
      if (load < bestLoad) { best = i; bestLoad = load; }
    }
    return best;
  }

  /**
   * Run `req` on worker `worker` (or any free one).
   * @param watchdogMs replace the worker if the job has not answered this long after it started
   */
  async submit(req: WorkerRequest, opts: { worker?: number; watchdogMs: number; timeoutMs?: number }): Promise<{ value: unknown; worker: number; queueMs: number }> {
    // The workers' start-up (once, or when one was replaced while the job waits) is not the job's queue time.
    await this.start();
    const enqueuedAt = performance.now();
    if (this.closed) throw new WorkerJobError({ kind: "worker-lost", message: "The service is shutting down" });
    // Refused at once rather than at its deadline: a run that, by how long recent jobs took, would
    // wait in the queue past its timeoutMs (every worker busy, and the queue ahead of it too long).
    if (opts.worker === undefined && opts.timeoutMs !== undefined && !this.slots.some((s) => s?.ready && !s.exited && !s.busy)) {
      const expectMs = (this.shared.length + 1) * this.serviceMs / Math.max(1, this.readyCount);
      if (expectMs > opts.timeoutMs) {
        throw new WorkerJobError({ kind: "busy", message: `Every worker is busy and ${this.shared.length} runs wait before this one (about ${Math.round(expectMs)} ms, past its ${opts.timeoutMs} ms)` });
      }
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      const job: Job = {
        id: nextJobId++, req, watchdogMs: opts.watchdogMs, enqueuedAt, startedAt: 0,
        deadline: opts.timeoutMs === undefined ? Infinity : enqueuedAt + opts.timeoutMs,
        resolve: (v) => {
          if (settled) return;
          settled = true;
          clearTimeout(job.answerTimer);
          resolve(v);
        },
        reject: (e) => {
          if (settled) return;
          settled = true;
          clearTimeout(job.answerTimer);
          reject(e);
        },
      };
      // Whatever the worker does, the caller has an answer by the deadline plus the grace: the
      // job's time is the request's, queue time included.
      if (job.deadline !== Infinity) {
        job.answerTimer = setTimeout(() => this.overdue(job, opts.worker), Math.max(0, job.deadline - performance.now()));
      }
      if (opts.worker === undefined) this.shared.push(job);
      else this.slots[opts.worker].queue.push(job);
      this.dispatch();
    });
  }

  /** Stop every worker; pending jobs fail. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const lost = new WorkerJobError({ kind: "worker-lost", message: "The service is shutting down" });
    for (const s of this.slots) {
      if (!s) continue;
      clearTimeout(s.timer);
      kill(s);
      if (s.busy && s.busy.id !== 0) s.busy.reject(lost);
      for (const j of s.queue) j.reject(lost);
    }
    for (const j of this.shared) j.reject(lost);
    this.shared.length = 0;
  }

  private spawn(index: number): Promise<HookSetInfo[]> {
    const old = this.slots[index];
    if (old) kill(old);
    const { cmd, args } = childCommand();
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"] });
    const slot: Slot = { index, child, exited: false, replacement: old !== undefined, usedJit: false, busy: null, queue: old?.queue ?? [], ready: false };
    this.slots[index] = slot;
    const reader = new FrameReader((m) => this.onMessage(slot, m as WorkerMessage));
    child.stdout!.on("data", (chunk: Uint8Array) => {
      try {
        reader.push(chunk);
      } catch (e) {
        this.lose(slot, `Worker ${index} sent a bad frame: ${(e as Error).message}`);
      }
    });
    // A write to a worker that just died fails here, not as an uncaught error.
    child.stdin!.on("error", () => {});
    child.on("error", (e) => this.lose(slot, `Worker ${index} failed: ${e.message}`));
    child.on("exit", (code, signal) => {
      slot.exited = true;
      this.lose(slot, `Worker ${index} exited (${signal ?? `code ${code}`})`);
    });
    return new Promise((resolve, reject) => {
      const init: Job = {
        // A replacement for a worker that ran the JIT loads binaryen before it takes work, so the
        // runs it gets are not refused (engine-loading) or held up while it loads.
        id: 0, req: { op: "init", scripts: this.opts.scripts, limits: this.opts.limits, preloadJit: (this.opts.preloadJit ?? false) || (old?.usedJit ?? false) }, watchdogMs: 60_000,
        enqueuedAt: performance.now(), startedAt: performance.now(), deadline: Infinity,
        resolve: ({ value }) => {
          slot.ready = true;
          resolve((value as { hookSets: HookSetInfo[] }).hookSets);
          this.dispatch();
        },
        reject,
      };
      slot.busy = init;
      child.stdin!.write(encodeFrame({ id: 0, req: init.req }));
    });
  }

  /**
   * A run's deadline has passed. Still queued: refuse it now. Running: give the worker the grace
   * to answer, then answer the caller (the worker may go on until the watchdog kills it).
   */
  private overdue(job: Job, worker: number | undefined): void {
    const queue = worker === undefined ? this.shared : this.slots[worker]?.queue;
    const i = queue ? queue.indexOf(job) : -1;
    if (i >= 0) {
      queue!.splice(i, 1);
      job.reject(new WorkerJobError({ kind: "busy", message: `No worker was free to start the run within its ${Math.round(job.deadline - job.enqueuedAt)} ms` }));
      return;
    }
    job.answerTimer = setTimeout(() => {
      job.reject(new WorkerJobError({ kind: "deadline-exceeded", message: `The run did not answer within its ${Math.round(job.deadline - job.enqueuedAt)} ms and ${ANSWER_GRACE_MS} ms of grace` }));
    }, ANSWER_GRACE_MS - ANSWER_MARGIN_MS);
  }

  private onMessage(slot: Slot, m: WorkerMessage): void {
    if ("event" in m) {
      this.opts.onEvent(m.event);
      return;
    }
    if (!("id" in m)) return;
    const job = slot.busy;
    if (!job || job.id !== m.id && !(job.id === 0 && m.id === 0)) return;
    clearTimeout(slot.timer);
    slot.busy = null;
    if (job.id !== 0) this.serviceMs = this.serviceMs * 0.8 + (performance.now() - job.startedAt) * 0.2;
    if (m.ok) job.resolve({ value: m.value, worker: slot.index, queueMs: job.startedAt - job.enqueuedAt });
    else job.reject(new WorkerJobError(m.error));
    this.dispatch();
  }

  private dispatch(): void {
    if (this.closed) return;
    for (const s of this.slots) {
      if (!s || !s.ready || s.exited || s.busy) continue;
      const now = performance.now();
      let job = s.queue.shift() ?? this.shared.shift();
      // A run whose time ran out while it waited is not started (its caller has had a 503).
      while (job && job.deadline <= now) {
        job.reject(new WorkerJobError({ kind: "busy", message: `No worker was free to start the run within its ${Math.round(job.deadline - job.enqueuedAt)} ms` }));
        job = s.queue.shift() ?? this.shared.shift();
      }
      if (!job) continue;
      s.busy = job;
      job.startedAt = now;
      if ((job.req.op === "run" || job.req.op === "create") && job.req.machine.engine !== "interp") s.usedJit = true;
      // The worker gets what is left of the run's time, not all of it again (a wait up to
      // QUEUE_ALLOWANCE_MS comes out of the answer's grace instead).
      if (job.deadline !== Infinity && (job.req.op === "run" || job.req.op === "sessionRun")) {
        const left = Math.min(job.req.run.timeoutMs, Math.floor(job.deadline + QUEUE_ALLOWANCE_MS - now));
        if (left < job.req.run.timeoutMs) job.req = { ...job.req, run: { ...job.req.run, timeoutMs: Math.max(1, left) } };
      }
      s.timer = setTimeout(() => {
        if (s.busy !== job) return;
        this.killed++;
        this.lose(s, `Worker ${s.index} did not answer within ${job.watchdogMs} ms and was killed`);
      }, job.watchdogMs);
      s.child.stdin!.write(encodeFrame({ id: job.id, req: job.req }));
    }
  }

  /** Replace a worker that failed or hung; its jobs and sessions are lost. */
  private lose(slot: Slot, reason: string): void {
    if (this.closed || this.slots[slot.index] !== slot) return;
    clearTimeout(slot.timer);
    kill(slot);
    const err = new WorkerJobError({ kind: "worker-lost", message: reason });
    if (slot.busy) {
      if (slot.busy.id !== 0) this.lostJobs++;
      slot.busy.reject(err);
    }
    slot.busy = null;
    // Session jobs queued for this worker refer to machines that are gone.
    for (const j of slot.queue.splice(0)) j.reject(err);
    this.opts.onWorkerLost(slot.index, reason);
    // A worker that never started is not respawned in a loop: the next request's start() retries it.
    if (slot.ready) {
      this.spawn(slot.index).catch(() => {});
    } else {
      this.started = null;
    }
    // One-shot jobs wait for the replacement; without one (a worker that never started), they fail.
    if (!slot.ready && !this.slots.some((s) => s.ready && !s.exited)) {
      for (const j of this.shared.splice(0)) j.reject(err);
    }
  }
}

/** End a worker process now (SIGKILL: it may be spinning and would never handle a gentler signal). */
function kill(slot: Slot): void {
  if (slot.exited) return;
  slot.exited = true;
  slot.child.stdin?.destroy();
  slot.child.stdout?.destroy();
  slot.child.kill("SIGKILL");
}

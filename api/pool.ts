/**
 * The worker pool: guest code runs in workers so the event loop keeps answering (`/healthz`
 * during a long guest). Each worker does one job at a time. A job either goes to any worker (a
 * one-shot run) or to the worker that holds its session's machine. A watchdog replaces a worker that
 * overruns its job's limit by far (a bug, since runs end themselves at their budget and deadline).
 */
import type { Limits } from "./config.ts";
import type { HookSetInfo, WorkerError, WorkerMessage, WorkerRequest, SessionEvent } from "./protocol.ts";

/** A job that failed in a worker; `error.kind` says how. */
export class WorkerJobError extends Error {
  constructor(readonly error: WorkerError | { kind: "worker-lost"; message: string }) {
    super(error.message);
    this.name = "WorkerJobError";
  }
}

interface Job {
  id: number;
  req: WorkerRequest;
  transfer: Transferable[];
  watchdogMs: number;
  enqueuedAt: number;
  startedAt: number;
  resolve(v: { value: unknown; worker: number; queueMs: number }): void;
  reject(e: unknown): void;
}

interface Slot {
  index: number;
  worker: Worker;
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

let nextJobId = 1;

export class WorkerPool {
  readonly size: number;
  private slots: Slot[] = [];
  private readonly shared: Job[] = [];
  private started: Promise<HookSetInfo[]> | null = null;
  private hookSets: HookSetInfo[] = [];
  private closed = false;

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

  /** The worker with the least work queued (for a new session). */
  leastLoaded(): number {
    let best = 0, bestLoad = Infinity;
    for (let i = 0; i < this.size; i++) {
      const s = this.slots[i];
      const load = s ? s.queue.length + (s.busy ? 1 : 0) : 0;
      if (load < bestLoad) { best = i; bestLoad = load; }
    }
    return best;
  }

  /**
   * Run `req` on worker `worker` (or any free one).
   * @param watchdogMs replace the worker if the job has not answered this long after it started
   */
  async submit(req: WorkerRequest, opts: { worker?: number; watchdogMs: number; transfer?: Transferable[] }): Promise<{ value: unknown; worker: number; queueMs: number }> {
    await this.start();
    if (this.closed) throw new WorkerJobError({ kind: "worker-lost", message: "The service is shutting down" });
    return new Promise((resolve, reject) => {
      const job: Job = {
        id: nextJobId++, req, transfer: opts.transfer ?? [], watchdogMs: opts.watchdogMs,
        enqueuedAt: performance.now(), startedAt: 0, resolve, reject,
      };
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
      clearTimeout(s.timer);
      s.worker.terminate();
      if (s.busy && s.busy.id !== 0) s.busy.reject(lost);
      for (const j of s.queue) j.reject(lost);
    }
    for (const j of this.shared) j.reject(lost);
    this.shared.length = 0;
  }

  private spawn(index: number): Promise<HookSetInfo[]> {
    this.slots[index]?.worker.terminate();
    const worker = new Worker(new URL("./_worker.ts", import.meta.url), { type: "module" });
    const slot: Slot = { index, worker, busy: null, queue: this.slots[index]?.queue ?? [], ready: false };
    this.slots[index] = slot;
    worker.onmessage = (e: MessageEvent<WorkerMessage>) => this.onMessage(slot, e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault?.();
      this.lose(slot, `Worker ${index} failed: ${e.message}`);
    };
    return new Promise((resolve, reject) => {
      const init: Job = {
        id: 0, req: { op: "init", scripts: this.opts.scripts, limits: this.opts.limits, preloadJit: this.opts.preloadJit ?? false }, transfer: [], watchdogMs: 60_000,
        enqueuedAt: performance.now(), startedAt: performance.now(),
        resolve: ({ value }) => {
          slot.ready = true;
          resolve((value as { hookSets: HookSetInfo[] }).hookSets);
          this.dispatch();
        },
        reject,
      };
      slot.busy = init;
      worker.postMessage({ id: 0, req: init.req });
    });
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
    if (m.ok) job.resolve({ value: m.value, worker: slot.index, queueMs: job.startedAt - job.enqueuedAt });
    else job.reject(new WorkerJobError(m.error));
    this.dispatch();
  }

  private dispatch(): void {
    if (this.closed) return;
    for (const s of this.slots) {
      if (!s || !s.ready || s.busy) continue;
      const job = s.queue.shift() ?? this.shared.shift();
      if (!job) continue;
      s.busy = job;
      job.startedAt = performance.now();
      s.timer = setTimeout(() => {
        if (s.busy === job) this.lose(s, `Worker ${s.index} did not answer within ${job.watchdogMs} ms`);
      }, job.watchdogMs);
      s.worker.postMessage({ id: job.id, req: job.req }, job.transfer);
    }
  }

  /** Replace a worker that failed or hung; its jobs and sessions are lost. */
  private lose(slot: Slot, reason: string): void {
    if (this.closed || this.slots[slot.index] !== slot) return;
    clearTimeout(slot.timer);
    slot.worker.terminate();
    const err = new WorkerJobError({ kind: "worker-lost", message: reason });
    if (slot.busy) slot.busy.reject(err);
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
    if (!this.slots.some((s) => s.ready)) {
      for (const j of this.shared.splice(0)) j.reject(err);
    }
  }
}

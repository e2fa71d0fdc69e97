/**
 * The session table (main thread): which worker holds each session's machine, when it was last
 * used, its recent events for server-sent events, and expiry. The machines themselves live in the
 * workers; this table never touches VM state.
 */
import { randomBytes } from "node:crypto";
import type { RegsReport, RunReport, SessionEvent } from "./protocol.ts";

/** One event as the events stream sends it. */
export interface StreamEvent {
  id: number;
  event: "console" | "exit" | "closed";
  data: unknown;
}

/** A run's defaults, from the create request. */
export interface RunDefaults {
  budget: number;
  timeoutMs: number;
  dumps: { addr: number; len: number }[];
}

const KEEP_EVENTS = 256;

export class Session {
  readonly createdAt = Date.now();
  lastUsedAt = Date.now();
  runs = 0;
  instructions = 0;
  running = false;
  /** Requests in progress (a session with one is not idle). */
  active = 0;
  lastExit: RunReport["exit"] | null = null;
  closed: string | null = null;
  /** The engine its machine runs under. */
  engine = "interp";
  /** The tenant that created it: only its requests see it. */
  tenant = "local";
  private nextEventId = 1;
  private readonly recent: StreamEvent[] = [];
  private readonly subscribers = new Set<(e: StreamEvent) => void>();

  constructor(
    readonly id: string,
    readonly worker: number,
    readonly mode: string,
    readonly memBytes: number,
    readonly hooks: string[],
    readonly script: boolean,
    readonly defaults: RunDefaults,
  ) {}

  /** Record an event and pass it to every subscriber. */
  publish(event: StreamEvent["event"], data: unknown): void {
    const e: StreamEvent = { id: this.nextEventId++, event, data };
    this.recent.push(e);
    if (this.recent.length > KEEP_EVENTS) this.recent.shift();
    for (const s of this.subscribers) s(e);
  }

  /** Events after `lastId` that are still kept, then every new one until `unsubscribe()`. */
  subscribe(lastId: number, fn: (e: StreamEvent) => void): () => void {
    for (const e of this.recent) if (e.id > lastId) fn(e);
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  describe(idleMs: number, regs?: RegsReport) {
    const iso = (t: number) => new Date(t).toISOString();
    return {
      id: this.id,
      mode: this.mode,
      engine: this.engine,
      memBytes: this.memBytes,
      hooks: this.hooks,
      script: this.script,
      createdAt: iso(this.createdAt),
      lastUsedAt: iso(this.lastUsedAt),
      expiresAt: iso(this.lastUsedAt + idleMs),
      runs: this.runs,
      instructions: this.instructions,
      running: this.running,
      lastExit: this.lastExit,
      ...(regs ? { regs } : {}),
    };
  }
}

export class SessionTable {
  private readonly map = new Map<string, Session>();
  private timer: ReturnType<typeof setInterval> | undefined;

  /**
   * @param idleMs a session unused this long is closed
   * @param onExpire called for each expired session (to free its machine in the worker)
   */
  /** Called for every session that closes, whatever the reason (to give back its quota). */
  onClosed: ((s: Session) => void) | null = null;

  constructor(private readonly idleMs: number, private readonly onExpire: (s: Session) => void) {}

  get size(): number {
    return this.map.size;
  }

  newId(): string {
    return `vm-${randomBytes(8).toString("hex")}`;
  }

  add(s: Session): void {
    this.map.set(s.id, s);
    // Sweep only while there are sessions: an idle service (or a test) keeps no timer.
    this.timer ??= setInterval(() => this.sweep(), Math.max(50, Math.min(this.idleMs / 4, 10_000)));
  }

  get(id: string): Session | undefined {
    return this.map.get(id);
  }

  list(): Session[] {
    return [...this.map.values()];
  }

  /** Remove a session and tell its subscribers why. */
  close(id: string, reason: string): Session | undefined {
    const s = this.map.get(id);
    if (!s) return undefined;
    this.map.delete(id);
    s.closed = reason;
    s.publish("closed", { reason });
    this.onClosed?.(s);
    if (this.map.size === 0) this.stopTimer();
    return s;
  }

  /** Close sessions idle for longer than the limit. */
  sweep(now = Date.now()): void {
    for (const s of this.list()) {
      if (s.active === 0 && now - s.lastUsedAt > this.idleMs) {
        this.close(s.id, "expired");
        this.onExpire(s);
      }
    }
  }

  /** An event from a worker. */
  onWorkerEvent(e: SessionEvent): void {
    this.map.get(e.session)?.publish(e.type, e.data);
  }

  /** A worker was replaced: its sessions' machines are gone. */
  onWorkerLost(worker: number): void {
    for (const s of this.list()) if (s.worker === worker) this.close(s.id, "worker-lost");
  }

  closeAll(reason: string): void {
    for (const s of this.list()) this.close(s.id, reason);
    this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * Trace points: each named stage of the seed's paths (module init, KVM_CREATE_VCPU, KVM_RUN, the
 * IO path) records itself with its arguments when tracing is on. Off by default; a stage then costs
 * one branch (`if (tracer)`).
 */
export interface TraceEvent {
  /** The stage: a function name from the seed, in camelCase (`vcpuEnterGuest`, `handleIo`, …). */
  stage: string;
  /** Arguments worth seeing (port, size, exit reason, …). */
  args?: Record<string, unknown>;
}

export type TraceSink = (e: TraceEvent) => void;

/** Collects trace events in memory, and optionally forwards each one. */
export class Tracer {
  readonly events: TraceEvent[] = [];
  constructor(private readonly forward?: TraceSink, private readonly keep = true) {}
  record(stage: string, args?: Record<string, unknown>): void {
    const e: TraceEvent = args ? { stage, args } : { stage };
    if (this.keep) this.events.push(e);
    this.forward?.(e);
  }
  /** The stage names, in order. */
  stages(): string[] {
    return this.events.map((e) => e.stage);
  }
  clear(): void {
    this.events.length = 0;
  }
}

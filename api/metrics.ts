/**
 * The service's counters for `GET /metrics`, in the Prometheus text format (version 0.0.4):
 * requests and runs by outcome, guest exits by reason, queue and run time histograms, killed
 * workers, sessions and guest memory. Only counts: no tenant names, ids or paths with ids.
 */

/** Histogram bucket bounds in seconds. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

class Histogram {
  readonly counts = new Array<number>(BUCKETS.length).fill(0);
  sum = 0;
  count = 0;
  observe(seconds: number): void {
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]) this.counts[i]++;
    this.sum += seconds;
    this.count++;
  }
  render(name: string, help: string): string {
    const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
    BUCKETS.forEach((b, i) => lines.push(`${name}_bucket{le="${b}"} ${this.counts[i]}`));
    lines.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`);
    return lines.join("\n");
  }
}

/** A label value as the text format wants it. */
function label(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function counterLines(name: string, help: string, by: string, m: Map<string, number>): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} counter`];
  for (const [k, v] of [...m].sort()) lines.push(`${name}{${by}="${label(k)}"} ${v}`);
  return lines.join("\n");
}

/** Distinct label values kept per counter; more go under "other" (a guest chooses its exit reasons). */
const MAX_LABELS = 64;

export class Metrics {
  /** HTTP answers by route template and status. */
  private readonly requests = new Map<string, number>();
  /** Runs (one-shot and session) that answered 200, by the guest's exit reason. */
  private readonly exits = new Map<string, number>();
  /** Runs that failed, by problem type. */
  private readonly failures = new Map<string, number>();
  readonly queueSeconds = new Histogram();
  readonly runSeconds = new Histogram();

  private bump(m: Map<string, number>, k: string, n = 1): void {
    if (!m.has(k) && m.size >= MAX_LABELS) k = "other";
    m.set(k, (m.get(k) ?? 0) + n);
  }

  request(route: string, status: number): void {
    this.bump(this.requests, `${route} ${status}`);
  }

  /** A run that answered 200: how the guest's run ended, its time queued and running. */
  ran(reason: string, queueMs: number | undefined, runMs: number | undefined): void {
    this.bump(this.exits, reason);
    if (queueMs !== undefined) this.queueSeconds.observe(queueMs / 1000);
    if (runMs !== undefined) this.runSeconds.observe(runMs / 1000);
  }

  /** A run that failed, by problem type. */
  failed(problem: string): void {
    this.bump(this.failures, problem);
  }

  /** The text format, with the gauges the caller reads now. */
  render(g: { sessions: number; runsInFlight: number; memBytes: number; workers: number; workersReady: number; workersKilled: number; eventStreams: number }): string {
    const gauge = (name: string, help: string, v: number) => `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${v}`;
    const reqLines = ["# HELP vmxlab_http_requests_total HTTP answers by route and status", "# TYPE vmxlab_http_requests_total counter"];
    for (const [k, v] of [...this.requests].sort()) {
      const [route, status] = k.split(" ");
      reqLines.push(`vmxlab_http_requests_total{route="${label(route)}",status="${status}"} ${v}`);
    }
    return [
      reqLines.join("\n"),
      counterLines("vmxlab_run_exits_total", "Runs that answered 200, by how the guest's run ended (hlt, timeout, budget, …)", "reason", this.exits),
      counterLines("vmxlab_run_failures_total", "Runs that failed, by problem type (hook-failed, busy, worker-lost, …)", "problem", this.failures),
      this.queueSeconds.render("vmxlab_run_queue_seconds", "Time runs waited for a worker"),
      this.runSeconds.render("vmxlab_run_seconds", "Guest run time"),
      `# HELP vmxlab_workers_killed_total Workers killed because a job overran its limits\n# TYPE vmxlab_workers_killed_total counter\nvmxlab_workers_killed_total ${g.workersKilled}`,
      gauge("vmxlab_workers", "Worker processes the service has", g.workers),
      gauge("vmxlab_workers_ready", "Worker processes answering", g.workersReady),
      gauge("vmxlab_sessions", "Live sessions", g.sessions),
      gauge("vmxlab_runs_in_flight", "Runs and session calls in progress or queued", g.runsInFlight),
      gauge("vmxlab_guest_memory_bytes", "Guest RAM held by live sessions and runs in flight", g.memBytes),
      gauge("vmxlab_event_streams", "Open event streams", g.eventStreams),
    ].join("\n") + "\n";
  }
}

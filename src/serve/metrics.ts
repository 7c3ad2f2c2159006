// Prometheus metrics for `weir serve --metrics-addr HOST:PORT` (text
// exposition format 0.0.4, written here: counters, gauges and cumulative
// histograms with `le` buckets, `_sum` and `_count`). Fed by observe.ts;
// gauges that the machine already knows (instances, requests in flight in
// the machine) are read when scraped.

import type { RequestRecord, RequestSink, ServeObserver } from './observe.ts';

/** Request duration buckets (seconds). */
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Instantiation time buckets (seconds). */
const INSTANTIATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class Histogram {
  readonly bounds: number[];
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(bounds: number[]) {
    this.bounds = bounds;
    this.counts = bounds.map(() => 0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) if (v <= this.bounds[i]) { this.counts[i]++; break; }
  }
  /** The exposition lines: cumulative buckets, +Inf, _sum, _count. */
  lines(name: string): string[] {
    const out: string[] = [];
    let c = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      c += this.counts[i];
      out.push(`${name}_bucket{le="${num(this.bounds[i])}"} ${c}`);
    }
    out.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${num(this.sum)}`, `${name}_count ${this.count}`);
    return out;
  }
}

function num(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

/** What the metrics read from the machine at scrape time. */
export interface MetricsSource {
  /** Live instances. */
  readonly instances: number;
}

/** Everything one thread's ServeMetrics counted, as plain data (posted from a worker, summed by the main thread). */
export interface MetricsSnapshot {
  byStatus: [string, number][];
  inFlight: number;
  instances: number;
  traps: number;
  timeouts: number;
  instantiations: number;
  requestSeconds: { counts: number[]; sum: number; count: number };
  instantiationSeconds: { counts: number[]; sum: number; count: number };
}

/** Process-wide figures that only the supervisor of `--workers N` knows. */
export interface WorkerFigures {
  /** Worker threads serving now (1 when everything runs on the main thread). */
  workers: number;
  /** Workers started again after one died or was stopped by the watchdog. */
  restarts?: number;
  /** Workers stopped by the CPU watchdog (--cpu-timeout). */
  watchdogKills?: number;
  /** Requests a stopped worker never read, handed to another worker (handover.ts): answered by it, or not (503 or cut). */
  handovers?: { answered: number; unanswered: number };
  /** Connections of stopped workers moved whole to another worker (handover.ts). */
  movedConnections?: number;
}

export class ServeMetrics implements RequestSink {
  private readonly byStatus = new Map<string, number>();
  private inFlight = 0;
  private traps = 0;
  private timeouts = 0;
  private instantiations = 0;
  private readonly requestSeconds = new Histogram(REQUEST_BUCKETS);
  private readonly instantiationSeconds = new Histogram(INSTANTIATION_BUCKETS);
  private source: MetricsSource | null = null;
  /** Instance events for the ServeMachine (pass as ServeObservation's instanceEvents). */
  readonly instanceEvents: ServeObserver = {
    instantiated: (_i, seconds) => { this.instantiations++; this.instantiationSeconds.observe(seconds); },
    trapped: () => { this.traps++; },
    timedOut: () => { this.timeouts++; },
  };

  /** Where live instances are read from (the ServeMachine). */
  attach(source: MetricsSource): void { this.source = source; }

  started(): void { this.inFlight++; }

  finished(r: RequestRecord): void {
    this.inFlight--;
    const code = r.status === null ? 'none' : String(r.status);
    this.byStatus.set(code, (this.byStatus.get(code) ?? 0) + 1);
    this.requestSeconds.observe(r.seconds);
  }

  /** The content type of `render()`'s text. */
  static readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';

  snapshot(): MetricsSnapshot {
    const h = (x: Histogram) => ({ counts: [...x.counts], sum: x.sum, count: x.count });
    return {
      byStatus: [...this.byStatus],
      inFlight: this.inFlight,
      instances: this.source?.instances ?? 0,
      traps: this.traps,
      timeouts: this.timeouts,
      instantiations: this.instantiations,
      requestSeconds: h(this.requestSeconds),
      instantiationSeconds: h(this.instantiationSeconds),
    };
  }

  /** The Prometheus text exposition (everything on this thread). */
  render(): string { return renderMetrics([this.snapshot()], { workers: 1 }); }
}

/** The Prometheus text for the sum of `snapshots` (one per worker thread). */
export function renderMetrics(snapshots: MetricsSnapshot[], figures: WorkerFigures): string {
  const byStatus = new Map<string, number>();
  const requestSeconds = new Histogram(REQUEST_BUCKETS);
  const instantiationSeconds = new Histogram(INSTANTIATION_BUCKETS);
  const add = (into: Histogram, from: MetricsSnapshot['requestSeconds']) => {
    for (let i = 0; i < into.counts.length; i++) into.counts[i] += from.counts[i] ?? 0;
    into.sum += from.sum;
    into.count += from.count;
  };
  let inFlight = 0, instances = 0, traps = 0, timeouts = 0, instantiations = 0;
  for (const s of snapshots) {
    for (const [code, n] of s.byStatus) byStatus.set(code, (byStatus.get(code) ?? 0) + n);
    inFlight += s.inFlight;
    instances += s.instances;
    traps += s.traps;
    timeouts += s.timeouts;
    instantiations += s.instantiations;
    add(requestSeconds, s.requestSeconds);
    add(instantiationSeconds, s.instantiationSeconds);
  }
  const out: string[] = [];
  const metric = (name: string, type: string, help: string, lines: string[]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
  };
  const codes = [...byStatus.keys()].sort();
  metric('weir_http_requests_total', 'counter', 'HTTP requests answered, by status code (code="none": the connection ended before a status was sent).',
    codes.map((c) => `weir_http_requests_total{code="${c}"} ${byStatus.get(c)}`));
  metric('weir_http_requests_in_flight', 'gauge', 'HTTP requests received and not yet answered.', [`weir_http_requests_in_flight ${inFlight}`]);
  metric('weir_instances', 'gauge', 'Live component instances in the pools of every worker.', [`weir_instances ${instances}`]);
  metric('weir_workers', 'gauge', 'Threads serving requests (worker threads; 1 with --workers 0, where the main thread serves).', [`weir_workers ${figures.workers}`]);
  metric('weir_worker_restarts_total', 'counter', 'Worker threads started again after one died or was stopped by the watchdog.', [`weir_worker_restarts_total ${figures.restarts ?? 0}`]);
  metric('weir_watchdog_kills_total', 'counter', 'Worker threads stopped because a guest ran past --cpu-timeout.', [`weir_watchdog_kills_total ${figures.watchdogKills ?? 0}`]);
  metric('weir_watchdog_handovers_total', 'counter', 'Requests that reached a worker stopped by the watchdog unread and were handed to another worker: result="answered" (its response reached the client), "unanswered" (503 + Retry-After instead, or cut short).',
    [`weir_watchdog_handovers_total{result="answered"} ${figures.handovers?.answered ?? 0}`, `weir_watchdog_handovers_total{result="unanswered"} ${figures.handovers?.unanswered ?? 0}`]);
  metric('weir_watchdog_moved_connections_total', 'counter', 'Connections of workers stopped by the watchdog that were between requests and went on, whole, on another worker.', [`weir_watchdog_moved_connections_total ${figures.movedConnections ?? 0}`]);
  metric('weir_instances_created_total', 'counter', 'Component instances created.', [`weir_instances_created_total ${instantiations}`]);
  metric('weir_instance_traps_total', 'counter', 'Instances discarded because a guest call trapped.', [`weir_instance_traps_total ${traps}`]);
  metric('weir_request_timeouts_total', 'counter', 'Requests that ran out of time (counted when the serve machine reports a request timeout).', [`weir_request_timeouts_total ${timeouts}`]);
  metric('weir_instantiation_duration_seconds', 'histogram', 'Time to instantiate one instance (composition included).', instantiationSeconds.lines('weir_instantiation_duration_seconds'));
  metric('weir_http_request_duration_seconds', 'histogram', 'Time from a request\'s arrival to the end of its response.', requestSeconds.lines('weir_http_request_duration_seconds'));
  return `${out.join('\n')}\n`;
}

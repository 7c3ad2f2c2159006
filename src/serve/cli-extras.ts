// The TLS, metrics and logging parts of `weir serve` (issue 10 §4-5), kept
// apart from cli.ts: TLS files are checked before the machine is built,
// the machine gets the observer and per-instance stdio, the request
// listener is wrapped for metrics/access log, and the metrics server binds
// before the main one (so a bad --metrics-addr fails before serving).

import type { Server } from 'node:http';
import type { ServeConfig, ServeMachine } from './machine.ts';
import { JsonAccessLog, PrefixedGuestOutput } from './access-log.ts';
import { ServeMetrics, type MetricsSnapshot } from './metrics.ts';
import { ServeObservation, type RequestSink, type ServeObserver } from './observe.ts';
import { loadTlsFiles } from './tls.ts';

export interface ServeExtrasOptions {
  tlsCert?: string;
  tlsKey?: string;
  metricsAddr?: { host: string; port: number };
  logFormat?: 'text' | 'json';
}

/** In a worker of `--workers N`: its id for the access log, process-wide request ids; the main thread serves /metrics. */
export interface ExtrasInWorker { workerId: () => number; nextRequestId: () => number }

export class ServeExtras {
  readonly tls: { cert: Buffer; key: Buffer } | null;
  private readonly opts: ServeExtrasOptions;
  private readonly metrics: ServeMetrics | null;
  private readonly observation: ServeObservation | null;
  private readonly output = new PrefixedGuestOutput();
  private metricsServer: Server | null = null;
  private readonly events: ServeObserver;

  /** Rejects with TlsSetupError for unreadable or mismatched TLS files. */
  static async create(opts: ServeExtrasOptions, log: (line: string) => void, inWorker: ExtrasInWorker | null = null): Promise<ServeExtras> {
    const tls = opts.tlsCert !== undefined && opts.tlsKey !== undefined ? await loadTlsFiles(opts.tlsCert, opts.tlsKey) : null;
    return new ServeExtras(opts, tls, log, inWorker);
  }

  private readonly inWorker: ExtrasInWorker | null;

  private constructor(opts: ServeExtrasOptions, tls: { cert: Buffer; key: Buffer } | null, log: (line: string) => void, inWorker: ExtrasInWorker | null) {
    this.opts = opts;
    this.tls = tls;
    this.inWorker = inWorker;
    this.metrics = opts.metricsAddr ? new ServeMetrics() : null;
    const sinks: RequestSink[] = [];
    if (this.metrics) sinks.push(this.metrics);
    if (opts.logFormat === 'json') {
      // Lines written once per macrotask: one stderr write (a synchronous syscall on pipes and files) for many requests.
      sinks.push(new JsonAccessLog((line) => {
        this.pendingLog += `${line}\n`;
        if (!this.flushScheduled) { this.flushScheduled = true; setImmediate(this.flushLog); }
      }, inWorker?.workerId ?? 0));
    }
    const output = this.output;
    const events: ServeObserver = { ...(this.metrics?.instanceEvents ?? {}), closed: (i) => output.closed(i) };
    this.observation = sinks.length > 0 ? new ServeObservation(sinks, events, inWorker?.nextRequestId) : null;
    this.events = this.observation?.observer ?? events;
  }

  /** The ServeMachine settings: observer and per-instance prefixed stdout/stderr. */
  machineConfig(): Pick<ServeConfig, 'observer' | 'instanceWasi'> {
    const output = this.output;
    return {
      observer: this.events,
      instanceWasi: (id) => output.stdio(id),
    };
  }

  attach(machine: ServeMachine): void { this.metrics?.attach(machine); }

  listener<L extends (req: any, res: any) => void>(inner: L): L {
    return this.observation ? this.observation.listener(inner) as L : inner;
  }

  /** Binds the metrics server (if asked for); throws with the errno code when it cannot. */
  async listenMetrics(): Promise<void> {
    const a = this.opts.metricsAddr;
    if (!this.metrics || !a || this.inWorker) return;
    const metrics = this.metrics;
    this.metricsServer = await listenMetrics(() => metrics.render(), a.host, a.port);
  }

  /** A worker's counts, for the main thread's /metrics (null without --metrics-addr). */
  metricsSnapshot(): MetricsSnapshot | null { return this.metrics?.snapshot() ?? null; }

  /** The URL of the metrics endpoint, once bound. */
  metricsUrl(): string | null {
    const addr = this.metricsServer?.address();
    if (!addr || typeof addr !== 'object') return null;
    const host = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
    return `http://${host}:${addr.port}/metrics`;
  }

  private pendingLog = '';
  private flushScheduled = false;
  private readonly flushLog = (): void => {
    this.flushScheduled = false;
    const text = this.pendingLog;
    this.pendingLog = '';
    if (text) process.stderr.write(text);
  };

  close(): void {
    this.flushLog();
    this.metricsServer?.close();
    this.metricsServer?.closeAllConnections();
  }
}

/** Binds a server answering GET /metrics with `render()`'s text; rejects if it cannot listen. */
export async function listenMetrics(render: () => string | Promise<string>, host: string, port: number): Promise<Server> {
  const { createServer } = await import('node:http');
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('Not Found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('Method Not Allowed\n');
      return;
    }
    void Promise.resolve(render()).then((body) => {
      if (res.destroyed) return;
      res.writeHead(200, { 'content-type': ServeMetrics.contentType, 'content-length': String(Buffer.byteLength(body)) });
      res.end(req.method === 'HEAD' ? undefined : body);
    }, () => { res.writeHead(500); res.end(); });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  server.unref();
  return server;
}

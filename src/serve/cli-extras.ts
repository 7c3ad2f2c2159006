// The TLS, metrics and logging parts of `weir serve` (issue 10 §4-5), kept
// apart from cli.ts: TLS files are checked before the machine is built,
// the machine gets the observer and per-instance stdio, the request
// listener is wrapped for metrics/access log, and the metrics server binds
// before the main one (so a bad --metrics-addr fails before serving).

import type { Server } from 'node:http';
import type { ServeConfig, ServeMachine } from './machine.ts';
import { JsonAccessLog, PrefixedGuestOutput } from './access-log.ts';
import { ServeMetrics, listenMetrics } from './metrics.ts';
import { ServeObservation, type RequestSink, type ServeObserver } from './observe.ts';
import { loadTlsFiles } from './tls.ts';

export interface ServeExtrasOptions {
  tlsCert?: string;
  tlsKey?: string;
  metricsAddr?: { host: string; port: number };
  logFormat?: 'text' | 'json';
}

export class ServeExtras {
  readonly tls: { cert: Buffer; key: Buffer } | null;
  private readonly opts: ServeExtrasOptions;
  private readonly metrics: ServeMetrics | null;
  private readonly observation: ServeObservation | null;
  private readonly output = new PrefixedGuestOutput();
  private metricsServer: Server | null = null;
  private readonly events: ServeObserver;

  /** Throws TlsSetupError for unreadable or mismatched TLS files. */
  constructor(opts: ServeExtrasOptions, log: (line: string) => void) {
    this.opts = opts;
    this.tls = opts.tlsCert !== undefined && opts.tlsKey !== undefined ? loadTlsFiles(opts.tlsCert, opts.tlsKey) : null;
    this.metrics = opts.metricsAddr ? new ServeMetrics() : null;
    const sinks: RequestSink[] = [];
    if (this.metrics) sinks.push(this.metrics);
    if (opts.logFormat === 'json') sinks.push(new JsonAccessLog(log));
    const output = this.output;
    const events: ServeObserver = { ...(this.metrics?.instanceEvents ?? {}), closed: (i) => output.closed(i) };
    this.observation = sinks.length > 0 ? new ServeObservation(sinks, events) : null;
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
    if (!this.metrics || !a) return;
    this.metricsServer = await listenMetrics(this.metrics, a.host, a.port);
  }

  /** The URL of the metrics endpoint, once bound. */
  metricsUrl(): string | null {
    const addr = this.metricsServer?.address();
    if (!addr || typeof addr !== 'object') return null;
    const host = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
    return `http://${host}:${addr.port}/metrics`;
  }

  close(): void {
    this.metricsServer?.close();
    this.metricsServer?.closeAllConnections();
  }
}

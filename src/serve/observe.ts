// What `weir serve` (and an embedder) can watch: the machine reports
// instance events through a ServeObserver (ServeConfig.observer), and
// `observeListener` wraps a node (req, res) listener to see each request's
// start, the instance that took it and its end (status, duration). The
// instance is tied to its request through AsyncLocalStorage, so it is found
// however the front end reaches machine.handle (sync or after awaiting).
// Metrics (metrics.ts) and the access log (access-log.ts) are sinks fed here.

import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Instance and request events the ServeMachine reports (every member optional). */
export interface ServeObserver {
  /** An instance was created; `seconds` = its instantiation time. */
  instantiated?(instance: number, seconds: number): void;
  /** The instance trapped and was discarded. */
  trapped?(instance: number): void;
  /** The instance left the pool (idle, retired, trapped or shutdown). */
  closed?(instance: number): void;
  /** A request (the one in the current async context, if any) was handed to `instance`. */
  assigned?(instance: number): void;
  /** A request ran out of time (request timeouts, when configured). */
  timedOut?(): void;
}

/** One request as the sinks see it at its end. */
export interface RequestRecord {
  /** Server-wide request counter, from 1. */
  id: number;
  /** The instance that handled it (null: none was reached, e.g. refused while shutting down). */
  instance: number | null;
  method: string;
  path: string;
  /** 'HTTP/1.1', 'HTTP/2.0' or 'HTTP/1.0' (node's httpVersion). */
  protocol: string;
  /** The status sent, or null when the connection ended before a status left. */
  status: number | null;
  /** Wall time from the request's arrival to the response's end, in seconds. */
  seconds: number;
  /** Wall-clock time of arrival (ms since the epoch). */
  start: number;
}

export interface RequestSink {
  started?(): void;
  finished(r: RequestRecord): void;
}

interface Ctx { instance: number | null }

/** Joins the machine's events to requests; hand `observer` to the ServeMachine and wrap the listener. */
export class ServeObservation {
  private readonly als = new AsyncLocalStorage<Ctx>();
  private counter = 1;
  private readonly nextId: () => number;
  private readonly sinks: RequestSink[];
  readonly observer: ServeObserver;

  /** `nextId`: where request ids come from (worker threads share one process-wide counter). */
  constructor(sinks: RequestSink[], instanceEvents: ServeObserver = {}, nextId?: () => number) {
    this.sinks = sinks;
    this.nextId = nextId ?? (() => this.counter++);
    const als = this.als;
    this.observer = {
      ...instanceEvents,
      assigned: (instance) => {
        const ctx = als.getStore();
        if (ctx) ctx.instance = instance;
        instanceEvents.assigned?.(instance);
      },
    };
  }

  /** Wraps a node:http / node:http2-compat listener: every request reaches each sink once, when its response ended or was abandoned. */
  listener<Q extends IncomingMessage, S extends ServerResponse>(inner: (req: Q, res: S) => void): (req: Q, res: S) => void {
    return (req, res) => {
      const start = Date.now();
      const t0 = process.hrtime.bigint();
      const ctx: Ctx = { instance: null };
      const id = this.nextId();
      for (const s of this.sinks) s.started?.();
      let done = false;
      const end = () => {
        if (done) return;
        done = true;
        const record: RequestRecord = {
          id,
          instance: ctx.instance,
          method: req.method ?? '',
          path: req.url ?? '',
          protocol: `HTTP/${req.httpVersion}`,
          status: res.headersSent ? res.statusCode : null,
          seconds: Number(process.hrtime.bigint() - t0) / 1e9,
          start,
        };
        for (const s of this.sinks) {
          try { s.finished(record); } catch { /* a sink must not break serving */ }
        }
      };
      res.once('close', end);
      res.once('finish', end);
      this.als.run(ctx, () => inner(req, res));
    };
  }
}

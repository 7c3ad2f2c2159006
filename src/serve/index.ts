// The HTTP embedding API: serve a component (or a composition) through
// node:http (`createRequestListener`) or call it with web-standard
// Request/Response and no socket (`createHandler`). Both run on the same
// ServeMachine as `weir serve` (pool, limits, composition, trap isolation).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Component } from '../host/component.ts';
import { Fields, type FieldEntries } from '../wasi/core/http/fields.ts';
import type { ErrorCode } from '../wasi/core/http/errors.ts';
import type { Part } from './compose.ts';
import { ServeMachine, errText, type ServeConfig } from './machine.ts';
import { nodeListener } from './node.ts';
import { GuestResponseError } from './p3-adapter.ts';

export { ServeMachine, ServeSetupError, ShuttingDownError, SERVE_DEFAULTS, type ServeConfig } from './machine.ts';
export type { ServeRequest, ServeResponse, HandlerAdapter, HandleCall } from './adapter.ts';
// H9: observability for embedders (pass `observation.observer` as the `observer` option, wrap the listener).
export { ServeObservation, type ServeObserver, type RequestRecord, type RequestSink } from './observe.ts';
export { ServeMetrics } from './metrics.ts';
export { JsonAccessLog } from './access-log.ts';
// H8: request-level limits
export { LimitedHandler, ServeLimitError, SERVE_LIMIT_DEFAULTS, resolveLimits, httpServerOptions, type ServeLimits } from './limits.ts';
import { LimitedHandler, ServeLimitError, resolveLimits, type ServeLimits } from './limits.ts';

/** One component, or a composition in order (each import not provided by the host links to a later component's export). */
export type Serveable = Component | Component[] | Part[];

export interface ServeOptions extends ServeConfig {
  /**
   * H8: request-level limits as in `weir serve` (admission queue → 503, body size → 413, requestTimeoutMs → 504 and
   * the guest task cancelled); `{}` gives weir serve's defaults, absent means none. Header size and slow-client
   * timeouts belong to the embedder's server (`httpServerOptions(resolveLimits(l))` gives weir serve's).
   */
  limits?: ServeLimits;
}

function toParts(c: Serveable): Part[] {
  const list = Array.isArray(c) ? c : [c];
  return list.map((x, i) => ('component' in x && 'name' in x ? x as Part : { name: `component ${i}`, component: x as Component }));
}

export function createServeMachine(component: Serveable, options: ServeOptions = {}): ServeMachine {
  return new ServeMachine(toParts(component), options);
}

export interface RequestListener {
  (req: IncomingMessage, res: ServerResponse): void;
  readonly machine: ServeMachine;
  /** Wait for requests in flight, then close every instance. */
  close(): Promise<void>;
}

/** A node:http request listener serving the component: `http.createServer(createRequestListener(c))`. */
export function createRequestListener(component: Serveable | ServeMachine, options: ServeOptions = {}): RequestListener {
  const machine = component instanceof ServeMachine ? component : createServeMachine(component, options);
  const log = options.log ?? ((l: string) => { process.stderr.write(`${l}\n`); });
  const listener = nodeListener(options.limits ? new LimitedHandler(machine, resolveLimits(options.limits)) : machine, log) as RequestListener; // H8 hook
  Object.defineProperty(listener, 'machine', { value: machine });
  Object.defineProperty(listener, 'close', { value: () => machine.close() });
  return listener;
}

export interface Handler {
  /** Serve one web-standard Request (no socket); resolves with the guest's Response (500 when the guest failed). */
  handle(request: Request): Promise<Response>;
  readonly machine: ServeMachine;
  close(): Promise<void>;
}

const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** The wasi:http error-code a failed body or trailers carries (an HttpError's); anything else (a Trap, whose `code` is 'WEIR_TRAP') is internal-error. */
function errorCodeOf(e: unknown): ErrorCode {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'object' && c !== null ? c as ErrorCode : { tag: 'internal-error', val: undefined };
}

export function createHandler(component: Serveable | ServeMachine, options: ServeOptions = {}): Handler {
  const machine = component instanceof ServeMachine ? component : createServeMachine(component, options);
  const log = options.log ?? ((l: string) => { process.stderr.write(`${l}\n`); });
  const failure = (why: string) => {
    log(`weir: ${why}`);
    return new Response('Internal Server Error\n', { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8' } });
  };
  const front = options.limits ? new LimitedHandler(machine, resolveLimits(options.limits)) : machine; // H8 hook
  return {
    machine,
    close: () => machine.close(),
    async handle(request: Request): Promise<Response> {
      const url = new URL(request.url);
      const entries: FieldEntries = [];
      request.headers.forEach((v, k) => { entries.push([k, Buffer.from(v, 'latin1')]); });
      const src = request.body;
      let r;
      try {
        r = await front.handle({
          method: request.method,
          scheme: url.protocol === 'https:' ? 'HTTPS' : 'HTTP',
          authority: url.host || null,
          pathWithQuery: `${url.pathname}${url.search}`,
          headers: Fields.fromTrusted(entries),
          body: { stream: src as unknown as AsyncIterable<Uint8Array> | null, trailers: Promise.resolve(null) },
        }, request.signal);
      } catch (e) {
        if (e instanceof ServeLimitError) { // H8: 413 / 503 / 504
          const h = { 'content-type': 'text/plain; charset=utf-8', ...e.headers };
          delete (h as Record<string, string>).connection;
          return new Response(e.message, { status: e.status, headers: h });
        }
        return failure(`${request.method} ${url.pathname}: ${e instanceof GuestResponseError ? e.message : errText(e)}`);
      }
      const headers = new Headers();
      try {
        for (const [k, v] of r.headers.entries()) headers.append(k, Buffer.from(v).toString('latin1'));
      } catch (e) {
        r.transmitted({ tag: 'internal-error', val: undefined });
        return failure(`response headers refused: ${errText(e)}`);
      }
      const res = r;
      const stream = res.body.stream;
      const noBody = NULL_BODY.has(res.status) || request.method === 'HEAD';
      if (stream === null || noBody) {
        if (stream) stream[Symbol.asyncIterator]().return?.();
        res.body.trailers.then(() => res.transmitted(null), (e: unknown) => res.transmitted(errorCodeOf(e)));
        return new Response(null, { status: res.status, headers });
      }
      const it = stream[Symbol.asyncIterator]();
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const n = await it.next();
            if (!n.done) { controller.enqueue(n.value); return; }
            await res.body.trailers;
            controller.close();
            res.transmitted(null);
          } catch (e) {
            res.transmitted(errorCodeOf(e));
            controller.error(new Error('the response body failed'));
          }
        },
        cancel() {
          it.return?.().catch(() => {});
          res.transmitted({ tag: 'connection-terminated' });
        },
      }, { highWaterMark: 0 });
      try {
        return new Response(body, { status: res.status, headers });
      } catch (e) {
        body.cancel().catch(() => {});
        return failure(`response refused (status ${res.status}): ${errText(e)}`);
      }
    },
  };
}

// The HandlerAdapter for a WASI 0.3 `wasi:http/handler` export: the inbound
// request becomes an HttpRequest resource (immutable headers, body streamed
// from the connection), `handle` is called as an async export (several calls
// may run at once on one instance), and the guest's response is handed back
// with a `transmitted` hook that settles the future `response.new` returned.

import { matchName } from '../types/names.ts';
import { HttpError, type ErrorCode } from '../wasi/core/http/errors.ts';
import { BodySlot, HttpRequest, type HttpResponse } from '../wasi/p3/http.ts';
import type { Fields } from '../wasi/core/http/fields.ts';
import type { Body } from '../wasi/core/http/message.ts';
import type { HandleCall, HandleSink, HandlerAdapter, ServeRequest, ServeResponse, TrailersSink } from './adapter.ts';
import { AsyncLiftedFunc } from '../runtime/async-call.ts';
import { GuestFutureValue, type FutureValueSink } from '../runtime/host-streams.ts';

/** The signal meaning "no cancellation": calls made with it pass no options. */
export const NEVER_SIGNAL = new AbortController().signal;

export const P3_HANDLER = 'wasi:http/handler@0.3.0';

type Result<T, E> = { tag: 'ok'; val: T } | { tag: 'err'; val: E };
type HandleFn = (req: HttpRequest, opts?: { signal: AbortSignal }) => Promise<Result<HttpResponse, ErrorCode>>;

/** A guest answered with an error-code, or without a response: the caller answers 500. */
export class GuestResponseError extends Error {
  override name = 'GuestResponseError';
  readonly code: ErrorCode | null;
  constructor(message: string, code: ErrorCode | null) { super(message); this.code = code; }
}

export function findP3Handler(exports: Record<string, any>): HandleFn | null {
  const key = matchName(P3_HANDLER, exports);
  const handle = key === undefined ? undefined : exports[key]?.handle;
  return typeof handle === 'function' ? handle : null;
}

export function p3Adapter(exports: Record<string, any>, maxConcurrent: number): HandlerAdapter | null {
  const handle = findP3Handler(exports);
  if (!handle) return null;
  const inst = implInstanceOf(handle);
  const lifted = runtimeFuncOf(handle);
  const direct = lifted instanceof AsyncLiftedFunc ? lifted : null;
  return {
    kind: 'p3',
    maxConcurrent,
    // A guest that raised backpressure (backpressure.inc) gets no new request while it is up: it goes to another instance.
    backpressure: inst ? () => inst.backpressure > 0 : undefined,
    handle(request: ServeRequest, signal: AbortSignal): HandleCall {
      const req = toHttpRequest(request);
      // Only an async-lifted export takes the options argument (a sync-lifted `async func` does not).
      const call = signal.aborted || signal === NEVER_SIGNAL ? handle(req) : handle(req, { signal });
      const response = call.then((r) => {
        if (r.tag === 'err') throw new GuestResponseError(`guest returned error-code ${r.val.tag}`, r.val);
        return toServeResponse(r.val);
      });
      return { response, done: call.then(() => undefined) };
    },
    // The async-lifted export called without a Promise: the guest's result goes straight to the pool's sink.
    start: direct === null ? undefined : (request: ServeRequest, signal: AbortSignal, sink: HandleSink): void => {
      const req = toHttpRequest(request);
      direct.callWith([req], null, signal.aborted || signal === NEVER_SIGNAL ? undefined : signal, (v) => {
        const r = v as Result<HttpResponse, ErrorCode>;
        let res: ServeResponse;
        try {
          if (r.tag === 'err') { sink.settled(null, new GuestResponseError(`guest returned error-code ${r.val.tag}`, r.val), false); return; }
          res = toServeResponse(r.val);
        } catch (e) {
          sink.settled(null, e, false);
          return;
        }
        sink.settled(res, undefined, false);
      }, (e) => { sink.settled(null, e, true); });
    },
  };
}

/** The runtime function behind an exported function (the wrapper carries it under a private symbol). */
function runtimeFuncOf(f: Function): unknown {
  const sym = Object.getOwnPropertySymbols(f).find((x) => x.description === 'weir.func');
  return sym ? (f as unknown as Record<symbol, unknown>)[sym] : undefined;
}

/** The component instance behind an exported function. */
function implInstanceOf(f: Function): { backpressure: number } | null {
  const cf = runtimeFuncOf(f);
  const inst = (cf as { implInstance?: unknown } | undefined)?.implInstance;
  return inst && typeof (inst as { backpressure?: unknown }).backpressure === 'number' ? inst as { backpressure: number } : null;
}

/** A request without a body has no trailers. */
const NO_TRAILERS: Promise<{ tag: 'ok'; val: undefined }> = Promise.resolve({ tag: 'ok', val: undefined });

function toHttpRequest(r: ServeRequest): HttpRequest {
  const trailers = r.body.stream === null ? NO_TRAILERS : r.body.trailers.then(
    (t) => ({ tag: 'ok' as const, val: t ?? undefined }),
    (e: unknown) => ({ tag: 'err' as const, val: e instanceof HttpError ? e.code : { tag: 'connection-terminated' } as ErrorCode }),
  );
  const req = new HttpRequest(r.headers, new BodySlot(r.body.stream, trailers, null), null);
  req.method = r.method;
  req.scheme = r.scheme;
  req.authority = r.authority;
  req.pathWithQuery = r.pathWithQuery;
  return req;
}

function toServeResponse(res: HttpResponse): ServeResponse {
  return new P3Response(res);
}

type TrailersResult = Result<Fields | undefined, ErrorCode>;

/**
 * A guest's response for the front end. Its body is taken from the
 * response's BodySlot (as BodySlot.take does); `body.trailers` is made on
 * first use, and `trailersTo` reads the guest's trailers future with one
 * reaction instead.
 */
class P3Response implements ServeResponse, FutureValueSink {
  status: number;
  headers: Fields;
  body: Body;
  private readonly slot: BodySlot;
  constructor(res: HttpResponse) {
    const slot = res.body;
    this.slot = slot;
    this.status = res.status;
    this.headers = res.headers;
    slot.taken = true;
    const stream = slot.contents as AsyncIterable<Uint8Array> | null;
    slot.contents = null;
    this.body = new LazyTrailersBody(stream, slot.trailers as Promise<TrailersResult>);
  }
  readonly transmitted = (e: ErrorCode | null): void => { this.slot.complete(e); };
  private sink: TrailersSink | null = null;
  trailersTo(sink: TrailersSink): void {
    const raw = this.slot.trailers as PromiseLike<TrailersResult>;
    this.sink = sink;
    // A guest's trailers future (response.new is streamHandles): delivered to this object, no Promise.
    if (raw instanceof GuestFutureValue) raw.deliverTo(this);
    else raw.then((t) => this.futureValue(t), (e: unknown) => sink.trailersFailed(e));
  }
  /** (FutureValueSink) the guest's trailers result */
  futureValue(v: unknown): void {
    const t = v as TrailersResult;
    const sink = this.sink!;
    if (t.tag === 'err') sink.trailersFailed(new HttpError(t.val));
    else sink.trailersCame(t.val ?? null);
  }
}

/** A Body whose trailers Promise (HttpError on a failed body, as BodySlot.take gives) is made when first read. */
class LazyTrailersBody implements Body {
  stream: AsyncIterable<Uint8Array> | null;
  private readonly raw: Promise<TrailersResult>;
  private made: Promise<Fields | null> | null = null;
  constructor(stream: AsyncIterable<Uint8Array> | null, raw: Promise<TrailersResult>) {
    this.stream = stream;
    this.raw = raw;
  }
  get trailers(): Promise<Fields | null> {
    let p = this.made;
    if (p === null) {
      p = this.made = this.raw.then((t) => {
        if (t.tag === 'err') throw new HttpError(t.val);
        return t.val ?? null;
      });
      p.catch(() => {}); // a consumer that stops early never reads them
    }
    return p;
  }
}

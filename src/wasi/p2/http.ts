// wasi:http@0.2 types and outgoing-handler over the face-neutral HTTP core
// (core/http: Fields, the HttpClient, error codes). The incoming-handler serve
// adapter is in http-serve.ts.
//
// Resources hold plain JS state; bodies bridge to wasi:io streams through
// BodySource / BodySink (http-body.ts), and the futures' pollables are
// readiness pollables (io.ts), so `pollable.block` / `poll` suspend the guest
// (JSPI) instead of blocking the thread.

import { trap } from '../../errors.ts';
import { HostResource } from '../../runtime/resources.ts';
import type { HttpClient, FieldEntries, RawBody } from '../core/http/client.ts';
import { HttpError, type ErrorCode } from '../core/http/errors.ts';
import { InputStream, OutputStream, PromisePollable, type IoResources, type Pollable } from './io.ts';
import { BodySink, BodySource } from './http-body.ts';
import { FieldsBox, fieldsFromEntries, fieldsImports, type HeaderError } from './http-fields.ts';
import { err, ok, type Result } from '../wit-values.ts';

const OK_UNIT = { tag: 'ok' } as const;
const ERR_UNIT = { tag: 'err' } as const;

export type Method = { tag: 'get' | 'head' | 'post' | 'put' | 'delete' | 'connect' | 'options' | 'trace' | 'patch' } | { tag: 'other'; val: string };
export type Scheme = { tag: 'HTTP' | 'HTTPS' } | { tag: 'other'; val: string };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STANDARD_METHODS = new Set(['get', 'head', 'post', 'put', 'delete', 'connect', 'options', 'trace', 'patch']);

export function methodName(m: Method): string {
  return m.tag === 'other' ? m.val : m.tag.toUpperCase();
}
export function methodFrom(name: string): Method {
  const l = name.toLowerCase();
  // Method names are case-sensitive: only the exact upper-case spelling is a standard one.
  return STANDARD_METHODS.has(l) && name === name.toUpperCase() ? { tag: l } as Method : { tag: 'other', val: name };
}
function schemeName(s: Scheme | undefined): string | null {
  return s === undefined ? null : s.tag === 'other' ? s.val : s.tag;
}
export function schemeFrom(name: string | null): Scheme | undefined {
  if (name === null) return undefined;
  const u = name.toUpperCase();
  return u === 'HTTP' || u === 'HTTPS' ? { tag: u } : { tag: 'other', val: name };
}
const validMethod = (m: Method): boolean => m.tag !== 'other' || TOKEN.test(m.val);
const validScheme = (s: Scheme | undefined): boolean => s === undefined || s.tag !== 'other' || /^[A-Za-z][A-Za-z0-9+.-]*$/.test(s.val);
// RFC 3986 authority characters (userinfo is not allowed in HTTP).
const validAuthority = (a: string | undefined): boolean => a === undefined || /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::\d*)?$/.test(a);
const validPath = (p: string | undefined): boolean => p === undefined || /^[\x21-\x7e\x80-\xff]*$/.test(p);

// ---- bodies ------------------------------------------------------------

/** An outgoing body: the output-stream the guest writes, and the trailers given at finish. */
export class OutgoingBody {
  readonly sink = new BodySink();
  /** content-length of the message, when declared */
  readonly declared: bigint | null;
  private streamTaken = false;
  private settleTrailers!: (t: FieldEntries | null) => void;
  private failTrailers!: (e: HttpError) => void;
  readonly trailers: Promise<FieldEntries | null>;
  finished = false;
  constructor(declared: bigint | null) {
    this.declared = declared;
    this.trailers = new Promise((res, rej) => { this.settleTrailers = res; this.failTrailers = rej; });
    this.trailers.catch(() => {});
  }
  write(): OutputStream | null {
    if (this.streamTaken) return null;
    this.streamTaken = true;
    return new OutputStream(this.sink);
  }
  /** The body as the core consumes it. */
  raw(): RawBody { return { stream: this.sink.chunks(), trailers: this.trailers }; }
  finish(trailers: FieldsBox | undefined): Result<undefined, ErrorCode> | { tag: 'ok' } {
    this.finished = true;
    if (this.declared !== null && this.sink.written !== this.declared) {
      const e = new HttpError({ tag: 'HTTP-request-body-size', val: this.sink.written });
      this.fail(e);
      return err(e.code);
    }
    this.sink.end();
    this.settleTrailers(trailers ? trailers.fields.copyAll() : null);
    return OK_UNIT;
  }
  /** Dropped without finish (or the message failed): the body is incomplete. */
  fail(e: HttpError): void {
    this.sink.fail(e);
    this.failTrailers(e);
  }
}

/** An incoming body: one input-stream over the message's chunks, then its trailers. */
export class IncomingBody {
  readonly source: BodySource;
  private readonly trailers: Promise<FieldEntries | null>;
  private streamTaken = false;
  constructor(body: RawBody) {
    this.source = new BodySource(body.stream, body.trailers);
    this.trailers = body.trailers;
  }
  stream(): InputStream | null {
    if (this.streamTaken) return null;
    this.streamTaken = true;
    return new InputStream(this.source);
  }
  finish(): FutureTrailers {
    // Unread bytes are discarded so that the trailers behind them can arrive.
    void this.source.drain();
    return new FutureTrailers(this.trailers);
  }
}

/** A value that arrives later; `get` hands it out once. */
class Later<T> {
  state: { done: false } | { done: true; value: Result<T, ErrorCode> } = { done: false };
  taken = false;
  readonly pollable: Pollable;
  constructor(p: Promise<T>) {
    const settled = p.then(
      (v) => { this.state = { done: true, value: ok(v) }; },
      (e: unknown) => { this.state = { done: true, value: err(e instanceof HttpError ? e.code : { tag: 'internal-error' }) }; },
    );
    this.pollable = new PromisePollable(settled);
  }
  get(): undefined | Result<Result<T, ErrorCode>, undefined> {
    if (!this.state.done) return undefined;
    if (this.taken) return ERR_UNIT as { tag: 'err'; val: undefined };
    this.taken = true;
    return ok(this.state.value);
  }
}

export class FutureTrailers extends Later<FieldsBox | undefined> {
  constructor(trailers: Promise<FieldEntries | null>) {
    super(trailers.then((t) => (t ? fieldsFromEntries(t, true) : undefined)));
  }
}

export class FutureIncomingResponse extends Later<IncomingResponse> {}

// ---- messages ----------------------------------------------------------

export class RequestOptions {
  connectTimeout: bigint | undefined;
  firstByteTimeout: bigint | undefined;
  betweenBytesTimeout: bigint | undefined;
}

/** What outgoing-request and outgoing-response share: headers, and a body the guest may take once. */
class OutgoingMessage {
  readonly headers: FieldsBox;
  body: OutgoingBody | null = null;
  private bodyTaken = false;
  constructor(headers: FieldsBox) { this.headers = headers; }
  takeBody(): OutgoingBody | null {
    if (this.bodyTaken) return null;
    this.bodyTaken = true;
    this.body = new OutgoingBody(declaredLength(this.headers));
    return this.body;
  }
}

/** What incoming-request and incoming-response share: received headers, and a body the guest may consume once. */
class IncomingMessage {
  readonly headers: FieldsBox;
  protected readonly raw: RawBody;
  protected consumed = false;
  constructor(headers: FieldEntries, body: RawBody) {
    this.headers = fieldsFromEntries(headers, true);
    this.raw = body;
  }
  consume(): IncomingBody | null {
    if (this.consumed) return null;
    this.consumed = true;
    return new IncomingBody(this.raw);
  }
}

export class OutgoingRequest extends OutgoingMessage {
  method: Method = { tag: 'get' };
  pathWithQuery: string | undefined;
  scheme: Scheme | undefined;
  authority: string | undefined;
}

export class IncomingResponse extends IncomingMessage {
  readonly status: number;
  constructor(status: number, headers: FieldEntries, body: RawBody) {
    super(headers, body);
    this.status = status;
  }
  /** Dropped without consuming the body: let the connection go. */
  release(): void {
    if (!this.consumed && this.raw.stream) {
      const it = this.raw.stream[Symbol.asyncIterator]();
      void it.return?.();
    }
  }
}

export class IncomingRequest extends IncomingMessage {
  readonly method: Method;
  readonly pathWithQuery: string | undefined;
  readonly scheme: Scheme | undefined;
  readonly authority: string | undefined;
  constructor(init: { method: string; pathWithQuery: string | null; scheme: string | null; authority: string | null; headers: FieldEntries; body: RawBody }) {
    super(init.headers, init.body);
    this.method = methodFrom(init.method);
    this.pathWithQuery = init.pathWithQuery ?? undefined;
    this.scheme = schemeFrom(init.scheme);
    this.authority = init.authority ?? undefined;
  }
}

export class OutgoingResponse extends OutgoingMessage {
  status = 200;
}

/** Where the guest puts its response: `set` hands it to whoever created the outparam (serve). */
export class ResponseOutparam {
  private readonly deliver: (r: Result<OutgoingResponse, ErrorCode>) => void;
  used = false;
  constructor(deliver: (r: Result<OutgoingResponse, ErrorCode>) => void) { this.deliver = deliver; }
  set(r: Result<OutgoingResponse, ErrorCode>): void {
    if (this.used) trap('response-outparam-already-set');
    this.used = true;
    this.deliver(r);
  }
}

function declaredLength(h: FieldsBox): bigint | null {
  const v = h.fields.get('content-length');
  if (v.length !== 1) return null;
  const s = new TextDecoder().decode(v[0]).trim();
  return /^\d+$/.test(s) ? BigInt(s) : null;
}

/** A RawRequest for the client, built from a guest's outgoing-request. */
function rawRequest(r: OutgoingRequest, opts: RequestOptions | undefined): Parameters<HttpClient['sendWithCompletion']>[0] {
  return {
    method: methodName(r.method),
    scheme: schemeName(r.scheme),
    authority: r.authority ?? null,
    pathWithQuery: r.pathWithQuery ?? null,
    headers: r.headers.fields.copyAll(),
    body: r.body ? r.body.raw() : { stream: null, trailers: Promise.resolve(null) },
    options: {
      ...(opts?.connectTimeout !== undefined ? { connectTimeoutNs: opts.connectTimeout } : {}),
      ...(opts?.firstByteTimeout !== undefined ? { firstByteTimeoutNs: opts.firstByteTimeout } : {}),
      ...(opts?.betweenBytesTimeout !== undefined ? { betweenBytesTimeoutNs: opts.betweenBytesTimeout } : {}),
    },
  };
}

// ---- the interfaces ----------------------------------------------------

export interface HttpResources {
  fields: HostResource;
  incomingRequest: HostResource;
  outgoingRequest: HostResource;
  requestOptions: HostResource;
  responseOutparam: HostResource;
  incomingResponse: HostResource;
  incomingBody: HostResource;
  futureTrailers: HostResource;
  outgoingResponse: HostResource;
  outgoingBody: HostResource;
  futureIncomingResponse: HostResource;
}

export function createHttpResources(): HttpResources {
  return {
    fields: new HostResource('fields'),
    incomingRequest: new HostResource('incoming-request'),
    outgoingRequest: new HostResource('outgoing-request'),
    requestOptions: new HostResource('request-options'),
    // Dropped without `set`: serve answers 500 once the guest's handle returns (http-serve.ts).
    responseOutparam: new HostResource('response-outparam'),
    incomingResponse: new HostResource('incoming-response', { drop: (r: IncomingResponse) => r.release() }),
    incomingBody: new HostResource('incoming-body', { drop: (b: IncomingBody) => b.source.abandon() }),
    futureTrailers: new HostResource('future-trailers'),
    outgoingResponse: new HostResource('outgoing-response'),
    outgoingBody: new HostResource('outgoing-body', {
      drop: (b: OutgoingBody) => { if (!b.finished) b.fail(new HttpError({ tag: 'internal-error', val: 'outgoing-body dropped without finish' })); },
    }),
    futureIncomingResponse: new HostResource('future-incoming-response'),
  };
}

/** wasi:http/types and wasi:http/outgoing-handler at `version`; `client()` gives the host's HttpClient on first send. */
export function httpImports(io: IoResources, r: HttpResources, client: () => HttpClient, version: string): Record<string, Record<string, unknown>> {
  const types: Record<string, unknown> = {
    'input-stream': io.inputStream,
    'output-stream': io.outputStream,
    'io-error': io.error,
    error: io.error,
    pollable: io.pollable,
    ...fieldsImports(r.fields),
    'incoming-request': r.incomingRequest,
    'outgoing-request': r.outgoingRequest,
    'request-options': r.requestOptions,
    'response-outparam': r.responseOutparam,
    'incoming-response': r.incomingResponse,
    'incoming-body': r.incomingBody,
    'future-trailers': r.futureTrailers,
    'outgoing-response': r.outgoingResponse,
    'outgoing-body': r.outgoingBody,
    'future-incoming-response': r.futureIncomingResponse,

    'http-error-code': (e: { httpCode?: unknown }) => e.httpCode as ErrorCode | undefined,

    '[method]incoming-request.method': (q: IncomingRequest) => q.method,
    '[method]incoming-request.path-with-query': (q: IncomingRequest) => q.pathWithQuery,
    '[method]incoming-request.scheme': (q: IncomingRequest) => q.scheme,
    '[method]incoming-request.authority': (q: IncomingRequest) => q.authority,
    '[method]incoming-request.headers': (q: IncomingRequest) => q.headers,
    '[method]incoming-request.consume': (q: IncomingRequest) => { const b = q.consume(); return b ? ok(b) : ERR_UNIT; },

    '[constructor]outgoing-request': (h: FieldsBox) => new OutgoingRequest(h.seal()),
    '[method]outgoing-request.body': (q: OutgoingRequest) => { const b = q.takeBody(); return b ? ok(b) : ERR_UNIT; },
    '[method]outgoing-request.method': (q: OutgoingRequest) => q.method,
    '[method]outgoing-request.set-method': (q: OutgoingRequest, m: Method) => {
      if (!validMethod(m)) return ERR_UNIT;
      q.method = m;
      return OK_UNIT;
    },
    '[method]outgoing-request.path-with-query': (q: OutgoingRequest) => q.pathWithQuery,
    '[method]outgoing-request.set-path-with-query': (q: OutgoingRequest, p: string | undefined) => {
      if (!validPath(p)) return ERR_UNIT;
      q.pathWithQuery = p;
      return OK_UNIT;
    },
    '[method]outgoing-request.scheme': (q: OutgoingRequest) => q.scheme,
    '[method]outgoing-request.set-scheme': (q: OutgoingRequest, s: Scheme | undefined) => {
      if (!validScheme(s)) return ERR_UNIT;
      q.scheme = s;
      return OK_UNIT;
    },
    '[method]outgoing-request.authority': (q: OutgoingRequest) => q.authority,
    '[method]outgoing-request.set-authority': (q: OutgoingRequest, a: string | undefined) => {
      if (!validAuthority(a)) return ERR_UNIT;
      q.authority = a;
      return OK_UNIT;
    },
    '[method]outgoing-request.headers': (q: OutgoingRequest) => q.headers,

    '[constructor]request-options': () => new RequestOptions(),
    '[method]request-options.connect-timeout': (o: RequestOptions) => o.connectTimeout,
    '[method]request-options.set-connect-timeout': (o: RequestOptions, d: bigint | undefined) => { o.connectTimeout = d; return OK_UNIT; },
    '[method]request-options.first-byte-timeout': (o: RequestOptions) => o.firstByteTimeout,
    '[method]request-options.set-first-byte-timeout': (o: RequestOptions, d: bigint | undefined) => { o.firstByteTimeout = d; return OK_UNIT; },
    '[method]request-options.between-bytes-timeout': (o: RequestOptions) => o.betweenBytesTimeout,
    '[method]request-options.set-between-bytes-timeout': (o: RequestOptions, d: bigint | undefined) => { o.betweenBytesTimeout = d; return OK_UNIT; },

    '[method]response-outparam.send-informational': () => err({ tag: 'HTTP-protocol-error' } satisfies ErrorCode),
    '[static]response-outparam.set': (o: ResponseOutparam, res: Result<OutgoingResponse, ErrorCode>) => o.set(res),

    '[method]incoming-response.status': (s: IncomingResponse) => s.status,
    '[method]incoming-response.headers': (s: IncomingResponse) => s.headers,
    '[method]incoming-response.consume': (s: IncomingResponse) => { const b = s.consume(); return b ? ok(b) : ERR_UNIT; },

    '[method]incoming-body.stream': (b: IncomingBody) => { const s = b.stream(); return s ? ok(s) : ERR_UNIT; },
    '[static]incoming-body.finish': (b: IncomingBody) => b.finish(),

    '[method]future-trailers.subscribe': (f: FutureTrailers) => f.pollable,
    '[method]future-trailers.get': (f: FutureTrailers) => f.get(),

    '[constructor]outgoing-response': (h: FieldsBox) => new OutgoingResponse(h.seal()),
    '[method]outgoing-response.status-code': (s: OutgoingResponse) => s.status,
    '[method]outgoing-response.set-status-code': (s: OutgoingResponse, code: number) => {
      if (code < 100 || code > 599) return ERR_UNIT;
      s.status = code;
      return OK_UNIT;
    },
    '[method]outgoing-response.headers': (s: OutgoingResponse) => s.headers,
    '[method]outgoing-response.body': (s: OutgoingResponse) => { const b = s.takeBody(); return b ? ok(b) : ERR_UNIT; },

    '[method]outgoing-body.write': (b: OutgoingBody) => { const s = b.write(); return s ? ok(s) : ERR_UNIT; },
    '[static]outgoing-body.finish': (b: OutgoingBody, trailers: FieldsBox | undefined) => b.finish(trailers),

    '[method]future-incoming-response.subscribe': (f: FutureIncomingResponse) => f.pollable,
    '[method]future-incoming-response.get': (f: FutureIncomingResponse) => f.get(),
  };

  const outgoingHandler = {
    'outgoing-request': r.outgoingRequest,
    'request-options': r.requestOptions,
    'future-incoming-response': r.futureIncomingResponse,
    handle: (q: OutgoingRequest, opts: RequestOptions | undefined): Result<FutureIncomingResponse, ErrorCode> => {
      const { response } = client().sendWithCompletion(rawRequest(q, opts));
      return ok(new FutureIncomingResponse(response.then((res) => new IncomingResponse(res.status, res.headers, res.body))));
    },
  };

  return {
    [`wasi:http/types@${version}`]: types,
    [`wasi:http/outgoing-handler@${version}`]: outgoingHandler,
  };
}

export type { HeaderError };

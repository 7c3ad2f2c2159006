// wasi:http@0.3 (types, client) over the face-neutral core (core/http/).
//
// Resources are plain JS objects (HostResource reps): HttpFields is the core
// Fields, HttpRequest / HttpResponse hold the message parts and a BodySlot
// (contents + trailers, taken once by consume-body). Bodies cross as they are:
// a guest's stream<u8> arrives as a GuestByteStream handle (request.new and
// response.new are marked `streamHandles`: no web ReadableStream per message)
// and is handed on unchanged (so a body a guest forwards to another guest is
// passed on without copies, and the serve front end reads it straight from
// guest memory); a host body is an AsyncIterable pulled only when the reader reads.
//
// Completion futures: `request.new` / `response.new` return a future the
// consumer settles: consume-body's `res` future (a guest consumer), the HTTP
// client's transmission result (client.send), or the serve machinery once
// the last byte and the trailers were flushed (or the client went away).

import { HostResource } from '../../runtime/resources.ts';
import { streamHandles } from '../../runtime/call.ts';
import { GuestByteStream, HostFuture } from '../../runtime/host-streams.ts';
import { Fields, HeaderError, isValidFieldName } from '../core/http/fields.ts';
import { HttpError, errorCodeFrom, type ErrorCode } from '../core/http/errors.ts';
import type { Body, RequestOptionsData, ResponseData } from '../core/http/message.ts';
import type { HttpClient } from '../core/http/client.ts';
import { err, ok, type Result } from '../wit-values.ts';

const OK_UNIT: { tag: 'ok'; val: undefined } = { tag: 'ok', val: undefined };
const ERR_UNIT: { tag: 'err'; val: undefined } = { tag: 'err', val: undefined };

type Method = { tag: string; val?: string };
type Scheme = { tag: 'HTTP' | 'HTTPS' | 'other'; val?: string };
type TrailersResult = Result<Fields | undefined, ErrorCode>;
type Contents = GuestByteStream | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | null;

const METHOD_TAGS: Record<string, string> = {
  GET: 'get', HEAD: 'head', POST: 'post', PUT: 'put', DELETE: 'delete',
  CONNECT: 'connect', OPTIONS: 'options', TRACE: 'trace', PATCH: 'patch',
};
const METHOD_NAMES: Record<string, string> = Object.fromEntries(Object.entries(METHOD_TAGS).map(([k, v]) => [v, k]));
const methodCache = new Map<string, Method>();

export function methodToWit(m: string): Method {
  let v = methodCache.get(m);
  if (!v) {
    const tag = METHOD_TAGS[m];
    v = tag ? { tag } : { tag: 'other', val: m };
    if (methodCache.size < 64) methodCache.set(m, v);
  }
  return v;
}

function methodFromWit(m: Method): string | null {
  if (m.tag !== 'other') return METHOD_NAMES[m.tag] ?? null;
  return isValidFieldName(m.val ?? '') ? m.val! : null;
}

const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+\-.]*$/;
/** Scheme text as Weir keeps it: 'HTTP', 'HTTPS' or the other name. */
function schemeFromWit(s: Scheme): string | null {
  if (s.tag === 'HTTP' || s.tag === 'HTTPS') return s.tag;
  const v = s.val ?? '';
  if (!SCHEME_RE.test(v)) return null;
  const l = v.toLowerCase();
  return l === 'http' ? 'HTTP' : l === 'https' ? 'HTTPS' : v;
}
function schemeToWit(s: string): Scheme {
  return s === 'HTTP' || s === 'HTTPS' ? { tag: s } : { tag: 'other', val: s };
}

/** Characters never allowed in a request target: controls, space, DEL, and the ones RFC 3986 excludes outright. */
const BAD_PATH = /[\x00-\x20\x7f<>`#]/;
const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/;
const USERINFO = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*$/;
const IP_LITERAL = /^\[[0-9A-Fa-f:.vV\-._~!$&'()*+,;=]+\]$/;

export function validAuthority(a: string): boolean {
  let rest = a;
  const at = a.lastIndexOf('@');
  if (at >= 0) {
    if (!USERINFO.test(a.slice(0, at))) return false;
    rest = a.slice(at + 1);
  }
  let host = rest;
  const close = rest.lastIndexOf(']');
  const colon = rest.lastIndexOf(':');
  if (colon > close) {
    if (!/^[0-9]*$/.test(rest.slice(colon + 1))) return false;
    host = rest.slice(0, colon);
  }
  return host.length > 0 && (REG_NAME.test(host) || IP_LITERAL.test(host));
}

export class RequestOptions {
  connectTimeoutNs: bigint | undefined = undefined;
  firstByteTimeoutNs: bigint | undefined = undefined;
  betweenBytesTimeoutNs: bigint | undefined = undefined;
  immutable = false;
  clone(): RequestOptions {
    const o = new RequestOptions();
    o.connectTimeoutNs = this.connectTimeoutNs;
    o.firstByteTimeoutNs = this.firstByteTimeoutNs;
    o.betweenBytesTimeoutNs = this.betweenBytesTimeoutNs;
    return o;
  }
  data(): RequestOptionsData {
    const d: RequestOptionsData = {};
    if (this.connectTimeoutNs !== undefined) d.connectTimeoutNs = this.connectTimeoutNs;
    if (this.firstByteTimeoutNs !== undefined) d.firstByteTimeoutNs = this.firstByteTimeoutNs;
    if (this.betweenBytesTimeoutNs !== undefined) d.betweenBytesTimeoutNs = this.betweenBytesTimeoutNs;
    return d;
  }
}

/**
 * The body of a message: contents and trailers, taken once. `complete`
 * settles the producer's completion future (null = ok).
 */
export class BodySlot {
  contents: Contents;
  trailers: Promise<TrailersResult>;
  taken = false;
  private settle: ((r: ErrorCode | null) => void) | null;
  constructor(contents: Contents, trailers: Promise<TrailersResult>, settle: ((r: ErrorCode | null) => void) | null) {
    this.contents = contents;
    this.trailers = trailers;
    this.settle = settle;
  }
  complete(r: ErrorCode | null): void {
    const s = this.settle;
    if (s) { this.settle = null; s(r); }
  }
  /** The body for a host consumer (trailers reject with HttpError). */
  take(): Body {
    this.taken = true;
    const stream = this.contents as AsyncIterable<Uint8Array> | null;
    this.contents = null;
    const trailers = this.trailers.then((t) => {
      if (t.tag === 'err') throw new HttpError(t.val);
      return t.val ?? null;
    });
    trailers.catch(() => {}); // a consumer that stops early never reads them
    return { stream, trailers };
  }
  /** Release a body nobody will read (the resource was dropped). */
  discard(): void {
    const c = this.contents;
    this.contents = null;
    if (c === null || this.taken) return;
    this.taken = true;
    if (c instanceof GuestByteStream) c.cancel();
    else if (c instanceof ReadableStream) c.cancel().catch(() => {});
    else {
      const it = (c as any)[Symbol.asyncIterator]?.();
      it?.return?.();
    }
    this.complete({ tag: 'connection-terminated' } as ErrorCode);
  }
}

export class HttpRequest {
  method = 'GET';
  scheme: string | null = null;
  authority: string | null = null;
  pathWithQuery: string | null = null;
  headers: Fields;
  options: RequestOptions | null;
  body: BodySlot;
  constructor(headers: Fields, body: BodySlot, options: RequestOptions | null) {
    this.headers = headers;
    this.body = body;
    this.options = options;
  }
}

export class HttpResponse {
  status = 200;
  headers: Fields;
  body: BodySlot;
  constructor(headers: Fields, body: BodySlot) {
    this.headers = headers;
    this.body = body;
  }
}

/** A host-made response (from the HTTP client) for a guest. */
export function responseFromData(r: ResponseData): HttpResponse {
  r.headers.immutable = true;
  const trailers: Promise<TrailersResult> = r.body.trailers.then(
    (t) => { if (t) t.immutable = true; return ok(t ?? undefined); },
    (e: unknown) => err(e instanceof HttpError ? e.code : errorCodeFrom(e)),
  );
  const res = new HttpResponse(r.headers, new BodySlot(r.body.stream, trailers, null));
  res.status = r.status;
  return res;
}

const headerError = (e: unknown): { tag: 'err'; val: { tag: string; val?: string } } => {
  if (e instanceof HeaderError) return err(e.tag === 'other' ? { tag: 'other', val: undefined } : { tag: e.tag });
  return err({ tag: 'other', val: undefined });
};

function fieldsResult<T>(f: () => T): Result<T, { tag: string; val?: string }> {
  try { return ok(f()); } catch (e) { return headerError(e); }
}

/** The future request.new/response.new return: a HostFuture (no Promise) that `settle` resolves. */
function completionFuture(): [HostFuture, (r: ErrorCode | null) => void] {
  const f = new HostFuture();
  return [f, (code) => f.resolve(code === null ? OK_UNIT : err(code))];
}

/** The consumer's `res` future settles the producer's completion future. */
function linkConsumerResult(body: BodySlot, res: unknown): void {
  Promise.resolve(res).then((r) => {
    const v = r as Result<undefined, ErrorCode> | undefined;
    body.complete(v && v.tag === 'err' ? v.val : null);
  }, () => body.complete({ tag: 'internal-error', val: undefined }));
}

const EMPTY: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true, value: undefined }) }) };

function consume(body: BodySlot): [Contents, Promise<TrailersResult>] {
  body.taken = true;
  const c: Contents = body.contents ?? EMPTY;
  body.contents = null;
  return [c, body.trailers];
}

export interface HttpImportsOptions {
  /** The outgoing client (created on first send). */
  client: () => HttpClient;
  version: string;
}

/** The p3 http imports. Share one object between the instances of a composition so resource types agree. */
export function httpImports(opts: HttpImportsOptions): Record<string, Record<string, unknown>> {
  const { version } = opts;
  const fields = new HostResource('fields');
  const request = new HostResource('request', { drop: (r: HttpRequest) => r.body.discard() });
  const response = new HostResource('response', { drop: (r: HttpResponse) => r.body.discard() });
  const requestOptions = new HostResource('request-options');
  const optionsSetter = (k: 'connectTimeoutNs' | 'firstByteTimeoutNs' | 'betweenBytesTimeoutNs') =>
    (o: RequestOptions, d: bigint | undefined) => {
      if (o.immutable) return err({ tag: 'immutable' });
      o[k] = d;
      return OK_UNIT;
    };

  const types: Record<string, unknown> = {
    fields, request, response, 'request-options': requestOptions,

    '[constructor]fields': () => new Fields(),
    '[static]fields.from-list': (entries: [string, Uint8Array][]) => fieldsResult(() => Fields.fromList(entries)),
    '[method]fields.get': (f: Fields, name: string) => f.get(name),
    '[method]fields.has': (f: Fields, name: string) => f.has(name),
    '[method]fields.set': (f: Fields, name: string, values: Uint8Array[]) => fieldsResult(() => f.set(name, values)),
    '[method]fields.delete': (f: Fields, name: string) => fieldsResult(() => f.delete(name)),
    '[method]fields.get-and-delete': (f: Fields, name: string) => fieldsResult(() => f.getAndDelete(name)),
    '[method]fields.append': (f: Fields, name: string, value: Uint8Array) => fieldsResult(() => f.append(name, value)),
    '[method]fields.copy-all': (f: Fields) => f.copyAll(),
    '[method]fields.clone': (f: Fields) => f.clone(),

    // Bodies arrive as GuestByteStream handles (no web stream per message; see streamHandles).
    '[static]request.new': streamHandles((headers: Fields, contents: GuestByteStream | undefined,
      trailers: Promise<TrailersResult>, options: RequestOptions | undefined) => {
      headers.immutable = true;
      if (options) options.immutable = true;
      const [future, settle] = completionFuture();
      const req = new HttpRequest(headers, new BodySlot(contents ?? null, trailers, settle), options ?? null);
      return [req, future];
    }),
    '[method]request.get-method': (r: HttpRequest) => methodToWit(r.method),
    '[method]request.set-method': (r: HttpRequest, m: Method) => {
      const v = methodFromWit(m);
      if (v === null) return ERR_UNIT;
      r.method = v;
      return OK_UNIT;
    },
    '[method]request.get-path-with-query': (r: HttpRequest) => r.pathWithQuery ?? undefined,
    '[method]request.set-path-with-query': (r: HttpRequest, p: string | undefined) => {
      if (p === undefined) { r.pathWithQuery = null; return OK_UNIT; }
      if (BAD_PATH.test(p)) return ERR_UNIT;
      r.pathWithQuery = p === '' ? '/' : p;
      return OK_UNIT;
    },
    '[method]request.get-scheme': (r: HttpRequest) => (r.scheme === null ? undefined : schemeToWit(r.scheme)),
    '[method]request.set-scheme': (r: HttpRequest, s: Scheme | undefined) => {
      if (s === undefined) { r.scheme = null; return OK_UNIT; }
      const v = schemeFromWit(s);
      if (v === null) return ERR_UNIT;
      r.scheme = v;
      return OK_UNIT;
    },
    '[method]request.get-authority': (r: HttpRequest) => r.authority ?? undefined,
    '[method]request.set-authority': (r: HttpRequest, a: string | undefined) => {
      if (a === undefined) { r.authority = null; return OK_UNIT; }
      if (!validAuthority(a)) return ERR_UNIT;
      r.authority = a;
      return OK_UNIT;
    },
    '[method]request.get-options': (r: HttpRequest) => {
      if (!r.options) return undefined;
      const o = r.options.clone();
      o.immutable = true;
      return o;
    },
    '[method]request.get-headers': (r: HttpRequest) => r.headers,
    '[static]request.consume-body': (r: HttpRequest, res: unknown) => {
      if (r.body.taken) {
        // A second consume: an empty, failed body (the first consumer has it).
        return [[], Promise.resolve(err({ tag: 'internal-error', val: 'body already consumed' }))];
      }
      linkConsumerResult(r.body, res);
      return consume(r.body);
    },

    '[constructor]request-options': () => new RequestOptions(),
    '[method]request-options.get-connect-timeout': (o: RequestOptions) => o.connectTimeoutNs,
    '[method]request-options.set-connect-timeout': optionsSetter('connectTimeoutNs'),
    '[method]request-options.get-first-byte-timeout': (o: RequestOptions) => o.firstByteTimeoutNs,
    '[method]request-options.set-first-byte-timeout': optionsSetter('firstByteTimeoutNs'),
    '[method]request-options.get-between-bytes-timeout': (o: RequestOptions) => o.betweenBytesTimeoutNs,
    '[method]request-options.set-between-bytes-timeout': optionsSetter('betweenBytesTimeoutNs'),
    '[method]request-options.clone': (o: RequestOptions) => o.clone(),

    '[static]response.new': streamHandles((headers: Fields, contents: GuestByteStream | undefined, trailers: Promise<TrailersResult>) => {
      headers.immutable = true;
      const [future, settle] = completionFuture();
      return [new HttpResponse(headers, new BodySlot(contents ?? null, trailers, settle)), future];
    }),
    '[method]response.get-status-code': (r: HttpResponse) => r.status,
    '[method]response.set-status-code': (r: HttpResponse, s: number) => {
      if (s < 100 || s > 599) return ERR_UNIT;
      r.status = s;
      return OK_UNIT;
    },
    '[method]response.get-headers': (r: HttpResponse) => r.headers,
    '[static]response.consume-body': (r: HttpResponse, res: unknown) => {
      if (r.body.taken) return [[], Promise.resolve(err({ tag: 'internal-error', val: 'body already consumed' }))];
      linkConsumerResult(r.body, res);
      return consume(r.body);
    },
  };

  const send = async function (this: { signal?: AbortSignal } | undefined, r: HttpRequest): Promise<Result<HttpResponse, ErrorCode>> {
    let client: HttpClient;
    try { client = opts.client(); } catch (e) { return err(errorCodeFrom(e)); }
    const body = r.body.take();
    const { response, transmitted } = client.sendMessage({
      method: r.method, scheme: r.scheme, authority: r.authority, pathWithQuery: r.pathWithQuery,
      headers: r.headers, body, options: r.options ? r.options.data() : {},
    }, this?.signal ? { signal: this.signal } : {});
    transmitted.then(() => r.body.complete(null), (e: unknown) => r.body.complete(e instanceof HttpError ? e.code : errorCodeFrom(e)));
    try {
      return ok(responseFromData(await response));
    } catch (e) {
      return err(e instanceof HttpError ? e.code : errorCodeFrom(e));
    }
  };

  return {
    [`wasi:http/types@${version}`]: types,
    [`wasi:http/client@${version}`]: { send },
  };
}

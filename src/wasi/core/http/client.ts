// The outgoing HTTP client behind wasi:http/client@0.3 `send` and
// wasi:http/outgoing-handler@0.2 `handle`. One HttpClient (one connection pool
// per scheme) per WasiHost, shared by both faces and by every instance of a
// serve pool, so keep-alive connections are reused across requests and
// instances.
//
// Transport: node:http / node:https with keep-alive Agents, loaded on the
// first send (a `weir run` of a component that never sends loads neither).
// Node's HTTP/1.1 client is used rather than undici because undici cannot send
// request trailers (its HTTP/1 writer always ends a chunked body with an empty
// trailer section and refuses a user `transfer-encoding`), which wasi:http
// requests carry.
//
// Interface (face-neutral, see message.ts for the shapes):
//   client.sendMessage(req: RequestData, { signal }) -> { response: Promise<ResponseData>, transmitted }
//     the 0.3 face's entry (headers/trailers as Fields); the same as:
//   client.sendWithCompletion(req: RawRequest, { signal }) -> { response, transmitted }
//     (headers/trailers as [name, bytes] entries, used by the 0.2 face)
//     response:    Promise<ResponseData>, rejects with HttpError.
//     transmitted: Promise<void>: resolves once the whole request (head, body,
//                  trailers) was handed to the socket; rejects with the
//                  HttpError of a failed send, also when nothing was sent.
//                  (The p3 `request.new` future and p2's body finish report it.)
//   client.send(req, { signal }) -> Promise<ResponseData>
// Request body: `req.body.stream` is pulled one chunk at a time, the next only
// after the socket accepted the previous one (backpressure); then
// `req.body.trailers` is awaited: a rejection aborts the request and `send`
// fails with that error; trailers are sent in a chunked trailer section.
// Response body: `body.stream` is pulled from the socket on demand. If the
// connection fails mid-body the stream ends and `body.trailers` rejects with
// the HttpError (HTTP-response-incomplete when the connection was lost). A
// consumer that stops early calls the iterator's `return()` (also before the
// first read): a small or fully received rest is drained so the connection is
// reused, a larger one closes it. `body.trailers` settles only after the
// stream has been read to its end (or abandoned).
//
// URI rules: path-with-query none or "" is sent as "/"; anything else is sent
// byte-exact (Node refuses only control characters and spaces →
// HTTP-request-URI-invalid). A missing scheme means HTTPS (as in wasmtime); a
// scheme other than HTTP/HTTPS gives HTTP-protocol-error. `Host` is the
// request's authority. Header order, case and repeated names are kept.
// A `content-length` that disagrees with the body gives HTTP-request-body-size.
// Timeouts: connect (TCP + TLS handshake of a new connection) →
// connection-timeout; first-byte (from the end of transmission to the response
// head) and between-bytes (while the consumer waits for body bytes) →
// connection-read-timeout. Each defaults to 600 s.

import type * as NodeHttp from 'node:http';
import type * as NodeHttps from 'node:https';
import type { Socket } from 'node:net';
import { HttpError, errorCodeFrom, type ErrorCode } from './errors.ts';
import { Fields, type FieldEntries } from './fields.ts';
import type { RequestData, RequestOptionsData, ResponseData } from './message.ts';
import { OutboundPolicy } from './policy.ts';

export type { FieldEntries, RequestOptionsData };

export interface RawBody {
  stream: AsyncIterable<Uint8Array> | null;
  trailers: Promise<FieldEntries | null>;
}

/** A request with headers as entries (sendMessage takes the Fields form of message.ts). */
export interface RawRequest {
  method: string;
  /** 'HTTP', 'HTTPS' (any case) or another scheme name; null → HTTPS. */
  scheme: string | null;
  authority: string | null;
  pathWithQuery: string | null;
  headers: FieldEntries;
  body: RawBody;
  options?: RequestOptionsData;
}

export interface RawResponse {
  status: number;
  headers: FieldEntries;
  body: RawBody;
}

/** A request in the contract's message shape (message.ts: headers and trailers as Fields) as a RawRequest. */
export function rawRequestFrom(req: RequestData): RawRequest {
  return {
    method: req.method, scheme: req.scheme, authority: req.authority, pathWithQuery: req.pathWithQuery,
    headers: req.headers.copyAll(),
    body: { stream: req.body.stream, trailers: req.body.trailers.then((t) => (t ? t.copyAll() : null)) },
    options: req.options,
  };
}

/** A RawResponse in the message shape: immutable Fields, forbidden (hop-by-hop) names left out. */
export function responseDataFrom(res: RawResponse): ResponseData {
  return {
    status: res.status,
    headers: Fields.fromTrusted(res.headers),
    body: {
      stream: res.body.stream,
      trailers: res.body.trailers.then((t) => (t ? Fields.fromTrusted(t) : null)),
    },
  };
}

export interface SendOptions { signal?: AbortSignal }

export interface SendResult<R> {
  response: Promise<R>;
  transmitted: Promise<void>;
}

export interface HttpClientOptions {
  /** Destinations allowed; default: deny everything. */
  policy?: OutboundPolicy;
  /** Called with a one-line warning when a request is denied or fails (the CLI prints it under --verbose). */
  log?: (message: string) => void;
  /** Scheme used when a request has none. Default 'https'. */
  defaultScheme?: 'http' | 'https';
  /** Connections per origin (default 256). */
  maxSocketsPerOrigin?: number;
  /** Extra trust anchors (PEM) added to Node's trust store; for embedders and tests. */
  ca?: string | string[];
  /** Name resolution (node:dns `lookup` signature); default: the OS resolver. */
  lookup?: NodeHttp.RequestOptions['lookup'];
}

const DEFAULT_TIMEOUT_MS = 600_000;
/** How long an idle pooled connection is kept. */
const IDLE_MS = 30_000;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

interface Transport {
  http: typeof NodeHttp;
  https: typeof NodeHttps;
  httpAgent: NodeHttp.Agent;
  httpsAgent: NodeHttps.Agent;
}

export class HttpClient {
  readonly policy: OutboundPolicy;
  private readonly opts: HttpClientOptions;
  private transport: Promise<Transport> | null = null;
  private closed = false;
  /** Sockets that already finished their connect phase (to time only new connections). */
  private readonly connected = new WeakSet<Socket>();
  /** Connections opened so far (for diagnostics and tests). */
  connectionsOpened = 0;

  constructor(opts: HttpClientOptions = {}) {
    this.opts = opts;
    this.policy = opts.policy ?? OutboundPolicy.denyAll();
  }

  private load(): Promise<Transport> {
    this.transport ??= (async () => {
      const [http, https] = await Promise.all([import('node:http'), import('node:https')]);
      // An idle pooled connection is closed after IDLE_MS (the agent destroys free sockets on their timeout).
      const common = { keepAlive: true, keepAliveMsecs: 1000, scheduling: 'lifo' as const, maxSockets: this.opts.maxSocketsPerOrigin ?? 256, maxFreeSockets: 256, timeout: IDLE_MS };
      const httpAgent = new http.Agent(common);
      const ca = this.opts.ca;
      // Extra anchors replace Node's store for this agent, so start from the store Node would use
      // (bundled roots, NODE_EXTRA_CA_CERTS and, where enabled, the system's).
      const tls = ca ? await import('node:tls') : null;
      const store = tls ? (tls.getCACertificates?.('default') ?? tls.rootCertificates) : [];
      const httpsAgent = new https.Agent({ ...common, ...(ca ? { ca: [...store, ...(Array.isArray(ca) ? ca : [ca])] } : {}) });
      return { http, https, httpAgent, httpsAgent };
    })();
    return this.transport;
  }

  /** Close every pooled connection (requests still in flight fail) and refuse further sends. */
  close(): void {
    this.closed = true;
    if (this.transport) void this.transport.then((t) => { t.httpAgent.destroy(); t.httpsAgent.destroy(); });
  }

  send(req: RawRequest, opts: SendOptions = {}): Promise<RawResponse> {
    return this.sendWithCompletion(req, opts).response;
  }

  /**
   * The contract face (message.ts shapes): `{ response, transmitted }` as for
   * sendWithCompletion; the response's headers and trailers are immutable
   * Fields without the hop-by-hop names.
   */
  sendMessage(req: RequestData, opts: SendOptions = {}): SendResult<ResponseData> {
    const { response, transmitted } = this.sendWithCompletion(rawRequestFrom(req), opts);
    const r = response.then(responseDataFrom);
    r.catch(() => {});
    return { response: r, transmitted };
  }

  sendWithCompletion(req: RawRequest, opts: SendOptions = {}): SendResult<RawResponse> {
    let markTransmitted!: () => void;
    let failTransmitted!: (e: HttpError) => void;
    const transmitted = new Promise<void>((res, rej) => { markTransmitted = res; failTransmitted = rej; });
    transmitted.catch(() => {});
    const response = this.run(req, opts.signal, markTransmitted).catch((e: unknown) => {
      const err = e instanceof HttpError ? e : new HttpError(errorCodeFrom(e));
      failTransmitted(err);
      throw err;
    });
    // A transmission that completed stays ok even if the response later fails.
    return { response, transmitted };
  }

  private async run(req: RawRequest, signal: AbortSignal | undefined, transmitted: () => void): Promise<RawResponse> {
    if (this.closed) throw new HttpError({ tag: 'internal-error', val: 'HTTP client closed' });
    const target = this.target(req);
    if (!this.policy.allows(target.scheme, target.hostname, target.port)) {
      this.opts.log?.(`outgoing HTTP request to ${target.scheme}://${target.host}:${target.port} denied (grant it with --allow-outbound)`);
      throw new HttpError({ tag: 'HTTP-request-denied' });
    }
    const t = await this.load();
    signal?.throwIfAborted();
    return this.exchange(t, req, target, signal, transmitted, req.body.stream === null);
  }

  /** Scheme, host, port and path of the request, checked. */
  private target(req: RawRequest): Target {
    if (!TOKEN.test(req.method)) throw new HttpError({ tag: 'HTTP-request-method-invalid' });
    const schemeName = (req.scheme ?? this.opts.defaultScheme ?? 'https').toLowerCase();
    if (schemeName !== 'http' && schemeName !== 'https') throw new HttpError({ tag: 'HTTP-protocol-error' });
    const authority = req.authority;
    if (authority === null || authority === '') throw new HttpError({ tag: 'HTTP-request-URI-invalid' });
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:@\[\]\/?#]+))(?::(\d{0,5}))?$/.exec(authority);
    if (!m) throw new HttpError({ tag: 'HTTP-request-URI-invalid' });
    const hostname = m[1] ?? m[2];
    const port = m[3] ? Number(m[3]) : schemeName === 'https' ? 443 : 80;
    if (port < 1 || port > 65535) throw new HttpError({ tag: 'HTTP-request-URI-invalid' });
    let path = req.pathWithQuery ?? '';
    if (path === '') path = '/';
    // Node refuses characters outside 0x21-0xff in a request target.
    if (/[^\u0021-\u00ff]/.test(path)) throw new HttpError({ tag: 'HTTP-request-URI-invalid' });
    if (path[0] !== '/' && path !== '*') path = '/' + path;
    return { scheme: schemeName, hostname, host: m[1] ? `[${hostname}]` : hostname, port, authority, path };
  }

  private exchange(t: Transport, req: RawRequest, target: Target, signal: AbortSignal | undefined,
    transmitted: () => void, mayRetry: boolean): Promise<RawResponse> {
    const connectMs = toMs(req.options?.connectTimeoutNs);
    const firstByteMs = toMs(req.options?.firstByteTimeoutNs);
    const betweenMs = toMs(req.options?.betweenBytesTimeoutNs);

    // Host first, then the guest's headers in order (raw-array form keeps case and repeats).
    const headers: string[] = ['Host', target.authority];
    let declaredLength: bigint | null = null;
    for (const [name, value] of req.headers) {
      const v = latin1(value);
      if (name.toLowerCase() === 'content-length') {
        if (!/^\d+$/.test(v.trim())) throw new HttpError({ tag: 'HTTP-request-body-size' });
        const n = BigInt(v.trim());
        if (declaredLength !== null && declaredLength !== n) throw new HttpError({ tag: 'HTTP-request-body-size' });
        declaredLength = n;
      }
      headers.push(name, v);
    }

    return new Promise<RawResponse>((resolve, reject) => {
      let settled = false;
      let gotResponse = false;
      let connected = false;
      let finished = false;
      // One timer at a time: connect until the connection is up, then first-byte
      // once the request is fully sent (and the connection up).
      let timer: ReturnType<typeof setTimeout> | undefined;
      let cr: NodeHttp.ClientRequest;
      const fail = (code: ErrorCode | HttpError | unknown): void => {
        const err = code instanceof HttpError ? code
          : (code && typeof code === 'object' && 'tag' in code) ? new HttpError(code as ErrorCode) : new HttpError(errorCodeFrom(code));
        if (timer) clearTimeout(timer);
        if (!settled) { settled = true; reject(err); }
        if (!cr.destroyed) cr.destroy(err);
      };
      const arm = (ms: number, code: ErrorCode): void => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => fail(code), ms);
      };
      const maybeWaitFirstByte = (): void => {
        if (connected && finished && !gotResponse && !settled) arm(firstByteMs, { tag: 'connection-read-timeout' });
      };
      const onAbort = (): void => {
        if (timer) clearTimeout(timer);
        if (!settled) { settled = true; reject(signal!.reason); }
        cr.destroy();
      };
      try {
        const mod = target.scheme === 'https' ? t.https : t.http;
        cr = mod.request({
          agent: target.scheme === 'https' ? t.httpsAgent : t.httpAgent,
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: target.path,
          headers,
          setHost: false,
          ...(this.opts.lookup ? { lookup: this.opts.lookup } : {}),
          // SNI is the hostname (never an IP literal).
          ...(target.scheme === 'https' && !/^[\d.]+$|:/.test(target.hostname) ? { servername: target.hostname } : {}),
        });
      } catch (e) {
        const c = (e as { code?: string }).code;
        reject(new HttpError(c === 'ERR_INVALID_HTTP_TOKEN' ? { tag: 'HTTP-request-method-invalid' }
          : c === 'ERR_INVALID_CHAR' ? { tag: 'HTTP-request-header-size' } : errorCodeFrom(e)));
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });

      arm(connectMs, { tag: 'connection-timeout' });
      cr.on('socket', (socket: Socket) => {
        const connectedNow = (): void => {
          this.connected.add(socket);
          connected = true;
          if (timer) clearTimeout(timer);
          timer = undefined;
          maybeWaitFirstByte();
        };
        if (this.connected.has(socket)) { connectedNow(); return; }
        this.connectionsOpened++;
        const ev = target.scheme === 'https' ? 'secureConnect' : 'connect';
        if (!(socket as Socket & { connecting: boolean }).connecting && ev === 'connect') connectedNow();
        else socket.once(ev, connectedNow);
      });

      cr.on('error', (e) => {
        // A pooled connection the server closed while idle: retry once on a new one
        // when nothing of the request body was consumed yet.
        if (!settled && !gotResponse && mayRetry && (cr as NodeHttp.ClientRequest & { reusedSocket?: boolean }).reusedSocket
          && (e as { code?: string }).code === 'ECONNRESET') {
          settled = true;
          if (timer) clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          this.exchange(t, req, target, signal, transmitted, false).then(resolve, reject);
          return;
        }
        fail(e);
      });

      cr.on('finish', () => {
        finished = true;
        transmitted();
        maybeWaitFirstByte();
      });

      cr.on('response', (res: NodeHttp.IncomingMessage) => {
        gotResponse = true;
        if (timer) clearTimeout(timer);
        timer = undefined;
        signal?.removeEventListener('abort', onAbort);
        if (settled) { res.destroy(); return; }
        settled = true;
        resolve(this.responseFrom(res, betweenMs));
      });

      void this.writeBody(cr, req.body, declaredLength).catch((e) => fail(e));
    });
  }

  private async writeBody(cr: NodeHttp.ClientRequest, body: RawBody, declared: bigint | null): Promise<void> {
    let sent = 0n;
    if (body.stream !== null) {
      let chunked = false;
      for await (const chunk of body.stream) {
        if (cr.destroyed) return;
        if (chunk.length === 0) continue;
        sent += BigInt(chunk.length);
        if (declared !== null && sent > declared) throw new HttpError({ tag: 'HTTP-request-body-size', val: sent });
        if (!chunked && declared === null) {
          // Node frames a body without content-length as chunked only for some methods
          // by default; a body is always chunked here.
          cr.useChunkedEncodingByDefault = true;
          chunked = true;
        }
        if (!cr.write(chunk)) await drained(cr);
      }
    }
    const trailers = await body.trailers;
    if (cr.destroyed) return;
    if (declared !== null && sent !== declared) throw new HttpError({ tag: 'HTTP-request-body-size', val: sent });
    if (trailers && trailers.length > 0) {
      if (declared !== null) throw new HttpError({ tag: 'HTTP-request-trailer-section-size' });
      cr.useChunkedEncodingByDefault = true;
      // Trailers need chunked framing; with no body bytes Node would send a
      // content-length: force chunked by declaring it.
      if (sent === 0n && !cr.headersSent) cr.setHeader('Transfer-Encoding', 'chunked');
      cr.addTrailers(trailers.map(([n, v]) => [n, latin1(v)] as [string, string]));
    }
    cr.end();
  }

  private responseFrom(res: NodeHttp.IncomingMessage, betweenMs: number): RawResponse {
    return { status: res.statusCode ?? 0, headers: pairs(res.rawHeaders), body: new ResponseBody(res, betweenMs) };
  }
}

/** A failure while reading a response body: losing the connection mid-body means the response is incomplete. */
function bodyError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  const code = errorCodeFrom(e);
  return new HttpError(code.tag === 'connection-terminated' ? { tag: 'HTTP-response-incomplete' } : code);
}

/** Bodies this small are read to the end when abandoned, so their connection can be reused. */
const DRAIN_LIMIT = 64 * 1024;

/**
 * A response body: chunks pulled from the socket on demand (`stream`), then
 * the trailers. `stream.return()` — also before the first read — abandons
 * the rest: a body already received (or small) is drained so the connection
 * goes back to the pool, a larger one closes the connection.
 */
class ResponseBody implements RawBody, AsyncIterableIterator<Uint8Array> {
  readonly stream: AsyncIterableIterator<Uint8Array> = this;
  readonly trailers: Promise<FieldEntries | null>;
  private settleTrailers!: (v: FieldEntries | null) => void;
  private failTrailers!: (e: HttpError) => void;
  private readonly res: NodeHttp.IncomingMessage;
  private readonly betweenMs: number;
  private it: AsyncIterator<Buffer> | null = null;
  private failure: HttpError | null = null;
  private over = false;
  constructor(res: NodeHttp.IncomingMessage, betweenMs: number) {
    this.res = res;
    this.betweenMs = betweenMs;
    this.trailers = new Promise((ok, no) => { this.settleTrailers = ok; this.failTrailers = no; });
    this.trailers.catch(() => {});
    res.on('error', (e) => { this.failure ??= bodyError(e); });
  }
  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> { return this; }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.over) return { done: true, value: undefined };
    this.it ??= this.res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const res = this.res;
    const timer = setTimeout(() => res.destroy(new HttpError({ tag: 'connection-read-timeout' })), this.betweenMs);
    let r: IteratorResult<Buffer>;
    try {
      r = await this.it.next();
    } catch (e) {
      this.failure ??= bodyError(e);
      return this.end();
    } finally {
      clearTimeout(timer);
    }
    if (r.done) return this.end();
    return { done: false, value: new Uint8Array(r.value.buffer, r.value.byteOffset, r.value.byteLength) };
  }

  private end(): IteratorResult<Uint8Array> {
    this.over = true;
    if (this.failure === null && this.res.complete) {
      this.settleTrailers(this.res.rawTrailers.length > 0 ? pairs(this.res.rawTrailers) : null);
    } else {
      this.failTrailers(this.failure ?? new HttpError({ tag: 'HTTP-response-incomplete' }));
    }
    return { done: true, value: undefined };
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    if (this.over) return { done: true, value: undefined };
    this.over = true;
    this.failTrailers(new HttpError({ tag: 'HTTP-response-incomplete' }));
    void this.drainOrClose();
    return { done: true, value: undefined };
  }

  /** Read an abandoned body to its end when that is cheap (so the connection is reused), else close it. */
  private async drainOrClose(): Promise<void> {
    const res = this.res;
    const length = Number(res.headers['content-length'] ?? NaN);
    if (!res.complete && !(length <= DRAIN_LIMIT)) { res.destroy(); return; }
    const it = this.it ??= res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const timer = setTimeout(() => res.destroy(), 5000);
    timer.unref();
    let n = 0;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        n += r.value.length;
        if (n > DRAIN_LIMIT && !res.complete) { res.destroy(); break; }
      }
    } catch { /* the connection is gone anyway */ } finally {
      clearTimeout(timer);
    }
  }
}

interface Target { scheme: 'http' | 'https' | string; hostname: string; host: string; port: number; authority: string; path: string }

function toMs(ns: bigint | undefined): number {
  if (ns === undefined) return DEFAULT_TIMEOUT_MS;
  const ms = Number(ns / 1_000_000n);
  // setTimeout's limit is 2^31-1 ms; a longer timeout is as good as none.
  return Math.min(Math.max(ms, 1), 0x7fffffff);
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

function bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

function pairs(raw: string[]): FieldEntries {
  const out: FieldEntries = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i], bytes(raw[i + 1])]);
  return out;
}

function drained(cr: NodeHttp.ClientRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => { cr.off('drain', done); cr.off('close', closed); resolve(); };
    const closed = (): void => { cr.off('drain', done); cr.off('close', closed); reject(new HttpError({ tag: 'connection-terminated' })); };
    cr.on('drain', done);
    cr.on('close', closed);
  });
}

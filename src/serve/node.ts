// The node:http front end: (req, res) → ServeRequest → machine → response on
// the wire. Bodies stream both ways with backpressure (the request body is
// read only as the guest reads it; the response body is pulled from the
// guest only as the socket drains), so the first response byte may leave
// before the upload ended. Trailers: request trailers reach the guest;
// response trailers are sent (chunked) when the client sent `TE: trailers`.
// A body that disagrees with its content-length aborts the connection
// instead of sending a truncated or overlong response.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Fields, type FieldEntries } from '../wasi/core/http/fields.ts';
import { HttpError, type ErrorCode } from '../wasi/core/http/errors.ts';
import type { Body } from '../wasi/core/http/message.ts';
import type { ServeRequest, ServeResponse, TrailersSink } from './adapter.ts';
import { ShuttingDownError, errText, type ServeMachine } from './machine.ts';
import { GuestResponseError } from './p3-adapter.ts';
import { GuestBody, afterThisTurn, bodyPuller, type BodyPuller, type PullSink, type TurnTask } from './guest-body.ts';
import { ServeLimitError, readAwayThenClose } from './limits.ts'; // H8: limit answers (413/503/504)
import { h2Trailers, isHttp2, isTls, serveRequestFromH2 } from './http2.ts'; // H9 hook: HTTPS/h2 (see http2.ts)
import type { Http2ServerRequest } from 'node:http2';

const NO_TRAILERS: Promise<Fields | null> = Promise.resolve(null);
const TERMINATED: ErrorCode = { tag: 'connection-terminated' };

/** The request as the guest sees it. */
export function serveRequestFromNode(req: IncomingMessage, scheme: 'HTTP' | 'HTTPS' = 'HTTP'): ServeRequest {
  // Read from rawHeaders (req.headers is built on first access: a lower-cased object per request).
  // As node's req.headers: the first Host and Content-Length count; any Transfer-Encoding means a body.
  const raw = req.rawHeaders;
  let host: string | null = null, cl: string | null = null, te = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const n = raw[i];
    const len = n.length;
    if (len === 4) { if (host === null && n.toLowerCase() === 'host') host = raw[i + 1]; }
    else if (len === 14) { if (cl === null && n.toLowerCase() === 'content-length') cl = raw[i + 1]; }
    else if (len === 17) { if (n.toLowerCase() === 'transfer-encoding') te = true; }
  }
  const hasBody = te || (cl !== null && cl !== '0');
  let body: Body;
  // (no body: nothing to drain; node dumps an unread request when the response finished)
  if (hasBody) body = requestBody(req);
  else body = { stream: null, trailers: NO_TRAILERS };
  return {
    method: req.method ?? 'GET',
    scheme,
    authority: host,
    pathWithQuery: req.url ?? '/',
    headers: Fields.fromRawTrusted(req.rawHeaders), // copied into fields when the guest reads them
    body,
    watchdogId: 0,
  };
}

/** The incoming body, read on demand; trailers settle at its end (reject if the client went away). */
export function requestBody(req: IncomingMessage): Body {
  let settle!: (t: Fields | null) => void;
  let fail!: (e: unknown) => void;
  const trailers = new Promise<Fields | null>((res, rej) => { settle = res; fail = rej; });
  trailers.catch(() => {});
  let ended = false;
  let error: unknown = null;
  let wake: (() => void) | null = null;
  const poke = () => { const w = wake; wake = null; w?.(); };
  req.on('readable', poke);
  req.on('end', () => { ended = true; poke(); });
  req.on('error', (e) => { error ??= e; poke(); });
  req.on('close', () => { if (!ended) { error ??= new Error('aborted'); poke(); } });
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    if (error) { fail(new HttpError(TERMINATED)); return; }
    const rt = req.rawTrailers;
    if (rt.length === 0) { settle(null); return; }
    const entries: FieldEntries = [];
    for (let i = 0; i < rt.length; i += 2) entries.push([rt[i], Buffer.from(rt[i + 1], 'latin1')]);
    settle(Fields.fromTrusted(entries));
  };
  const END: IteratorResult<Uint8Array> = { done: true, value: undefined };
  const iterator: AsyncIterator<Uint8Array> = {
    async next(): Promise<IteratorResult<Uint8Array>> {
      for (;;) {
        if (finished) return END;
        if (error) { finish(); return END; }
        const c = req.read() as Buffer | null;
        if (c !== null) return { done: false, value: c };
        if (ended) { finish(); return END; }
        await new Promise<void>((r) => { wake = r; });
      }
    },
    async return(): Promise<IteratorResult<Uint8Array>> {
      // The guest stopped reading: discard the rest, the connection stays usable.
      if (!finished && !ended) req.resume();
      if (!finished) { finished = true; settle(null); }
      return END;
    },
  };
  return { stream: { [Symbol.asyncIterator]: () => iterator }, trailers };
}

function flatHeaders(f: Fields, out: string[] = []): string[] {
  for (const [k, v] of f.entries()) out.push(k, Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1'));
  return out;
}

/** The declared content-length: null when none, NaN when invalid (not digits, or several differing values). */
function contentLength(f: Fields): number | null {
  let found: number | null = null;
  for (const [k, v] of f.entries()) {
    if (k.length === 14 && k.toLowerCase() === 'content-length') {
      const s = Buffer.from(v).toString('latin1').trim();
      const n = /^[0-9]{1,15}$/.test(s) ? Number(s) : NaN;
      if (Number.isNaN(n) || (found !== null && found !== n)) return NaN;
      found = n;
    }
  }
  return found;
}

/** Answer a failed request: 500 if nothing was sent yet, else cut the connection (never a response that looks complete). */
export function answerFailure(res: ServerResponse, log: (l: string) => void, why: string): void {
  log(`weir: ${why}`);
  if (!res.headersSent && !res.destroyed) {
    const body = 'Internal Server Error\n';
    res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(body.length) });
    res.end(body);
  } else res.destroy();
}

const TE_TRAILERS = /(?:^|,)\s*trailers\s*(?:,|$)/i;
/** Bodies up to this size go out as one string with the response head (see trailersCame). */
const SMALL_BODY = 1024;
const codeOf = (e: unknown): ErrorCode => (e instanceof HttpError ? e.code : { tag: 'internal-error', val: undefined });

/** Write the guest's response (callback-driven: no Promise per chunk). Reports the outcome through `transmitted`. */
export function writeResponse(req: IncomingMessage, res: ServerResponse, r: ServeResponse, log: (l: string) => void): void {
  new ResponseWriter(req, res, r, log).start();
}

/**
 * One response on its way out. One chunk is held back until the next one (or
 * the end) shows up or the current macrotask is over: a body that ends right
 * away leaves in one write with a content-length (one packet, no chunked
 * framing), while a body that stalls still has its bytes sent at once (full
 * duplex). The next chunk is pulled only once the socket took the previous
 * ones ('drain'), so a slow client holds the guest's writes back.
 */
class ResponseWriter implements TurnTask, PullSink, TrailersSink {
  private readonly req: IncomingMessage;
  private readonly res: ServerResponse;
  private readonly r: ServeResponse;
  private readonly log: (l: string) => void;
  private declared: number | null = null;
  private flat: string[] = [];
  private body: BodyPuller | null = null;
  private sent = 0;
  private held: Uint8Array | null = null;
  /** bumped whenever a chunk is held, so a stale end-of-turn flush does nothing */
  private heldGen = 0;
  private pulling = false;
  private closed = false;
  /** res.end() was called: only 'finish' or 'close' is awaited */
  private ending = false;
  /** the outcome was reported; nothing more happens */
  private finished = false;
  private needDrain = false;
  /** a pulled step waiting for 'drain' */
  private stashed = false;
  private stashBytes: Uint8Array | null = null;
  private stashError: unknown = undefined;

  constructor(req: IncomingMessage, res: ServerResponse, r: ServeResponse, log: (l: string) => void) {
    this.req = req;
    this.res = res;
    this.r = r;
    this.log = log;
  }

  start(): void {
    const { req, res, r } = this;
    res.on('close', this.onClose); // ('close' and 'finish' fire once: `on` spares the wrapper `once` makes)
    const declared = contentLength(r.headers);
    const stream = r.body.stream;
    if (Number.isNaN(declared)) {
      this.finished = true;
      r.transmitted({ tag: 'internal-error', val: undefined });
      if (stream !== null) bodyPuller(stream).cancel();
      answerFailure(res, this.log, `${req.method} ${req.url}: the guest's response has an invalid content-length: answered 500`);
      return;
    }
    this.declared = declared;
    try {
      this.flat = flatHeaders(r.headers);
    } catch (e) {
      this.finished = true;
      r.transmitted({ tag: 'internal-error', val: undefined });
      if (stream !== null) bodyPuller(stream).cancel();
      answerFailure(res, this.log, `response headers refused: ${errText(e)}`);
      return;
    }
    if (stream === null) { this.bodyEnded(); return; }
    const body = this.body = bodyPuller(stream);
    if (body instanceof GuestBody) body.pooled = true; // its chunks only go to res.write
    if (req.method === 'HEAD') { this.body.cancel(); this.bodyEnded(); return; }
    this.pullNext();
  }

  private pullNext(): void {
    this.pulling = true;
    this.body!.pull(this);
  }

  /** (PullSink) one step of the body */
  pulled(bytes: Uint8Array | null, error: unknown): void {
    this.pulling = false;
    if (this.finished) return;
    if (this.closed) { this.abort(TERMINATED, null); return; }
    if (this.needDrain) {
      this.stashed = true;
      this.stashBytes = bytes;
      this.stashError = error;
      return;
    }
    this.step(bytes, error);
  }

  private step(bytes: Uint8Array | null, error: unknown): void {
    try {
      if (error !== undefined) { this.abort(codeOf(error), `response failed: ${errText(error)}`); return; }
      if (bytes === null) { this.bodyEnded(); return; }
      if (bytes.length === 0) { this.pullNext(); return; }
      this.sent += bytes.length;
      const declared = this.declared;
      if (declared !== null && this.sent > declared) {
        this.abort({ tag: 'HTTP-response-body-size', val: BigInt(this.sent) }, `response body longer than its content-length (${declared}): connection aborted`);
        return;
      }
      if (this.held !== null && !this.put(this.held)) return;
      this.held = bytes;
      const gen = ++this.heldGen;
      this.pullNext();
      // The next chunk did not come at once: send this one after the current macrotask.
      if (this.pulling && !this.finished && this.heldGen === gen) afterThisTurn(this, gen);
    } catch (e) {
      this.abort(codeOf(e), `response failed: ${errText(e)}`);
    }
  }

  /** (TurnTask) the end of the turn in which chunk `gen` was held */
  afterTurn(gen: number): void {
    if (this.finished || this.heldGen !== gen || this.held === null) return;
    const h = this.held;
    this.held = null;
    try {
      this.put(h);
    } catch (e) {
      this.abort(codeOf(e), `response failed: ${errText(e)}`);
    }
  }

  /** Writes one chunk (headers first); false when the response was abandoned. */
  private put(chunk: Uint8Array): boolean {
    if (!this.res.headersSent && !this.head()) return false;
    if (!this.res.write(chunk) && !this.needDrain) {
      this.needDrain = true;
      this.res.once('drain', this.onDrain ??= () => this.drained()); // (made only for a response that waits)
    }
    return true;
  }

  private onDrain: (() => void) | null = null;

  private drained(): void {
    this.needDrain = false;
    if (this.finished || !this.stashed) return;
    this.stashed = false;
    const b = this.stashBytes, e = this.stashError;
    this.stashBytes = null;
    this.stashError = undefined;
    this.step(b, e);
  }

  private head(extra?: string[]): boolean {
    try {
      this.res.writeHead(this.r.status, extra ? this.flat.concat(extra) : this.flat);
      return true;
    } catch (e) {
      this.finished = true;
      this.body?.cancel();
      this.r.transmitted({ tag: 'internal-error', val: undefined });
      answerFailure(this.res, this.log, `response refused (status ${this.r.status}): ${errText(e)}`);
      return false;
    }
  }

  private bodyEnded(): void {
    const r = this.r;
    if (r.trailersTo !== undefined) r.trailersTo(this);
    else r.body.trailers.then((t) => this.trailersCame(t), (e: unknown) => this.trailersFailed(e));
  }

  /** (TrailersSink) the body failed */
  trailersFailed(e: unknown): void {
    if (this.finished) return;
    this.abort(codeOf(e), `response body failed: ${errText(e)}`);
  }

  /** (TrailersSink) the body ended: its trailers (or null) */
  trailersCame(trailers: Fields | null): void {
    if (this.finished) return;
    if (this.closed) { this.abort(TERMINATED, null); return; }
    try {
      const { req, res } = this;
      const isHead = req.method === 'HEAD';
      const declared = this.declared;
      const sent = this.sent;
      if (declared !== null && !isHead && sent !== declared) {
        this.abort({ tag: 'HTTP-response-body-size', val: BigInt(sent) }, `response body (${sent} bytes) shorter than its content-length (${declared}): connection aborted`);
        return;
      }
      // H9 hook: h2 carries trailers in a HEADERS frame (no TE needed, no chunked framing).
      const h2 = trailers !== null && isHttp2(req);
      const sendTrailers = trailers !== null && trailers.length > 0 && declared === null && !isHead
        && (h2 || TE_TRAILERS.test(String(req.headers.te ?? '')));
      let held = this.held;
      this.held = null;
      const whole = !res.headersSent;
      if (whole) {
        // Nothing written yet: the whole body is `held` (or empty).
        const extra = sendTrailers ? (held === null && !h2 ? ['transfer-encoding', 'chunked'] : undefined)
          : declared === null && !isHead ? ['content-length', String(sent)] : undefined;
        if (!this.head(extra)) return;
      }
      if (held !== null && sendTrailers) { res.write(held); held = null; }
      // H9 hook: node's h2 compatibility response takes trailers as an object only (repeated names as arrays).
      if (sendTrailers && h2) res.addTrailers(h2Trailers(flatHeaders(trailers!)));
      else if (sendTrailers) res.addTrailers(flatHeaders(trailers!).reduce<[string, string][]>((a, v, i, arr) => { if (i % 2 === 0) a.push([v, arr[i + 1]]); return a; }, []));
      this.ending = true;
      res.on('finish', this.onFinish);
      if (held === null) res.end();
      // A small body ending the response with its head: as a latin1 string (the same bytes), node joins
      // it to the head in one string write instead of a two-buffer writev.
      else if (whole && held.length <= SMALL_BODY && !sendTrailers && !isHttp2(req)) res.end(Buffer.from(held.buffer, held.byteOffset, held.length).toString('latin1'), 'latin1');
      else res.end(held);
    } catch (e) {
      this.abort(codeOf(e), `response failed: ${errText(e)}`);
    }
  }

  private readonly onFinish = (): void => {
    if (this.finished) return;
    this.finished = true;
    this.r.transmitted(this.res.writableFinished ? null : TERMINATED);
  };

  private readonly onClose = (): void => {
    this.closed = true;
    if (this.finished) return;
    if (this.ending) this.onFinish();
    else this.abort(TERMINATED, null);
  };

  private abort(code: ErrorCode, why: string | null): void {
    if (this.finished) return;
    this.finished = true;
    this.body?.cancel();
    this.r.transmitted(code);
    if (why) this.log(`weir: ${why}`);
    if (!this.res.headersSent && !this.closed) answerFailure(this.res, () => {}, '');
    else this.res.destroy();
  }
}

/** The CPU watchdog's per-request bookkeeping (watchdog.ts ConnectionTable). */
export interface RequestTracker {
  /** A request arrived: the id it goes by in the watchdog's table (0: not tracked). */
  begin(req: IncomingMessage): number;
  /** The machine settled the request; its head is written next (on `res`). */
  answered(req: IncomingMessage, res: ServerResponse): void;
}

/** A (req, res) listener over a machine. */
export function nodeListener(machine: Pick<ServeMachine, 'handle'>, log: (l: string) => void,
  tracker?: RequestTracker): (req: IncomingMessage, res: ServerResponse) => void { // H8: or a LimitedHandler (limits.ts)
  const answered = tracker?.answered;
  return (req, res) => {
    let request: ServeRequest;
    try {
      // H9 hook: h2 streams map pseudo-headers; a TLS connection is scheme HTTPS.
      request = isHttp2(req) ? serveRequestFromH2(req as unknown as Http2ServerRequest) : serveRequestFromNode(req, isTls(req) ? 'HTTPS' : 'HTTP');
    } catch (e) {
      answered?.(req, res); // the watchdog must not take its connection for one with no request yet
      answerFailure(res, log, `bad request: ${errText(e)}`);
      return;
    }
    if (tracker) {
      const id = tracker.begin(req);
      if (id !== 0) request.watchdogId = id;
    }
    machine.handle(request).then(
      (r) => {
        answered?.(req, res);
        try { writeResponse(req, res, r, log); } catch (e) { answerFailure(res, log, `internal error: ${errText(e)}`); }
      },
      (e: unknown) => {
        answered?.(req, res);
        try { refused(req, res, log, e); } catch (e2) { answerFailure(res, log, `internal error: ${errText(e2)}`); }
      },
    );
  };
}

/** How long a connection refused mid-body (413) reads away what its client still sends before it is destroyed. */
const LINGER_MS = 2000;

/**
 * A client still sending a body it was refused (413) would meet a closed
 * socket: the reset can destroy the answer before the client reads it (the
 * test saw `fetch failed: write EPIPE` instead of the 413). node:http
 * destroys a `connection: close` socket once the answer is written
 * (`destroySoon`); for this one it half-closes instead (the answer, then
 * FIN) and reads away, bounded by LINGER_MS, until the client closes.
 */
function lingerAtClose(socket: import('node:net').Socket): void {
  socket.destroySoon = function (this: import('node:net').Socket) {
    this.end();
    readAwayThenClose(this, LINGER_MS);
  };
}

/** The request got no response from the machine: a limit's answer, 503 while draining, or 500. */
function refused(req: IncomingMessage, res: ServerResponse, log: (l: string) => void, e: unknown): void {
  if (e instanceof ServeLimitError && !res.headersSent) {
    // H8 hook: a limit answered (413 body too large, 503 queue timeout, 504 -W timeout); see limits.ts.
    const h2 = isHttp2(req);
    const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
    for (const [k, v] of Object.entries(e.headers)) if (!(h2 && k === 'connection')) headers[k] = v;
    if (!h2 && e.headers.connection === 'close' && !req.complete) lingerAtClose(req.socket);
    res.writeHead(e.status, headers);
    res.end(e.message);
    return;
  }
  if (e instanceof ShuttingDownError && !res.headersSent) {
    // A request that arrived on a kept-alive connection while draining.
    // H9 hook: h2 has no Connection header (node refuses it); the client's session ends with the server's.
    res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', ...(isHttp2(req) ? {} : { connection: 'close' }), 'retry-after': '1' });
    res.end('Service Unavailable: shutting down\n');
    return;
  }
  const why = e instanceof GuestResponseError ? e.message : `request failed: ${errText(e)}`;
  answerFailure(res, log, `${req.method} ${req.url}: ${why}`);
}

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
import type { ServeRequest, ServeResponse } from './adapter.ts';
import { ShuttingDownError, errText, type ServeMachine } from './machine.ts';
import { GuestResponseError } from './p3-adapter.ts';
import { ServeLimitError } from './limits.ts'; // H8: limit answers (413/503/504)
import { h2Trailers, isHttp2, isTls, serveRequestFromH2 } from './http2.ts'; // H9 hook: HTTPS/h2 (see http2.ts)
import type { Http2ServerRequest } from 'node:http2';

const NO_TRAILERS: Promise<Fields | null> = Promise.resolve(null);
const LATER = Symbol('later');
const later = (): Promise<typeof LATER> => new Promise((r) => setImmediate(r, LATER));
const TERMINATED: ErrorCode = { tag: 'connection-terminated' };

/** The request as the guest sees it. */
export function serveRequestFromNode(req: IncomingMessage, scheme: 'HTTP' | 'HTTPS' = 'HTTP'): ServeRequest {
  const raw = req.rawHeaders;
  const entries: FieldEntries = [];
  for (let i = 0; i < raw.length; i += 2) entries.push([raw[i], Buffer.from(raw[i + 1], 'latin1')]);
  const h = req.headers;
  const cl = h['content-length'];
  const hasBody = h['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
  let body: Body;
  if (hasBody) body = requestBody(req);
  else {
    req.resume();
    body = { stream: null, trailers: NO_TRAILERS };
  }
  return {
    method: req.method ?? 'GET',
    scheme,
    authority: h.host ?? null,
    pathWithQuery: req.url ?? '/',
    headers: Fields.fromTrusted(entries),
    body,
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

/** Write the guest's response; resolves when it was sent or abandoned. Reports the outcome through `transmitted`. */
export async function writeResponse(req: IncomingMessage, res: ServerResponse, r: ServeResponse, log: (l: string) => void): Promise<void> {
  let closed = false;
  let onClose: (() => void) | null = null;
  const closedP = new Promise<void>((resolve) => {
    onClose = () => { closed = true; resolve(); };
  });
  res.once('close', () => onClose!());
  const isHead = req.method === 'HEAD';
  const declared = contentLength(r.headers);
  // H9 hook: h2 carries trailers in a HEADERS frame (no TE needed, no chunked framing).
  const h2 = isHttp2(req);
  const wantsTrailers = h2 || /(?:^|,)\s*trailers\s*(?:,|$)/i.test(String(req.headers.te ?? ''));
  if (Number.isNaN(declared)) {
    r.transmitted({ tag: 'internal-error', val: undefined });
    r.body.stream?.[Symbol.asyncIterator]().return?.().catch(() => {});
    answerFailure(res, log, `${req.method} ${req.url}: the guest's response has an invalid content-length: answered 500`);
    return;
  }
  let flat: string[];
  try {
    flat = flatHeaders(r.headers);
  } catch (e) {
    r.transmitted({ tag: 'internal-error', val: undefined });
    answerFailure(res, log, `response headers refused: ${errText(e)}`);
    return;
  }
  const head = (extra?: string[]): boolean => {
    try {
      res.writeHead(r.status, extra ? flat.concat(extra) : flat);
      return true;
    } catch (e) {
      r.transmitted({ tag: 'internal-error', val: undefined });
      answerFailure(res, log, `response refused (status ${r.status}): ${errText(e)}`);
      return false;
    }
  };
  const stream = r.body.stream;
  let sent = 0;
  /** Writes one chunk (headers first); false when the response was abandoned. */
  const put = async (chunk: Uint8Array): Promise<boolean> => {
    if (!res.headersSent && !head()) return false;
    if (!res.write(chunk)) {
      await Promise.race([new Promise((r2) => res.once('drain', r2)), closedP]);
      if (closed) { abort(TERMINATED, null); return false; }
    }
    return true;
  };
  let it: AsyncIterator<Uint8Array> | null = null;
  const abort = (code: ErrorCode, why: string | null) => {
    it?.return?.().catch(() => {});
    r.transmitted(code);
    if (why) log(`weir: ${why}`);
    if (!res.headersSent && !closed) answerFailure(res, () => {}, '');
    else res.destroy();
  };
  try {
    // One chunk is held back until the next one (or the end) shows up or a
    // macrotask passed: a body that ends right away leaves in one write with
    // a content-length (one packet, no chunked framing), while a body that
    // stalls still has its bytes sent at once (full duplex).
    let held: Uint8Array | null = null;
    if (stream !== null && !isHead) {
      it = stream[Symbol.asyncIterator]();
      let nextP = it.next();
      for (;;) {
        let n: IteratorResult<Uint8Array> | void | typeof LATER;
        if (held !== null) {
          n = await Promise.race([nextP, closedP, later()]);
          if (n === LATER) {
            if (!(await put(held))) return;
            held = null;
            n = await Promise.race([nextP, closedP]);
          }
        } else n = await Promise.race([nextP, closedP]);
        if (closed || n === undefined) { abort(TERMINATED, null); return; }
        const r = n as IteratorResult<Uint8Array>;
        if (r.done) break;
        const chunk = r.value;
        nextP = it.next();
        if (chunk.length === 0) continue;
        sent += chunk.length;
        if (declared !== null && sent > declared) {
          abort({ tag: 'HTTP-response-body-size', val: BigInt(sent) }, `response body longer than its content-length (${declared}): connection aborted`);
          return;
        }
        if (held !== null && !(await put(held))) return;
        held = chunk;
      }
    } else if (stream !== null && isHead) {
      const h = stream[Symbol.asyncIterator]();
      h.return?.().catch(() => {});
    }
    let trailers: Fields | null;
    try {
      trailers = await Promise.race([r.body.trailers, closedP.then(() => null)]);
    } catch (e) {
      const code = e instanceof HttpError ? e.code : { tag: 'internal-error' as const, val: undefined };
      abort(code, `response body failed: ${errText(e)}`);
      return;
    }
    if (closed) { abort(TERMINATED, null); return; }
    if (declared !== null && !isHead && sent !== declared) {
      abort({ tag: 'HTTP-response-body-size', val: BigInt(sent) }, `response body (${sent} bytes) shorter than its content-length (${declared}): connection aborted`);
      return;
    }
    const sendTrailers = trailers !== null && trailers.length > 0 && wantsTrailers && declared === null && !isHead;
    if (!res.headersSent) {
      // Nothing written yet: the whole body is `held` (or empty).
      const extra = sendTrailers ? (held === null && !h2 ? ['transfer-encoding', 'chunked'] : undefined)
        : declared === null && !isHead ? ['content-length', String(sent)] : undefined;
      if (!head(extra)) return;
    }
    if (held !== null) {
      if (sendTrailers) { res.write(held); held = null; }
    }
    // H9 hook: node's h2 compatibility response takes trailers as an object only (repeated names as arrays).
    if (sendTrailers && h2) res.addTrailers(h2Trailers(flatHeaders(trailers!)));
    else if (sendTrailers) res.addTrailers(flatHeaders(trailers!).reduce<[string, string][]>((a, v, i, arr) => { if (i % 2 === 0) a.push([v, arr[i + 1]]); return a; }, []));
    if (held !== null) res.end(held); else res.end();
    await Promise.race([new Promise((r2) => res.once('finish', r2)), closedP]);
    if (res.writableFinished) r.transmitted(null);
    else r.transmitted(TERMINATED);
  } catch (e) {
    abort(e instanceof HttpError ? e.code : { tag: 'internal-error', val: undefined }, `response failed: ${errText(e)}`);
  }
}

/** A (req, res) listener over a machine. */
export function nodeListener(machine: Pick<ServeMachine, 'handle'>, log: (l: string) => void): (req: IncomingMessage, res: ServerResponse) => void { // H8: or a LimitedHandler (limits.ts)
  return (req, res) => {
    let request: ServeRequest;
    try {
      // H9 hook: h2 streams map pseudo-headers; a TLS connection is scheme HTTPS.
      request = isHttp2(req) ? serveRequestFromH2(req as unknown as Http2ServerRequest) : serveRequestFromNode(req, isTls(req) ? 'HTTPS' : 'HTTP');
    } catch (e) {
      answerFailure(res, log, `bad request: ${errText(e)}`);
      return;
    }
    machine.handle(request).then(
      (r) => writeResponse(req, res, r, log),
      (e: unknown) => {
        if (e instanceof ServeLimitError && !res.headersSent) {
          // H8 hook: a limit answered (413 body too large, 503 queue timeout, 504 -W timeout); see limits.ts.
          const h2 = isHttp2(req);
          const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
          for (const [k, v] of Object.entries(e.headers)) if (!(h2 && k === 'connection')) headers[k] = v;
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
      },
    ).catch((e: unknown) => answerFailure(res, log, `internal error: ${errText(e)}`));
  };
}

// HTTPS and HTTP/2 for the serve front end. One node:http2 secure server
// with ALPN `h2` and `http/1.1` (allowHTTP1): HTTP/1.1-over-TLS requests come
// in as node:http IncomingMessage and take the usual path; HTTP/2 streams
// come in through node's compatibility API (Http2ServerRequest), which is a
// Readable with rawHeaders/rawTrailers like IncomingMessage, so the body and
// response code in node.ts serve both. What differs is mapped here: the
// pseudo-headers (:method, :path, :authority, :scheme) are taken out of the
// header list, the authority comes from :authority, and a request without a
// body is told by END_STREAM on its HEADERS frame (h2 has no
// transfer-encoding, and content-length is optional).

import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { Fields, type FieldEntries } from '../wasi/core/http/fields.ts';
import type { Body } from '../wasi/core/http/message.ts';
import type { ServeRequest } from './adapter.ts';
import { requestBody } from './node.ts';

const NO_TRAILERS: Promise<Fields | null> = Promise.resolve(null);

/**
 * Header names a proxy must not pass on (RFC 9113 §8.2.2 forbids them in h2;
 * node already refuses most of them, this keeps the guest's view the same
 * whichever version the client spoke).
 */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings']);

/** Whether a request reached us over HTTP/2. */
export function isHttp2(req: IncomingMessage | Http2ServerRequest): boolean {
  return req.httpVersionMajor === 2;
}

/** Whether the request's connection is TLS (HTTPS over h1 or h2). */
export function isTls(req: IncomingMessage | Http2ServerRequest): boolean {
  return (req.socket as { encrypted?: boolean } | null)?.encrypted === true;
}

/** An HTTP/2 stream as the guest sees it: method, path, authority from :authority, headers without pseudo-headers. */
export function serveRequestFromH2(req: Http2ServerRequest): ServeRequest {
  const raw = req.rawHeaders;
  const entries: FieldEntries = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.charCodeAt(0) === 58 /* ':' */ || CONNECTION_SPECIFIC.has(name.toLowerCase())) continue;
    entries.push([name, Buffer.from(raw[i + 1], 'latin1')]);
  }
  let body: Body;
  if (req.stream.endAfterHeaders) {
    req.resume();
    body = { stream: null, trailers: NO_TRAILERS };
  } else body = requestBody(req as unknown as IncomingMessage);
  const h = req.headers;
  const authority = (h[':authority'] as string | undefined) ?? (h.host as string | undefined) ?? null;
  return {
    method: req.method ?? 'GET',
    scheme: (h[':scheme'] as string | undefined)?.toLowerCase() === 'http' ? 'HTTP' : 'HTTPS',
    authority,
    pathWithQuery: (h[':path'] as string | undefined) ?? req.url ?? '/',
    headers: Fields.fromTrusted(entries),
    body,
  };
}

/** Flat [name, value, …] trailers as the object node's h2 compatibility response takes (a repeated name keeps every value). */
export function h2Trailers(flat: string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (let i = 0; i < flat.length; i += 2) {
    const k = flat[i].toLowerCase();
    const prev = out[k];
    out[k] = prev === undefined ? flat[i + 1] : Array.isArray(prev) ? [...prev, flat[i + 1]] : [prev, flat[i + 1]];
  }
  return out;
}

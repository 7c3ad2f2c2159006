// Handing a stopped worker's unread requests to another worker (issue 10).
//
// When the CPU watchdog stops a worker stuck in guest code, the requests its
// clients sent during the stall are still unread in the kernel: the worker
// never saw them. The supervisor reads them off the connection (it does so
// anyway, to close the connection cleanly: watchdog.ts). One that is
// complete, alone on its connection, and idempotent (RFC 9110 9.2.2: safe to
// run again, should a late answer be lost) is run by a live worker instead of
// being refused: the supervisor posts its bytes, the worker feeds them to its
// own HTTP server through a HandoverSocket (an in-memory connection: node's
// server takes any Duplex), and the response bytes go back to the stopped
// worker's file descriptor, which stays open until the worker is terminated.
// Anything else keeps the 503 + Retry-After it got before: a request the
// stuck worker had read (its bytes are gone with it), one still arriving, a
// pipelined batch, a body sent chunked or still on the way, an upgrade.

import { Duplex } from 'node:stream';

/** Methods a client may send again (RFC 9110 9.2.2), so a handed-over request answered too late costs nothing. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** The most request bytes (head and body) handed over; a larger one is refused as before. */
export const HANDOVER_MAX_REQUEST = 64 * 1024;
/** The most response bytes a handed-over request may produce (the supervisor writes them within its deadline). */
export const HANDOVER_MAX_RESPONSE = 1024 * 1024;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/1\.([01])$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * `bytes`, all that arrived unread on a stopped worker's connection, as one
 * request to hand over, rewritten with `Connection: close` (the connection
 * ends with the stopped worker); null if it is not exactly one complete,
 * idempotent HTTP/1.x request without upgrade or chunked body. Parsed
 * strictly (CRLF lines, token names, no folding, one numeric
 * Content-Length): where this parser and node's could disagree on where the
 * request ends, it is not handed over.
 */
export function handoverRequest(bytes: Uint8Array): Buffer | null {
  if (bytes.length === 0 || bytes.length > HANDOVER_MAX_REQUEST) return null;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = buf.indexOf('\r\n\r\n', 0, 'latin1');
  if (end < 0) return null;
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const line = REQUEST_LINE.exec(lines[0]);
  if (!line || !IDEMPOTENT.has(line[1])) return null;
  let length = 0, lengths = 0;
  const kept: string[] = [lines[0]];
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    const colon = l.indexOf(':');
    if (colon <= 0 || /[\r\n]/.test(l)) return null;
    const name = l.slice(0, colon);
    const value = l.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) return null;
    switch (name.toLowerCase()) {
      case 'content-length':
        if (!/^\d{1,9}$/.test(value) || ++lengths > 1) return null;
        length = Number(value);
        break;
      case 'transfer-encoding': case 'upgrade':
        return null;
      case 'connection': case 'keep-alive':
        continue; // replaced by `connection: close`
    }
    kept.push(l);
  }
  if (buf.length !== end + 4 + length) return null; // more (pipelined) or less (body on the way)
  kept.push('connection: close', '', '');
  return Buffer.concat([Buffer.from(kept.join('\r\n'), 'latin1'), buf.subarray(end + 4)]);
}

/**
 * An in-memory connection carrying one handed-over request into a worker's
 * HTTP server (`server.emit('connection', socket)`); `response` resolves
 * with every byte the server wrote once it ends (or destroys) the
 * connection, or null if it wrote nothing or the response outgrew
 * HANDOVER_MAX_RESPONSE.
 */
export class HandoverSocket extends Duplex {
  readonly response: Promise<Buffer | null>;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private tooLarge = false;
  private settle!: (b: Buffer | null) => void;

  constructor(request: Uint8Array) {
    super({ allowHalfOpen: true });
    this.response = new Promise((r) => { this.settle = r; });
    // The reading side stays open until the response ends: node's server ends a connection whose client
    // finished sending (no half-open), which would cut off an answer that comes later.
    this.push(Buffer.from(request.buffer, request.byteOffset, request.byteLength));
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.size += chunk.length;
    if (this.size > HANDOVER_MAX_RESPONSE) { this.tooLarge = true; cb(new Error('handed-over response too large')); return; }
    this.chunks.push(chunk);
    cb();
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.settle(this.size === 0 ? null : Buffer.concat(this.chunks));
    this.push(null);
    cb();
  }

  override _destroy(e: Error | null, cb: (e?: Error | null) => void): void {
    // (a no-op after _final) Destroyed early: what the server wrote goes out (a node 400, say), as it would have on
    // the real connection; with nothing written, or a response cut at the size cap, the supervisor answers 503.
    this.settle(this.tooLarge || this.size === 0 ? null : Buffer.concat(this.chunks));
    cb(e);
  }

  // What node's server and weir's connection hooks call on a net.Socket.
  setNoDelay(): this { return this; }
  setKeepAlive(): this { return this; }
  setTimeout(): this { return this; }
}

// Handing a stopped worker's connections and unread requests to another
// worker (issue 10).
//
// When the CPU watchdog stops a worker stuck in guest code, the requests its
// clients sent during the stall are still unread in the kernel: the worker
// never saw them.
//
// Moving a connection (where dup works: libc.ts). A connection between
// requests (its last request read to the end and its response handed to the
// kernel, or none yet) whose unread input is nothing or the start of a
// request goes to another worker whole: the supervisor dups its descriptor,
// puts the dup in a shared mailbox (MovedConnections) and makes the stopped
// worker's number one of an unreachable socket (shared-listener.ts), so the
// stopped worker, whose event loop runs once more at its termination, reads
// and closes nothing of it. A live worker takes the dup and serves it like a
// connection it accepted, reading what waits from the kernel. Nothing is run
// twice (the stopped worker read none of it), so any method, a body, a
// pipelined batch goes; the client sees no sign of the stop and keeps its
// connection. The input is only peeked at (MSG_PEEK), to check that it starts
// with a request line: a connection whose next request the stopped worker had
// begun to read (its head split over packets) is left to the old way.
//
// Handing over a request (the fallback without dup, and for a connection not
// moved). The supervisor reads the unread bytes off the connection (it does
// so anyway, to close the connection cleanly: watchdog.ts). One that is
// complete, alone on its connection, and idempotent (RFC 9110 9.2.2: safe to
// run again, should a late answer be lost) is run by a live worker instead of
// being refused: the supervisor posts its bytes, the worker feeds them to its
// own HTTP server through a HandoverSocket (an in-memory connection: node's
// server takes any Duplex), and the response bytes go back to the stopped
// worker's file descriptor, which stays open until the worker is terminated.
// Anything else keeps the 503 + Retry-After it got before: a request the
// stuck worker had read (its bytes are gone with it), one still arriving, a
// pipelined batch, a body sent chunked or still on the way, an upgrade.

import { METHODS } from 'node:http';
import { Duplex } from 'node:stream';
import { libc } from './libc.ts';

/** Methods a client may send again (RFC 9110 9.2.2), so a handed-over request answered too late costs nothing. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** The most request bytes (head and body) handed over; a larger one is refused as before. */
export const HANDOVER_MAX_REQUEST = 64 * 1024;
/** The most response bytes a handed-over request may produce (the supervisor writes them within its deadline). */
export const HANDOVER_MAX_RESPONSE = 1024 * 1024;

/** RFC 9110 tchar: what a method or a field name is made of. */
const TCHAR = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]";
const TOKEN = new RegExp(`^${TCHAR}+$`);
const REQUEST_LINE = new RegExp(`^(${TCHAR}+) (\\S+) HTTP\\/1\\.([01])$`);
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

// ---- moving a connection ----

/** What a peek may look at: a request line longer than this is not recognised (node's own header limit is 16 KiB). */
const PEEK_BYTES = 8192;
const KNOWN_METHODS = new Set(METHODS);
/** The start of a request line: a method, then (if the bytes go that far) a target, then (so far) the version. */
const REQUEST_LINE_START = new RegExp(`^(${TCHAR}+)(?: (\\S*)(?: (H(?:T(?:T(?:P(?:\\/(?:1(?:\\.[01]?)?)?)?)?)?)?)?)?)?$`);

/**
 * Whether what waits unread on socket `fd` is nothing or the start of an
 * HTTP/1.x request (a request line of a method node knows, whole or as far as
 * it has come), so another worker reading the connection from here on starts
 * at a request. False if the peer closed, or without peek (libc.ts).
 */
export function atRequestStart(fd: number): boolean {
  const c = libc();
  if (!c) return false;
  const buf = Buffer.allocUnsafe(PEEK_BYTES);
  const n = c.peek(fd, buf);
  if (n < 0) return true; // nothing waiting
  if (n === 0) return false; // the client closed: nothing to serve
  const eol = buf.indexOf('\r\n', 0, 'latin1');
  if (eol < 0 && n === PEEK_BYTES) return false;
  const line = buf.toString('latin1', 0, eol < 0 ? n : eol);
  if (eol >= 0) {
    const m = REQUEST_LINE.exec(line);
    return m !== null && KNOWN_METHODS.has(m[1]);
  }
  const m = REQUEST_LINE_START.exec(line);
  if (!m) return false;
  // A method cut short must still be the beginning of one (a space after it: one in full).
  return m[2] === undefined ? METHODS.some((x) => x.startsWith(m[1])) : KNOWN_METHODS.has(m[1]);
}

/** Descriptors the mailbox holds at once; a connection that finds it full is answered the old way. */
const MAILBOX_SLOTS = 1024;

/**
 * Descriptors of moved connections, in shared memory: the supervisor puts a
 * dup in a free slot, and a live worker takes it (an atomic exchange, so
 * exactly one worker owns it, and the supervisor can take back, on shutdown,
 * what no worker took).
 */
export class MovedConnections {
  readonly buffer: SharedArrayBuffer;
  private readonly slots: Int32Array;
  private next = 0;

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(MAILBOX_SLOTS * 4);
    this.slots = new Int32Array(this.buffer);
    if (!buffer) this.slots.fill(-1);
  }

  /** The supervisor: false if every slot is taken. */
  put(fd: number): boolean {
    for (let i = 0; i < MAILBOX_SLOTS; i++) {
      const at = (this.next + i) % MAILBOX_SLOTS;
      if (Atomics.load(this.slots, at) !== -1) continue;
      Atomics.store(this.slots, at, fd);
      this.next = (at + 1) % MAILBOX_SLOTS;
      return true;
    }
    return false;
  }

  /** Every descriptor waiting, now owned by the caller. */
  take(): number[] {
    const out: number[] = [];
    for (let i = 0; i < MAILBOX_SLOTS; i++) {
      if (Atomics.load(this.slots, i) === -1) continue;
      const fd = Atomics.exchange(this.slots, i, -1);
      if (fd !== -1) out.push(fd);
    }
    return out;
  }
}

// Byte sources and sinks between WASI 0.2 http bodies and the face-neutral
// HTTP core: an incoming body (an AsyncIterable of chunks, pulled on demand)
// as the ByteSource of a wasi:io input-stream, and an outgoing body's
// output-stream as a ByteSink whose bytes a consumer pulls as an
// AsyncIterable (the HTTP client sending a request, or serve writing a
// response). Both keep at most one chunk / a bounded buffer in flight.

import { HttpError, type ErrorCode } from '../core/http/errors.ts';
import type { ByteSink, ByteSource } from '../core/streams.ts';

/**
 * A body failure reported through a stream: `code` is a string so the io
 * layer treats it as a host failure (last-operation-failed) rather than a bug;
 * `httpCode` is what wasi:http/types.http-error-code answers for it.
 */
export class HttpStreamError extends Error {
  override name = 'HttpStreamError';
  readonly code = 'EIO';
  readonly httpCode: ErrorCode;
  constructor(httpCode: ErrorCode) {
    super(httpCode.tag);
    this.httpCode = httpCode;
  }
}

/** An incoming body's chunks as a ByteSource: the next chunk is pulled only once the last one was read. */
export class BodySource implements ByteSource {
  private readonly it: AsyncIterator<Uint8Array> | null;
  private buf: Uint8Array | null = null;
  private ended: boolean;
  private error: HttpStreamError | null = null;
  private pulling: Promise<void> | null = null;
  private readonly failure: Promise<HttpError | null>;
  constructor(stream: AsyncIterable<Uint8Array> | null, trailers: Promise<unknown>) {
    this.it = stream ? stream[Symbol.asyncIterator]() : null;
    this.ended = stream === null;
    this.failure = trailers.then(() => null, (e: unknown) => (e instanceof HttpError ? e : new HttpError({ tag: 'internal-error' })));
  }

  private pull(): Promise<void> {
    if (this.pulling) return this.pulling;
    if (this.ended || this.error || (this.buf && this.buf.length > 0)) return Promise.resolve();
    this.pulling = (async () => {
      try {
        const r = await this.it!.next();
        if (r.done) {
          this.ended = true;
          // The client ends a failed body's stream normally and rejects its trailers.
          const f = await this.failure;
          if (f) this.error = new HttpStreamError(f.code);
        } else {
          this.buf = r.value;
        }
      } catch (e) {
        this.error = new HttpStreamError(e instanceof HttpError ? e.code : { tag: 'internal-error' });
      } finally {
        this.pulling = null;
      }
    })();
    return this.pulling;
  }

  ready(): boolean { return (this.buf !== null && this.buf.length > 0) || this.ended || this.error !== null; }

  readNow(max: number): Uint8Array | null {
    if (this.buf && this.buf.length > 0) {
      const b = this.buf;
      if (b.length > max) { this.buf = b.subarray(max); return b.subarray(0, max); }
      this.buf = null;
      return b;
    }
    if (this.error) throw this.error;
    if (this.ended) return null;
    void this.pull();
    return new Uint8Array(0);
  }

  /** Non-blocking: a guest read never blocks the thread (blocking reads go through `read`). */
  readSync(max: number): Uint8Array | null { return this.readNow(max); }

  async read(max: number): Promise<Uint8Array | null> {
    while (!this.ready()) await this.pull();
    return this.readNow(max);
  }

  whenReadable(signal?: AbortSignal): Promise<void> {
    if (this.ready()) return Promise.resolve();
    const p = this.pull();
    if (!signal) return p;
    return new Promise((resolve) => {
      const done = (): void => { signal.removeEventListener('abort', done); resolve(); };
      signal.addEventListener('abort', done, { once: true });
      p.then(done, done);
    });
  }

  /** Read and discard the rest (so the trailers that follow can arrive). */
  async drain(): Promise<void> {
    this.buf = null;
    while (!this.ended && !this.error) {
      await this.pull();
      this.buf = null;
    }
  }

  /** The guest dropped the stream: nothing more will be read here. */
  close(): void {}

  /** Stop reading for good (the body was dropped unread): releases the connection. */
  abandon(): void {
    if (!this.ended && this.it?.return) void this.it.return().catch(() => {});
    this.ended = true;
    this.buf = null;
  }
}

/** Bytes the sink takes ahead of its consumer before a writer has to wait. */
const SINK_BUFFER = 64 * 1024;

/**
 * An outgoing body: the guest writes through an output-stream into this sink,
 * and a consumer pulls the bytes with `chunks()`. `end()` / `fail()` finish it.
 */
export class BodySink implements ByteSink {
  private queue: Uint8Array[] = [];
  private queued = 0;
  private done = false;
  private failure: HttpError | null = null;
  private consumerGone = false;
  /** bytes written so far (for content-length checks) */
  written = 0n;
  private wakeConsumer: (() => void) | null = null;
  private roomWaiters: (() => void)[] = [];

  private put(bytes: Uint8Array): void {
    if (this.consumerGone) throw new HttpStreamError({ tag: 'connection-terminated' });
    if (this.done) throw new HttpStreamError({ tag: 'internal-error', val: 'body already finished' });
    // The bytes may be a view of guest memory: keep a copy.
    this.queue.push(bytes.slice());
    this.queued += bytes.length;
    this.written += BigInt(bytes.length);
    const w = this.wakeConsumer;
    this.wakeConsumer = null;
    w?.();
  }

  writeNow(bytes: Uint8Array): number {
    if (this.consumerGone) throw new HttpStreamError({ tag: 'connection-terminated' });
    const room = SINK_BUFFER - this.queued;
    if (room <= 0) return 0;
    const n = Math.min(room, bytes.length);
    this.put(n === bytes.length ? bytes : bytes.subarray(0, n));
    return n;
  }

  async write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) {
      if (this.consumerGone) throw new HttpStreamError({ tag: 'connection-terminated' });
      const n = this.writeNow(bytes.subarray(off));
      off += n;
      if (off < bytes.length) await new Promise<void>((r) => this.roomWaiters.push(r));
    }
  }

  /** Unbounded (used only by writers that cannot wait). */
  writeSync(bytes: Uint8Array): void { if (bytes.length > 0) this.put(bytes); }
  flushSync(): void {}
  /** The output-stream was dropped; the body ends only at finish (or fails if never finished). */
  close(): void {}

  end(): void { this.done = true; this.wake(); }
  fail(e: HttpError): void { this.failure ??= e; this.done = true; this.wake(); }
  get finished(): boolean { return this.done; }

  private wake(): void {
    const w = this.wakeConsumer;
    this.wakeConsumer = null;
    w?.();
    const rs = this.roomWaiters;
    this.roomWaiters = [];
    for (const r of rs) r();
  }

  /** The consumer's view: chunks as written; throws the failure given to `fail`. */
  async *chunks(): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        if (this.queue.length > 0) {
          const b = this.queue.shift()!;
          this.queued -= b.length;
          const rs = this.roomWaiters;
          this.roomWaiters = [];
          for (const r of rs) r();
          yield b;
          continue;
        }
        if (this.failure) throw this.failure;
        if (this.done) return;
        await new Promise<void>((r) => { this.wakeConsumer = r; });
      }
    } finally {
      if (!this.done || this.queue.length > 0) {
        this.consumerGone = true;
        this.queue = [];
        this.queued = 0;
        this.wake();
      }
    }
  }
}

// wasi:io@0.2 (error, poll, streams) over the core byte sources and sinks.
//
// Waiting never blocks the Node thread: `poll`, `pollable.block` and the
// blocking-* stream methods are may-block host functions (runtime/call.ts
// `mayBlock`). When they can answer at once they return a plain value; when
// they must wait they return a Promise and the guest's wasm stack suspends
// (JSPI) until it settles, while the event loop delivers I/O, timers and the
// work of other guests.
//
// ## Pollables (the API other 0.2 interfaces build on)
//
// A `pollable` resource value is any object extending `Pollable`:
//
//   ready(): boolean                         has the event happened? (never waits)
//   whenReady(signal): Promise<void>         resolves once ready() may hold; never rejects;
//                                            an aborted `signal` abandons the wait (drop
//                                            timers/listeners) — poll aborts the losers
//
// `poll(list)` returns the ready indices at once when any is ready, else awaits
// the first `whenReady` and re-checks. Ready-made kinds:
//
//   ReadyPollable        always ready
//   TimerPollable        ready at a monotonic-clock deadline (ns)
//   PromisePollable      ready once a Promise settled (e.g. an HTTP future)
//   ConditionPollable    ready while `test()` holds; re-checked whenever its
//                        `Notifier` is notified (e.g. socket data arrived)
//
// Give a resource a `subscribe` by returning one of these (or a subclass) for
// the `pollable` HostResource in `IoResources`.

import { trap } from '../../errors.ts';
import { mayBlock, viewsBytes } from '../../runtime/call.ts';
import { HostResource } from '../../runtime/resources.ts';
import type { Clocks } from '../core/clocks.ts';
import { WasiError, isHostError, toWasiError, type FsErrorCode } from '../core/errors.ts';
import { readFrom, writeTo, type ByteSink, type ByteSource } from '../core/streams.ts';
import { err, ok, type Result } from '../wit-values.ts';


/** wasi:io/error.error: a description for debugging, and the filesystem code when there is one. */
export class IoError {
  readonly message: string;
  readonly code: FsErrorCode | undefined;
  /** the sockets core's error-code (0.3 names) when a socket stream failed (for network-error-code) */
  readonly socketCode: string | undefined;
  constructor(message: string, code?: FsErrorCode, socketCode?: string) {
    this.message = message;
    this.code = code;
    this.socketCode = socketCode;
  }
  /** the wasi:http error-code when an HTTP body stream failed (for wasi:http/types.http-error-code) */
  httpCode: unknown;
  static from(e: unknown): IoError {
    const sc = socketCodeOf(e);
    if (sc !== undefined) return new IoError(sc, undefined, sc);
    const w = toWasiError(e);
    const r = new IoError(w.code, w.code);
    // An HTTP body failure (p2/http-body.ts HttpStreamError) carries its error-code.
    if ((e as { name?: unknown } | null)?.name === 'HttpStreamError') r.httpCode = (e as { httpCode: unknown }).httpCode;
    return r;
  }
}

/** The code of the sockets core's SocketError (matched by name: io does not depend on the sockets core). */
function socketCodeOf(e: unknown): string | undefined {
  return e instanceof Error && e.name === 'SocketError' && typeof (e as { code?: unknown }).code === 'string' ? (e as unknown as { code: string }).code : undefined;
}

// ---- pollables ---------------------------------------------------------

/** A readiness source: see the file comment. */
export abstract class Pollable {
  /** Whether the event has happened. Must not wait. */
  abstract ready(): boolean;
  /**
   * Resolves once `ready()` may return true (it may resolve early: callers
   * re-check). Never rejects. When `signal` aborts, stop waiting (clear timers,
   * remove listeners) and resolve.
   */
  abstract whenReady(signal: AbortSignal): Promise<void>;
}

const RESOLVED = Promise.resolve();

/** Always ready (files, buffers, sinks that never wait). */
export class ReadyPollable extends Pollable {
  ready(): boolean { return true; }
  whenReady(): Promise<void> { return RESOLVED; }
}

/** Ready when the monotonic clock reaches `when` (ns). */
export class TimerPollable extends Pollable {
  private readonly clocks: Clocks;
  readonly when: bigint;
  constructor(clocks: Clocks, when: bigint) {
    super();
    this.clocks = clocks;
    this.when = when;
  }
  ready(): boolean { return this.clocks.monotonicNow() >= this.when; }
  whenReady(signal: AbortSignal): Promise<void> {
    return this.clocks.waitUntil(this.when, signal).catch(() => {});
  }
}

/** Ready once `p` settled (fulfilled or rejected). */
export class PromisePollable extends Pollable {
  private settled = false;
  private readonly p: Promise<void>;
  constructor(p: PromiseLike<unknown>) {
    super();
    this.p = Promise.resolve(p).then(() => { this.settled = true; }, () => { this.settled = true; });
  }
  ready(): boolean { return this.settled; }
  whenReady(signal: AbortSignal): Promise<void> { return this.settled ? RESOLVED : raceAbort(this.p, signal); }
}

/** Wakes everything waiting on it; what they wait for is re-checked by their owners. */
export class Notifier {
  private waiters = new Set<() => void>();
  /** Something changed: resolve every pending `next`. */
  notify(): void {
    if (this.waiters.size === 0) return;
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }
  /** Resolves at the next `notify()`, or when `signal` aborts. */
  next(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return RESOLVED;
    return new Promise((resolve) => {
      const done = () => {
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}

/** Ready while `test()` holds; waits for `notifier` between checks. */
export class ConditionPollable extends Pollable {
  private readonly test: () => boolean;
  private readonly notifier: Notifier;
  constructor(test: () => boolean, notifier: Notifier) {
    super();
    this.test = test;
    this.notifier = notifier;
  }
  ready(): boolean { return this.test(); }
  whenReady(signal: AbortSignal): Promise<void> { return this.test() ? RESOLVED : this.notifier.next(signal); }
}

/** `p`, or earlier when `signal` aborts (for whenReady implementations over shared Promises). */
export function raceAbort(p: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return RESOLVED;
  return new Promise((resolve) => {
    const done = () => { signal.removeEventListener('abort', done); resolve(); };
    signal.addEventListener('abort', done, { once: true });
    p.then(done, done);
  });
}

function readyIndices(list: Pollable[]): Uint32Array | null {
  let out: number[] | null = null;
  for (let i = 0; i < list.length; i++) if (list[i].ready()) (out ??= []).push(i);
  return out === null ? null : Uint32Array.from(out);
}

/** poll: the indices of the ready pollables; a Promise of them when none is ready yet. */
export function pollList(list: Pollable[]): Uint32Array | Promise<Uint32Array> {
  if (list.length === 0) trap('poll-empty-list');
  return readyIndices(list) ?? waitAny(list);
}

async function waitAny(list: Pollable[]): Promise<Uint32Array> {
  const distinct = [...new Set(list)];
  for (;;) {
    const ac = new AbortController();
    try {
      await Promise.race(distinct.map((p) => p.whenReady(ac.signal)));
    } finally {
      ac.abort(); // the others stop waiting (timers cleared, listeners removed)
    }
    const r = readyIndices(list);
    if (r !== null) return r;
  }
}

/** pollable.block: undefined when ready, else a Promise resolved once it is. */
export function blockOn(p: Pollable): undefined | Promise<undefined> {
  return p.ready() ? undefined : waitAny([p]).then(() => undefined);
}

// ---- streams -----------------------------------------------------------

export type StreamError = { tag: 'last-operation-failed'; val: IoError } | { tag: 'closed' };
const CLOSED: StreamError = { tag: 'closed' };

function streamError(e: unknown): StreamError {
  if (e instanceof WasiError && e.code === 'pipe') return CLOSED;
  // a socket whose send side was shut down or whose peer went away: the stream is closed
  const sc = socketCodeOf(e);
  if (sc === 'connection-broken' || sc === 'invalid-state') return CLOSED;
  if ((e as { code?: string } | null)?.code === 'EPIPE') return CLOSED;
  return { tag: 'last-operation-failed', val: IoError.from(e) };
}

const clampLen = (len: bigint, max: number) => (len > BigInt(max) ? max : Number(len));

export class InputStream {
  readonly source: ByteSource;
  private closed = false;
  constructor(source: ByteSource) { this.source = source; }

  /** Non-blocking: what is available now (possibly nothing), or `closed` at the end. */
  read(len: bigint): Result<Uint8Array, StreamError> {
    if (this.closed) return err(CLOSED);
    try {
      const max = clampLen(len, 0x7fffffff);
      const b = this.source.readNow ? this.source.readNow(max) : this.source.readSync(max);
      if (b === null) { this.closed = true; return err(CLOSED); }
      return ok(b);
    } catch (e) {
      return this.fail(e);
    }
  }

  /** Waits for at least one byte (or the end): a Promise when nothing is available yet. */
  blockingRead(len: bigint): Result<Uint8Array, StreamError> | Promise<Result<Uint8Array, StreamError>> {
    const r = this.read(len);
    if (r.tag === 'err' || r.val.length > 0 || len === 0n) return r;
    return readFrom(this.source, clampLen(len, 0x7fffffff)).then((b) => {
      if (b === null) { this.closed = true; return err(CLOSED); }
      return ok(b);
    }, (e) => this.fail(e));
  }

  skip(len: bigint): Result<bigint, StreamError> {
    const r = this.read(len);
    return r.tag === 'ok' ? ok(BigInt(r.val.length)) : r;
  }

  blockingSkip(len: bigint): Result<bigint, StreamError> | Promise<Result<bigint, StreamError>> {
    const r = this.blockingRead(len);
    const count = (x: Result<Uint8Array, StreamError>): Result<bigint, StreamError> => (x.tag === 'ok' ? ok(BigInt(x.val.length)) : x);
    return r instanceof Promise ? r.then(count) : count(r);
  }

  subscribe(): Pollable { return new InputPollable(this); }

  /** For the pollable: a read would not wait. */
  readable(): boolean { return this.closed || this.source.ready(); }
  whenReadable(signal: AbortSignal): Promise<void> {
    return this.closed || !this.source.whenReadable ? RESOLVED : this.source.whenReadable(signal);
  }

  private fail(e: unknown): Result<never, StreamError> {
    if (!isHostError(e)) throw e;
    this.closed = true;
    return err(streamError(e));
  }

  close(): void { this.source.close(); }
}

class InputPollable extends Pollable {
  private readonly s: InputStream;
  constructor(s: InputStream) { super(); this.s = s; }
  ready(): boolean { return this.s.readable(); }
  whenReady(signal: AbortSignal): Promise<void> { return this.s.whenReadable(signal); }
}

/** Bytes an output stream accepts ahead of the sink (check-write's answer when nothing is queued). */
const WRITE_BUDGET = 1 << 20;

/**
 * Writes to a sink without waiting: what the sink does not take at once is
 * queued (at most WRITE_BUDGET bytes) and written in the background. Several
 * output-stream handles of one sink (e.g. each get-stdout) share one queue, so
 * their bytes stay in order.
 */
export class SinkWriter {
  readonly sink: ByteSink;
  private queue: Uint8Array[] = [];
  /** bytes accepted and not yet written */
  queued = 0;
  private pump: Promise<void> | null = null;
  failed: StreamError | null = null;
  /** a flush was requested and the queue has not drained since */
  flushing = false;
  readonly changed = new Notifier();
  constructor(sink: ByteSink) { this.sink = sink; }

  budget(): number { return this.flushing && this.pump !== null ? 0 : Math.max(0, WRITE_BUDGET - this.queued); }

  write(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (this.pump === null) {
      const n = this.sink.writeNow ? this.sink.writeNow(bytes) : (this.sink.writeSync(bytes), bytes.length);
      if (n >= bytes.length) return;
      bytes = bytes.subarray(n);
    }
    // `bytes` may be a view of guest memory (viewsBytes): keep a copy
    this.queue.push(bytes.slice());
    this.queued += bytes.length;
    this.pump ??= this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const b = this.queue[0];
        await writeTo(this.sink, b);
        this.queue.shift();
        this.queued -= b.length;
        this.changed.notify();
      }
    } catch (e) {
      this.failed = streamError(e);
      this.queue = [];
      this.queued = 0;
    } finally {
      this.pump = null;
      this.flushing = false;
      this.changed.notify();
    }
  }

  /** Resolves when everything queued was written (or failed). */
  idle(): Promise<void> | null { return this.pump; }

  close(): void {
    if (this.pump) this.pump.finally(() => this.sink.close());
    else this.sink.close();
  }
}

export class OutputStream {
  readonly writer: SinkWriter;
  private readonly ownsWriter: boolean;
  /** `sink`: a sink of its own (closed with the stream), or a SinkWriter shared with other handles. */
  constructor(sink: ByteSink | SinkWriter) {
    this.ownsWriter = !(sink instanceof SinkWriter);
    this.writer = sink instanceof SinkWriter ? sink : new SinkWriter(sink);
  }

  checkWrite(): Result<bigint, StreamError> {
    const w = this.writer;
    return w.failed ? err(w.failed) : ok(BigInt(w.budget()));
  }

  write(bytes: Uint8Array): Result<undefined, StreamError> {
    const w = this.writer;
    if (w.failed) return err(w.failed);
    try {
      w.write(bytes);
      return ok(undefined);
    } catch (e) {
      if (!isHostError(e)) throw e;
      w.failed = streamError(e);
      return err(w.failed);
    }
  }

  /** Non-blocking: check-write answers 0 until what was written is flushed. */
  flush(): Result<undefined, StreamError> {
    const w = this.writer;
    if (w.failed) return err(w.failed);
    if (w.idle() !== null) w.flushing = true;
    return ok(undefined);
  }

  blockingFlush(): Result<undefined, StreamError> | Promise<Result<undefined, StreamError>> {
    const w = this.writer;
    if (w.failed) return err(w.failed);
    try {
      w.sink.flushSync();
    } catch (e) {
      if (!isHostError(e)) throw e;
      w.failed = streamError(e);
      return err(w.failed);
    }
    const p = w.idle();
    if (p === null) return ok(undefined);
    return p.then(() => (w.failed ? err(w.failed) : ok(undefined)));
  }

  blockingWriteAndFlush(bytes: Uint8Array): Result<undefined, StreamError> | Promise<Result<undefined, StreamError>> {
    const r = this.write(bytes);
    return r.tag === 'ok' ? this.blockingFlush() : r;
  }

  writeZeroes(len: bigint): Result<undefined, StreamError> {
    return this.write(new Uint8Array(clampLen(len, WRITE_BUDGET)));
  }

  blockingWriteZeroesAndFlush(len: bigint): Result<undefined, StreamError> | Promise<Result<undefined, StreamError>> {
    return this.blockingWriteAndFlush(new Uint8Array(clampLen(len, WRITE_BUDGET)));
  }

  /** Non-blocking: moves what `src` has now, at most what check-write allows. */
  splice(src: InputStream, len: bigint): Result<bigint, StreamError> {
    const c = this.checkWrite();
    if (c.tag === 'err') return c;
    const r = src.read(len < c.val ? len : c.val);
    if (r.tag === 'err') return r;
    const w = this.write(r.val);
    return w.tag === 'ok' ? ok(BigInt(r.val.length)) : w;
  }

  /** Waits for room here and for at least one byte from `src` (a Promise only when it has to wait). */
  blockingSplice(src: InputStream, len: bigint): Result<bigint, StreamError> | Promise<Result<bigint, StreamError>> {
    const w = this.writer;
    if (!w.failed && w.budget() === 0) return w.changed.next().then(() => this.blockingSplice(src, len));
    const c = this.checkWrite();
    if (c.tag === 'err') return c;
    const put = (r: Result<Uint8Array, StreamError>): Result<bigint, StreamError> => {
      if (r.tag === 'err') return r;
      const wr = this.write(r.val);
      return wr.tag === 'ok' ? ok(BigInt(r.val.length)) : wr;
    };
    const r = src.blockingRead(len < c.val ? len : c.val);
    return r instanceof Promise ? r.then(put) : put(r);
  }

  subscribe(): Pollable {
    const w = this.writer;
    return new ConditionPollable(() => w.failed !== null || w.budget() > 0, w.changed);
  }

  close(): void {
    if (!this.ownsWriter) return;
    try { this.writer.sink.flushSync(); } catch { /* dropped anyway */ }
    this.writer.close();
  }
}

// ---- the interfaces ----------------------------------------------------

export interface IoResources {
  error: HostResource;
  pollable: HostResource;
  inputStream: HostResource;
  outputStream: HostResource;
}

export function createIoResources(): IoResources {
  return {
    error: new HostResource('error'),
    pollable: new HostResource('pollable'),
    inputStream: new HostResource('input-stream', { drop: (s: InputStream) => s.close() }),
    outputStream: new HostResource('output-stream', { drop: (s: OutputStream) => s.close() }),
  };
}

export function ioImports(r: IoResources, version: string): Record<string, Record<string, unknown>> {
  return {
    [`wasi:io/error@${version}`]: {
      error: r.error,
      '[method]error.to-debug-string': (e: IoError) => e.message,
    },
    [`wasi:io/poll@${version}`]: {
      pollable: r.pollable,
      '[method]pollable.ready': (p: Pollable) => p.ready(),
      '[method]pollable.block': mayBlock((p: Pollable) => blockOn(p)),
      poll: mayBlock((list: Pollable[]) => pollList(list)),
    },
    [`wasi:io/streams@${version}`]: {
      'input-stream': r.inputStream,
      'output-stream': r.outputStream,
      error: r.error,
      pollable: r.pollable,
      '[method]input-stream.read': (s: InputStream, len: bigint) => s.read(len),
      '[method]input-stream.blocking-read': mayBlock((s: InputStream, len: bigint) => s.blockingRead(len)),
      '[method]input-stream.skip': (s: InputStream, len: bigint) => s.skip(len),
      '[method]input-stream.blocking-skip': mayBlock((s: InputStream, len: bigint) => s.blockingSkip(len)),
      '[method]input-stream.subscribe': (s: InputStream) => s.subscribe(),
      '[method]output-stream.check-write': (s: OutputStream) => s.checkWrite(),
      // the bytes are views of guest memory: sinks write them at once, SinkWriter copies what it queues
      '[method]output-stream.write': viewsBytes((s: OutputStream, b: Uint8Array) => s.write(b)),
      '[method]output-stream.blocking-write-and-flush': viewsBytes(mayBlock((s: OutputStream, b: Uint8Array) => s.blockingWriteAndFlush(b))),
      '[method]output-stream.flush': (s: OutputStream) => s.flush(),
      '[method]output-stream.blocking-flush': mayBlock((s: OutputStream) => s.blockingFlush()),
      '[method]output-stream.subscribe': (s: OutputStream) => s.subscribe(),
      '[method]output-stream.write-zeroes': (s: OutputStream, n: bigint) => s.writeZeroes(n),
      '[method]output-stream.blocking-write-zeroes-and-flush': mayBlock((s: OutputStream, n: bigint) => s.blockingWriteZeroesAndFlush(n)),
      '[method]output-stream.splice': (s: OutputStream, src: InputStream, n: bigint) => s.splice(src, n),
      '[method]output-stream.blocking-splice': mayBlock((s: OutputStream, src: InputStream, n: bigint) => s.blockingSplice(src, n)),
    },
  };
}

// wasi:io@0.2 (error, poll, streams) over the core byte sources and sinks.
//
// The runtime has only the synchronous canonical ABI for now, so `block`,
// `poll` and the blocking-* methods block the Node thread (readSync/writeSync,
// Atomics.wait for timers). JSPI: when sync-lowered imports can suspend via
// WebAssembly.Suspending, these become awaits and the event loop keeps running.

import { Trap } from '../../errors.ts';
import { HostResource } from '../../runtime/resources.ts';
import type { Clocks } from '../core/clocks.ts';
import { WasiError, toWasiError, type FsErrorCode } from '../core/errors.ts';
import type { ByteSink, ByteSource } from '../core/streams.ts';

export type Result<T, E> = { tag: 'ok'; val: T } | { tag: 'err'; val: E };
export const ok = <T>(val: T): { tag: 'ok'; val: T } => ({ tag: 'ok', val });
export const err = <E>(val: E): { tag: 'err'; val: E } => ({ tag: 'err', val });

/** wasi:io/error.error: a description for debugging, and the filesystem code when there is one. */
export class IoError {
  readonly message: string;
  readonly code: FsErrorCode | undefined;
  constructor(message: string, code?: FsErrorCode) {
    this.message = message;
    this.code = code;
  }
  static from(e: unknown): IoError {
    const w = toWasiError(e);
    return new IoError(w.code, w.code);
  }
}

// ---- pollables ---------------------------------------------------------

export abstract class Pollable {
  abstract ready(): boolean;
  /** Monotonic deadline (ns) for timer pollables; null when readiness is not time-based. */
  deadline(): bigint | null { return null; }
  abstract block(): void;
}

/** Always ready: files, pipes we write synchronously, stdin (whose read then blocks). */
export class ReadyPollable extends Pollable {
  ready(): boolean { return true; }
  block(): void {}
}

export class TimerPollable extends Pollable {
  private readonly clocks: Clocks;
  private readonly when: bigint;
  constructor(clocks: Clocks, when: bigint) {
    super();
    this.clocks = clocks;
    this.when = when;
  }
  ready(): boolean { return this.clocks.monotonicNow() >= this.when; }
  override deadline(): bigint { return this.when; }
  block(): void { this.clocks.waitUntilSync(this.when); }
}

/** poll: the indices of the ready pollables, blocking until at least one is ready. */
export function pollList(list: Pollable[], clocks: Clocks): Uint32Array {
  if (list.length === 0) throw new Trap('wasi:io/poll.poll: the list of pollables is empty');
  for (;;) {
    const ready: number[] = [];
    let soonest: bigint | null = null;
    for (let i = 0; i < list.length; i++) {
      const p = list[i];
      if (p.ready()) ready.push(i);
      else {
        const d = p.deadline();
        if (d !== null && (soonest === null || d < soonest)) soonest = d;
      }
    }
    if (ready.length > 0) return Uint32Array.from(ready);
    // Only timers can be pending: sleep until the first is due.
    // JSPI: await the soonest timer (or any readiness event) instead.
    if (soonest === null) return Uint32Array.from(list.keys());
    clocks.waitUntilSync(soonest);
  }
}

// ---- streams -----------------------------------------------------------

type StreamError = { tag: 'last-operation-failed'; val: IoError } | { tag: 'closed' };
const CLOSED: StreamError = { tag: 'closed' };

function streamError(e: unknown): StreamError {
  if (e instanceof WasiError && e.code === 'pipe') return CLOSED;
  if ((e as { code?: string } | null)?.code === 'EPIPE') return CLOSED;
  return { tag: 'last-operation-failed', val: IoError.from(e) };
}

/** Convert host failures to stream errors; anything else (ExitSignal, bugs) propagates. */
function isHostFailure(e: unknown): boolean {
  return e instanceof WasiError || typeof (e as { code?: unknown } | null)?.code === 'string' && (e as Error).name !== 'ExitSignal';
}

export class InputStream {
  readonly source: ByteSource;
  private closed = false;
  constructor(source: ByteSource) { this.source = source; }
  read(len: bigint): Result<Uint8Array, StreamError> {
    if (this.closed) return err(CLOSED);
    try {
      const max = len > 0x7fffffffn ? 0x7fffffff : Number(len);
      const b = this.source.readSync(max);
      if (b === null) { this.closed = true; return err(CLOSED); }
      return ok(b);
    } catch (e) {
      if (!isHostFailure(e)) throw e;
      this.closed = true;
      return err(streamError(e));
    }
  }
  skip(len: bigint): Result<bigint, StreamError> {
    const r = this.read(len);
    return r.tag === 'ok' ? ok(BigInt(r.val.length)) : r;
  }
  close(): void { this.source.close(); }
}

/** Bytes an output stream accepts in one write (check-write's answer). */
const WRITE_BUDGET = 1n << 20n;

export class OutputStream {
  readonly sink: ByteSink;
  private failed: StreamError | null = null;
  constructor(sink: ByteSink) { this.sink = sink; }
  checkWrite(): Result<bigint, StreamError> {
    return this.failed ? err(this.failed) : ok(WRITE_BUDGET);
  }
  write(bytes: Uint8Array): Result<undefined, StreamError> {
    if (this.failed) return err(this.failed);
    try {
      this.sink.writeSync(bytes);
      return ok(undefined);
    } catch (e) {
      if (!isHostFailure(e)) throw e;
      this.failed = streamError(e);
      return err(this.failed);
    }
  }
  flush(): Result<undefined, StreamError> {
    if (this.failed) return err(this.failed);
    try {
      this.sink.flushSync();
      return ok(undefined);
    } catch (e) {
      if (!isHostFailure(e)) throw e;
      this.failed = streamError(e);
      return err(this.failed);
    }
  }
  writeZeroes(len: bigint): Result<undefined, StreamError> {
    if (len > WRITE_BUDGET) len = WRITE_BUDGET;
    return this.write(new Uint8Array(Number(len)));
  }
  splice(src: InputStream, len: bigint): Result<bigint, StreamError> {
    if (this.failed) return err(this.failed);
    const r = src.read(len > WRITE_BUDGET ? WRITE_BUDGET : len);
    if (r.tag === 'err') return r;
    const w = this.write(r.val);
    return w.tag === 'ok' ? ok(BigInt(r.val.length)) : w;
  }
  close(): void {
    try { this.sink.flushSync(); } catch { /* dropped anyway */ }
    this.sink.close();
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

const READY = new ReadyPollable();

export function ioImports(r: IoResources, clocks: Clocks, version: string): Record<string, Record<string, unknown>> {
  return {
    [`wasi:io/error@${version}`]: {
      error: r.error,
      '[method]error.to-debug-string': (e: IoError) => e.message,
    },
    [`wasi:io/poll@${version}`]: {
      pollable: r.pollable,
      '[method]pollable.ready': (p: Pollable) => p.ready(),
      '[method]pollable.block': (p: Pollable) => p.block(),
      poll: (list: Pollable[]) => pollList(list, clocks),
    },
    [`wasi:io/streams@${version}`]: {
      'input-stream': r.inputStream,
      'output-stream': r.outputStream,
      error: r.error,
      pollable: r.pollable,
      '[method]input-stream.read': (s: InputStream, len: bigint) => s.read(len),
      // JSPI: blocking-read suspends instead of blocking the thread.
      '[method]input-stream.blocking-read': (s: InputStream, len: bigint) => s.read(len),
      '[method]input-stream.skip': (s: InputStream, len: bigint) => s.skip(len),
      '[method]input-stream.blocking-skip': (s: InputStream, len: bigint) => s.skip(len),
      '[method]input-stream.subscribe': (_s: InputStream) => READY,
      '[method]output-stream.check-write': (s: OutputStream) => s.checkWrite(),
      '[method]output-stream.write': (s: OutputStream, b: Uint8Array) => s.write(b),
      '[method]output-stream.blocking-write-and-flush': (s: OutputStream, b: Uint8Array) => {
        const r1 = s.write(b);
        return r1.tag === 'ok' ? s.flush() : r1;
      },
      '[method]output-stream.flush': (s: OutputStream) => s.flush(),
      '[method]output-stream.blocking-flush': (s: OutputStream) => s.flush(),
      '[method]output-stream.subscribe': (_s: OutputStream) => READY,
      '[method]output-stream.write-zeroes': (s: OutputStream, n: bigint) => s.writeZeroes(n),
      '[method]output-stream.blocking-write-zeroes-and-flush': (s: OutputStream, n: bigint) => {
        const r1 = s.writeZeroes(n);
        return r1.tag === 'ok' ? s.flush() : r1;
      },
      '[method]output-stream.splice': (s: OutputStream, src: InputStream, n: bigint) => s.splice(src, n),
      '[method]output-stream.blocking-splice': (s: OutputStream, src: InputStream, n: bigint) => s.splice(src, n),
    },
  };
}

// Byte sources and sinks behind stdio and file streams. The p2 bindings wrap
// them as input-stream / output-stream resources; p3 will wrap the same
// objects as stream<u8>.

import { fstatSync, read, readSync, writeSync } from 'node:fs';
// node:net and node:tty (with node's whole stream stack) are loaded only when a
// pipe or terminal is read: loading them costs every `weir run` several ms.
import type { Socket } from 'node:net';
import { sleepSyncMs } from './block.ts';
import { WasiError, toWasiError } from './errors.ts';

/** Largest single read handed to a guest. */
export const MAX_READ = 1 << 20;

export interface ByteSource {
  /** Read up to `max` bytes, blocking until at least one is available; null at end of stream. */
  readSync(max: number): Uint8Array | null;
  /** Whether a read would return without blocking (true when unknown). */
  ready(): boolean;
  close(): void;
  /**
   * Read up to `max` bytes without blocking the thread: resolves when at least
   * one byte is available, null at end of stream. Absent: use readSync.
   * At most one read is outstanding at a time.
   */
  read?(max: number): Promise<Uint8Array | null>;
  /**
   * Read without waiting (WASI 0.2's non-blocking `read`): up to `max` bytes
   * that are available now — an empty array when none are —, null at end of
   * stream. Absent: readSync does not wait for long (files, buffers).
   */
  readNow?(max: number): Uint8Array | null;
  /**
   * Resolves (never rejects) once `ready()` holds: data, end of stream or an
   * error to report. An aborted `signal` abandons the wait. Absent: always ready.
   */
  whenReadable?(signal?: AbortSignal): Promise<void>;
}

/**
 * A sink never keeps `bytes` once a write returned or its Promise settled: the
 * caller may reuse the array (pumpToSink does), or it may be a view of guest
 * memory (WASI 0.2 output-stream writes). A sink that keeps them copies them.
 */
export interface ByteSink {
  /** Write all of `bytes` (blocking). */
  writeSync(bytes: Uint8Array): void;
  flushSync(): void;
  close(): void;
  /** Write all of `bytes` without blocking the thread on a full pipe. Absent: use writeSync. */
  write?(bytes: Uint8Array): Promise<void>;
  /**
   * Write as much of `bytes` as the sink takes without waiting; returns how
   * many bytes were written (fewer than `bytes.length` when a non-blocking
   * pipe is full: hand the rest to `write`). Absent: writeSync does not wait
   * for long (callbacks, files).
   */
  writeNow?(bytes: Uint8Array): number;
}

/** Read from a source, asynchronously when it can. */
export function readFrom(s: ByteSource, max: number): Promise<Uint8Array | null> {
  if (s.read) return s.read(max);
  try {
    return Promise.resolve(s.readSync(max));
  } catch (e) {
    return Promise.reject(e);
  }
}

/** Write to a sink, asynchronously when it can. */
export function writeTo(s: ByteSink, bytes: Uint8Array): Promise<void> {
  if (s.write) return s.write(bytes);
  try {
    s.writeSync(bytes);
    return Promise.resolve();
  } catch (e) {
    return Promise.reject(e);
  }
}

const EAGAIN_RETRY_MS = 1;
const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function retryEagain<T>(f: () => T): T {
  for (;;) {
    try {
      return f();
    } catch (e) {
      // Non-blocking descriptors (a TTY or pipe Node set O_NONBLOCK on): wait and retry.
      // Only the synchronous readSync/writeSync use this; the WASI bindings read and write through
      // readNow/whenReadable/read and writeNow/write, which never put the thread to sleep.
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') { sleepSyncMs(1); continue; }
      throw e;
    }
  }
}

/** Reads a host file descriptor, at a tracked position (files) or sequentially (pipes, ttys). */
export class FdSource implements ByteSource {
  fd: number;
  position: bigint | null;
  private readonly onClose: (() => void) | null;
  private readonly alive: (() => boolean) | null;
  private closed = false;
  /**
   * `onClose` runs once when the stream is closed (e.g. releases the descriptor's fd);
   * `alive` says whether `fd` is still the file it was (false once the host closed it).
   */
  constructor(fd: number, position: bigint | null, onClose: (() => void) | null = null, alive: (() => boolean) | null = null) {
    this.fd = fd;
    this.position = position;
    this.onClose = onClose;
    this.alive = alive;
  }
  readSync(max: number): Uint8Array | null {
    if (this.closed) return null;
    if (this.alive && !this.alive()) throw new WasiError('bad-descriptor');
    const n = Math.min(Math.max(max, 0), MAX_READ);
    if (n === 0) return new Uint8Array(0);
    const buf = new Uint8Array(n);
    let got: number;
    try {
      got = retryEagain(() => readSync(this.fd, buf, 0, n, this.position));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EOF') return null;
      throw toWasiError(e);
    }
    if (got === 0) return null;
    if (this.position !== null) this.position += BigInt(got);
    return got === n ? buf : buf.subarray(0, got);
  }
  /** Pipes, sockets and terminals are ready when data (or their end) arrived; files always are. */
  ready(): boolean {
    if (this.closed) return true;
    const p = this.pipeReader();
    return p === null || p.readable();
  }

  /** For fds that are pipes, sockets or terminals: a paused socket over the fd, read on demand. */
  private pipe: PipeReader | null | undefined;

  private pipeReader(): PipeReader | null {
    if (this.position !== null) return null;
    if (this.pipe === undefined) this.pipe = PipeReader.forFd(this.fd);
    return this.pipe;
  }

  readNow(max: number): Uint8Array | null {
    if (this.closed) return null;
    const p = this.pipeReader();
    if (p === null) return this.readSync(max);
    if (this.alive && !this.alive()) throw new WasiError('bad-descriptor');
    return p.readNow(Math.min(Math.max(max, 0), MAX_READ));
  }

  whenReadable(signal?: AbortSignal): Promise<void> {
    const p = this.closed ? null : this.pipeReader();
    return p === null ? Promise.resolve() : p.whenReadable(signal);
  }

  read(max: number): Promise<Uint8Array | null> {
    if (this.closed) return Promise.resolve(null);
    if (this.alive && !this.alive()) return Promise.reject(new WasiError('bad-descriptor'));
    const n = Math.min(Math.max(max, 0), MAX_READ);
    if (n === 0) return Promise.resolve(new Uint8Array(0));
    const pipe = this.pipeReader();
    if (pipe !== null) return pipe.read(n);
    const buf = new Uint8Array(n);
    const pos = this.position;
    return new Promise((resolve, reject) => {
      read(this.fd, buf, 0, n, pos, (e, got) => {
        if (e) {
          if (e.code === 'EAGAIN') { delay(EAGAIN_RETRY_MS).then(() => this.read(max)).then(resolve, reject); return; }
          if (e.code === 'EOF') { resolve(null); return; }
          reject(toWasiError(e));
          return;
        }
        if (got === 0) { resolve(null); return; }
        if (this.position !== null) this.position += BigInt(got);
        resolve(got === n ? buf : buf.subarray(0, got));
      });
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pipe?.release();
    this.onClose?.();
  }
}

/** How much a pipe reader may buffer ahead of the guest (keeps the pipe flowing while the guest works). */
const PIPE_READ_AHEAD = 1 << 20;

/**
 * Reads a pipe, socket or terminal fd through a paused net.Socket, so that a
 * pending read neither blocks a thread-pool thread nor keeps the process
 * alive once nobody waits for it (the socket is ref'd only while a read is
 * pending). Reads ahead at most the socket's high-water mark.
 */
class PipeReader {
  private readonly sock: Socket;
  private ended = false;
  private error: unknown = null;
  private leftover: Uint8Array | null = null;
  /** pending reads and readiness waits, woken together (each re-checks) */
  private waiters = new Set<() => void>();
  /** waits in progress; the socket is ref'd while there are any */
  private refs = 0;

  static forFd(fd: number): PipeReader | null {
    let st;
    try { st = fstatSync(fd); } catch { return null; }
    const tty = process.getBuiltinModule('node:tty');
    if (tty.isatty(fd)) return new PipeReader(new tty.ReadStream(fd));
    if (st.isFIFO() || st.isSocket()) {
      // net.Socket passes the options on to stream.Duplex, which takes readableHighWaterMark.
      const opts = { fd, readable: true, writable: false, readableHighWaterMark: PIPE_READ_AHEAD };
      const { Socket } = process.getBuiltinModule('node:net');
      return new PipeReader(new Socket(opts as ConstructorParameters<typeof Socket>[0]));
    }
    return null;
  }

  private constructor(sock: Socket) {
    this.sock = sock;
    sock.pause();
    sock.unref();
    const wake = () => {
      if (this.waiters.size === 0) return;
      const ws = [...this.waiters];
      this.waiters.clear();
      for (const w of ws) w();
    };
    sock.on('readable', wake);
    sock.on('end', () => { this.ended = true; wake(); });
    sock.on('error', (e) => { this.error = e; this.ended = true; wake(); });
    sock.on('close', () => { this.ended = true; wake(); });
  }

  async read(n: number): Promise<Uint8Array | null> {
    for (;;) {
      let chunk = this.leftover;
      this.leftover = null;
      if (chunk === null) {
        const b = this.take(n);
        if (b !== null) chunk = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
      }
      if (chunk !== null && chunk.length > 0) {
        if (chunk.length > n) { this.leftover = chunk.subarray(n); chunk = chunk.subarray(0, n); }
        return chunk;
      }
      if (this.error) throw toWasiError(this.error);
      if (this.ended) return null;
      await this.wait(undefined);
    }
  }

  /**
   * At most `n` buffered bytes, or null when none are buffered. Asking for no
   * more than is buffered returns a slice of the first chunk when it is big
   * enough (read() without a size would concatenate everything buffered).
   */
  private take(n: number): Uint8Array | null {
    const len = this.sock.readableLength;
    if (len === 0) return this.sock.read() as Buffer | null; // lets the stream notice its end
    return this.sock.read(Math.min(n, len)) as Buffer | null;
  }

  /** Bytes available now (empty when none), null at the end. */
  readNow(n: number): Uint8Array | null {
    let chunk = this.leftover;
    this.leftover = null;
    if (chunk === null || chunk.length === 0) {
      const b = this.take(n);
      chunk = b === null ? null : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    }
    if (chunk !== null && chunk.length > 0) {
      if (chunk.length > n) { this.leftover = chunk.subarray(n); chunk = chunk.subarray(0, n); }
      return chunk;
    }
    if (this.error) throw toWasiError(this.error);
    if (this.ended) return null;
    return new Uint8Array(0);
  }

  /** A read would not wait: data buffered, or the end (or an error) reached. */
  readable(): boolean {
    return (this.leftover !== null && this.leftover.length > 0) || this.sock.readableLength > 0 || this.ended || this.error !== null;
  }

  whenReadable(signal?: AbortSignal): Promise<void> {
    if (this.readable()) return Promise.resolve();
    return this.wait(signal);
  }

  /** Resolves at the next 'readable', end, error or close (or when `signal` aborts); keeps the process alive meanwhile. */
  private wait(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        if (--this.refs === 0) this.sock.unref();
        resolve();
      };
      if (this.refs++ === 0) this.sock.ref();
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Stop reading (the fd itself stays open: it belongs to whoever configured it). */
  release(): void {
    this.sock.pause();
    this.sock.unref();
  }
}

/** A fixed buffer as a source (stdin given as bytes or a string). */
export class BufferSource implements ByteSource {
  private data: Uint8Array;
  private off = 0;
  constructor(data: Uint8Array) { this.data = data; }
  readSync(max: number): Uint8Array | null {
    if (this.off >= this.data.length) return null;
    const end = Math.min(this.data.length, this.off + Math.max(0, Math.min(max, MAX_READ)));
    const out = this.data.slice(this.off, end);
    this.off = end;
    return out;
  }
  ready(): boolean { return true; }
  read(max: number): Promise<Uint8Array | null> { return Promise.resolve(this.readSync(max)); }
  close(): void { this.off = this.data.length; }
}

/** Writes to a host file descriptor, at a position (files), appending, or sequentially. */
export class FdSink implements ByteSink {
  fd: number;
  /** bigint: positional writes; null: the fd's own offset (pipes, ttys); 'append': at the current end. */
  position: bigint | null | 'append';
  private readonly onClose: (() => void) | null;
  private readonly alive: (() => boolean) | null;
  private closed = false;
  constructor(fd: number, position: bigint | null | 'append', onClose: (() => void) | null = null, alive: (() => boolean) | null = null) {
    this.fd = fd;
    this.position = position;
    this.onClose = onClose;
    this.alive = alive;
  }
  /** Writes everything, blocking the thread while a non-blocking pipe is full (EAGAIN). */
  writeSync(bytes: Uint8Array): void {
    for (let off = this.writeNow(bytes); off < bytes.length; off += this.writeNow(bytes.subarray(off))) sleepSyncMs(EAGAIN_RETRY_MS);
  }
  /** Writes what the fd takes now; stops at EAGAIN and returns how many bytes went out. */
  writeNow(bytes: Uint8Array): number {
    if (this.closed) throw new WasiError('pipe');
    if (this.alive && !this.alive()) throw new WasiError('bad-descriptor');
    let off = 0;
    try {
      let pos = this.position === 'append' ? fstatSync(this.fd, { bigint: true }).size : this.position;
      while (off < bytes.length) {
        let n: number;
        try {
          n = writeSync(this.fd, bytes, off, bytes.length - off, pos === null ? null : Number(pos));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
          throw e;
        }
        off += n;
        if (pos !== null) pos += BigInt(n);
      }
      if (this.position !== 'append') this.position = pos;
    } catch (e) {
      throw toWasiError(e);
    }
    return off;
  }

  /** Like writeSync, but a full non-blocking pipe (EAGAIN) waits on a timer instead of blocking the thread. */
  async write(bytes: Uint8Array): Promise<void> {
    for (let off = this.writeNow(bytes); off < bytes.length; off += this.writeNow(bytes.subarray(off))) await delay(EAGAIN_RETRY_MS);
  }
  flushSync(): void {}
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose?.();
  }
}

/** Hands every write to a callback (stdout/stderr captured by an embedder). */
export class CallbackSink implements ByteSink {
  private readonly fn: (chunk: Uint8Array) => void;
  constructor(fn: (chunk: Uint8Array) => void) { this.fn = fn; }
  writeSync(bytes: Uint8Array): void { this.fn(bytes.slice()); }
  flushSync(): void {}
  close(): void {}
}

export class NullSink implements ByteSink {
  writeSync(): void {}
  flushSync(): void {}
  close(): void {}
}

export const EMPTY_SOURCE: ByteSource = { readSync: () => null, read: () => Promise.resolve(null), readNow: () => null, ready: () => true, close() {} };

// Byte sources and sinks behind stdio and file streams. The p2 bindings wrap
// them as input-stream / output-stream resources; p3 will wrap the same
// objects as stream<u8>.

import { fstatSync, readSync, writeSync } from 'node:fs';
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
}

export interface ByteSink {
  /** Write all of `bytes` (blocking). */
  writeSync(bytes: Uint8Array): void;
  flushSync(): void;
  close(): void;
}

function retryEagain<T>(f: () => T): T {
  for (;;) {
    try {
      return f();
    } catch (e) {
      // Non-blocking descriptors (a TTY or pipe Node set O_NONBLOCK on): wait and retry.
      // JSPI: this becomes an await on readiness instead of a sleep.
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
  ready(): boolean { return true; }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose?.();
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
  writeSync(bytes: Uint8Array): void {
    if (this.closed) throw new WasiError('pipe');
    if (this.alive && !this.alive()) throw new WasiError('bad-descriptor');
    let off = 0;
    try {
      let pos = this.position === 'append' ? fstatSync(this.fd, { bigint: true }).size : this.position;
      while (off < bytes.length) {
        const p = pos;
        const n = retryEagain(() => writeSync(this.fd, bytes, off, bytes.length - off, p === null ? null : Number(p)));
        off += n;
        if (pos !== null) pos += BigInt(n);
      }
      if (this.position !== 'append') this.position = pos;
    } catch (e) {
      throw toWasiError(e);
    }
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

export const EMPTY_SOURCE: ByteSource = { readSync: () => null, ready: () => true, close() {} };

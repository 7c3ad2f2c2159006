// The host's ends of streams and futures: a guest stream<T> seen by the host
// is a web ReadableStream (stream<u8> → ReadableStream<Uint8Array>, or a
// GuestByteStream for `streamHandles` functions), a future<T> is a Promise<T>;
// the host may hand the guest a ReadableStream or any AsyncIterable for a
// stream, and any thenable for a future. They live in the runtime because
// lowering a value into a guest (handle ops lowerStream/lowerFuture) accepts
// these host values directly.

import type { ComponentInstanceState } from './instance.ts';
import { store } from './task.ts';
import {
  CopyResult, HostByteBuffer, HostWritableBuffer, SharedFutureImpl, SharedStreamImpl,
  type Elem, type OnCopy, type OnCopyDone, type SharedFuture, type SharedStream, type WritableBuffer,
} from './streams.ts';

/** ReadableStreams created for guest streams, so passing one back to a guest reuses the guest stream. */
const jsStreamShared = new WeakMap<object, { shared: SharedStream; used: boolean; close: () => void }>();

/** Capacity (elements) of one host read of a guest stream. */
function hostReadCapacity(t: Elem): number {
  return t !== null && t.kind === 'u8' ? 1 << 20 : 1024;
}

/** A guest stream (its readable end, now owned by the host) as a web ReadableStream. */
export function guestStreamToJs(shared: SharedStream, toJs: (v: unknown) => unknown): ReadableStream<unknown> {
  const t = shared.t;
  const isBytes = t !== null && t.kind === 'u8';
  let open = true;
  store.hostOps++;
  const close = () => { if (open) { open = false; store.hostOps--; store.progress++; store.schedule(); } };
  let entry: { shared: SharedStream; used: boolean; close: () => void } | null = null;
  const rs = new ReadableStream<unknown>({
    pull(controller) {
      if (entry) entry.used = true;
      return new Promise<void>((resolve) => {
        const buf = new HostWritableBuffer(t, hostReadCapacity(t));
        const flush = () => {
          for (const c of buf.chunks) {
            if (isBytes) controller.enqueue(c);
            else for (let i = 0; i < c.length; i++) controller.enqueue(t === null ? undefined : toJs((c as unknown[])[i]));
          }
          buf.chunks.length = 0;
        };
        shared.read(null, buf, (reclaim) => {
          reclaim();
          flush();
          resolve();
        }, (result) => {
          flush();
          if (result === CopyResult.DROPPED) {
            controller.close();
            shared.drop();
            close();
          }
          resolve();
        });
        store.schedule();
      });
    },
    cancel() {
      shared.cancel?.();
      shared.drop();
      close();
    },
  }, { highWaterMark: 0 });
  entry = { shared, used: false, close };
  jsStreamShared.set(rs, entry);
  return rs;
}

interface Pull { done: boolean; value?: unknown }

/** The host's writable side of a stream given to a guest: a ReadableStream or an AsyncIterable, pulled on demand. */
export class HostStreamSource implements SharedStream {
  readonly t: Elem;
  next: () => Promise<Pull>;
  stop: () => void;
  leftover: ArrayLike<unknown> | null = null;
  loff = 0;
  ended = false;
  dropped = false;
  pulling = false;
  pendingDst: WritableBuffer | null = null;
  pendingOnCopyDone: OnCopyDone | null = null;

  constructor(t: Elem, src: unknown) {
    this.t = t;
    if (typeof ReadableStream !== 'undefined' && src instanceof ReadableStream) {
      const reader = src.getReader();
      this.next = () => reader.read() as Promise<Pull>;
      this.stop = () => { reader.cancel().catch(() => {}); };
    } else if (src !== null && typeof src === 'object' && typeof (src as any)[Symbol.asyncIterator] === 'function') {
      const it = (src as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      this.next = () => it.next() as Promise<Pull>;
      this.stop = () => { void Promise.resolve(it.return?.()).catch(() => {}); };
    } else if (src !== null && typeof src === 'object' && typeof (src as any)[Symbol.iterator] === 'function') {
      const it = (src as Iterable<unknown>)[Symbol.iterator]();
      this.next = () => Promise.resolve(it.next() as Pull);
      this.stop = () => { it.return?.(); };
    } else {
      throw new TypeError(`expected a ReadableStream or an AsyncIterable for a stream, got ${src === null ? 'null' : typeof src}`);
    }
  }

  private chunkOf(v: unknown): ArrayLike<unknown> {
    const t = this.t;
    if (t !== null && t.kind === 'u8') {
      if (v instanceof Uint8Array) return v;
      if (v instanceof ArrayBuffer) return new Uint8Array(v);
      if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      if (typeof v === 'number') return [v];
      if (Array.isArray(v)) return v;
      throw new TypeError('expected Uint8Array chunks for a stream<u8>');
    }
    return [v];
  }

  /** Copy what is available into `dst`; true when the read completed. */
  private fill(dst: WritableBuffer): boolean {
    const lo = this.leftover;
    if (lo === null) return false;
    const avail = lo.length - this.loff;
    const n = Math.min(avail, dst.remain());
    if (n > 0) {
      const part = lo instanceof Uint8Array ? lo.subarray(this.loff, this.loff + n)
        : Array.prototype.slice.call(lo, this.loff, this.loff + n);
      dst.write(part);
      this.loff += n;
    }
    if (this.loff >= lo.length) { this.leftover = null; this.loff = 0; }
    return n > 0 || dst.isZeroLength();
  }

  private pull(): void {
    if (this.pulling || this.ended) return;
    this.pulling = true;
    store.hostOps++;
    this.next().then((r) => {
      this.pulling = false;
      store.hostOps--; store.progress++;
      if (r.done) this.ended = true;
      else {
        const c = this.chunkOf(r.value);
        if (c.length > 0) { this.leftover = c; this.loff = 0; }
      }
      this.deliver();
      store.schedule();
    }, () => {
      this.pulling = false;
      store.hostOps--; store.progress++;
      this.ended = true;
      this.deliver();
      store.schedule();
    });
  }

  private deliver(): void {
    const dst = this.pendingDst;
    if (dst === null) return;
    if (this.fill(dst)) { this.finish(CopyResult.COMPLETED); return; }
    if (this.ended && this.leftover === null) { this.finish(CopyResult.DROPPED); return; }
    this.pull();
  }

  private finish(result: number): void {
    const f = this.pendingOnCopyDone!;
    this.pendingDst = null;
    this.pendingOnCopyDone = null;
    f(result);
  }

  read(_inst: ComponentInstanceState | null, dst: WritableBuffer, _onCopy: OnCopy, onCopyDone: OnCopyDone): void {
    if (this.fill(dst)) { onCopyDone(CopyResult.COMPLETED); return; }
    if (this.ended && this.leftover === null) { onCopyDone(CopyResult.DROPPED); return; }
    this.pendingDst = dst;
    this.pendingOnCopyDone = onCopyDone;
    this.pull();
  }

  write(): void { throw new Error('internal: the host owns the writable end'); }

  cancel(): void { if (this.pendingDst) this.finish(CopyResult.CANCELLED); }

  drop(): void {
    if (this.dropped) return;
    this.dropped = true;
    this.stop();
  }
}

const EMPTY_BYTES = new Uint8Array(0);

function concatBytes(cs: Uint8Array[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of cs) { out.set(c, o); o += c.length; }
  return out;
}

/**
 * Reads a guest stream<u8> for the host into arrays the host provides, without
 * a web ReadableStream in between (see takeGuestByteStream).
 */
export class GuestByteReader {
  private readonly shared: SharedStream;
  private readonly close: () => void;
  private ended = false;
  constructor(shared: SharedStream, close: () => void) { this.shared = shared; this.close = close; }

  /** Copies what the guest writes next into `into`: resolves to the byte count, or null once the guest dropped its end. */
  read(into: Uint8Array): Promise<number | null> {
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => {
      const buf = new HostByteBuffer(this.shared.t, into);
      this.shared.read(null, buf, (reclaim) => {
        reclaim();
        resolve(buf.progress);
      }, (result) => {
        if (result === CopyResult.DROPPED) {
          this.ended = true;
          this.shared.drop();
          this.close();
          resolve(buf.progress > 0 ? buf.progress : null);
          return;
        }
        resolve(buf.progress);
      });
      store.schedule();
    });
  }

  /**
   * Takes the next bytes the guest writes (at most `max`) as a new array of
   * exactly that length, for a consumer that keeps them (a socket write):
   * `cb(bytes)`, or `cb(null)` once the guest dropped its end. No Promise:
   * `cb` runs synchronously when the guest was already waiting in a write.
   * `pooled`: a small chunk may be a view into a shared slab (for a consumer
   * that only writes it out, e.g. to a socket: see HostWritableBuffer.pooled).
   */
  take(max: number, cb: (bytes: Uint8Array | null) => void, pooled = false): void {
    if (this.ended) { cb(null); return; }
    // One buffer and one pair of callbacks per reader, reused by every take (at most one is outstanding,
    // and the stream lets go of the buffer before it calls back).
    let buf = this.takeBuf;
    if (buf === null) buf = this.takeBuf = new HostWritableBuffer(this.shared.t, max);
    else { buf.capacity = max; buf.progress = 0; buf.chunks.length = 0; }
    buf.pooled = pooled;
    this.takeCb = cb;
    this.shared.read(null, buf, this.onTakeCopy, this.onTakeDone);
    store.schedule();
  }

  private takeBuf: HostWritableBuffer | null = null;
  private takeCb: ((bytes: Uint8Array | null) => void) | null = null;
  private readonly onTakeCopy = (reclaim: () => void): void => { reclaim(); this.delivered(); };
  private readonly onTakeDone = (result: number): void => {
    if (result === CopyResult.DROPPED) {
      this.ended = true;
      this.shared.drop();
      this.close();
    }
    this.delivered();
  };
  private delivered(): void {
    const cb = this.takeCb!;
    this.takeCb = null;
    const buf = this.takeBuf!;
    const cs = buf.chunks;
    if (cs.length === 0) { cb(this.ended ? null : EMPTY_BYTES); return; }
    const bytes = cs.length === 1 ? cs[0] as Uint8Array : concatBytes(cs as Uint8Array[], buf.progress);
    cs.length = 0;
    cb(bytes);
  }

  /** The host stops reading: the guest sees its stream dropped. */
  cancel(): void {
    if (this.ended) return;
    this.ended = true;
    this.shared.cancel();
    this.shared.drop();
    this.close();
  }
}

/**
 * A guest stream<u8> as a host function marked with `streamHandles` receives
 * it: a light stand-in for the web ReadableStream guestStreamToJs makes (one
 * per HTTP message otherwise). It is an AsyncIterable of the bytes (read once);
 * handed back to a guest it passes the guest stream on unchanged, and
 * takeGuestByteStream reads it directly.
 */
export class GuestByteStream implements AsyncIterable<Uint8Array> {
  readonly shared: SharedStream;
  /** read, passed on or cancelled: nobody else may use it */
  used = false;
  private open = true;
  constructor(shared: SharedStream) {
    this.shared = shared;
    store.hostOps++;
  }
  get locked(): boolean { return this.used; }
  /** The host's end is finished with (the guest stream was dropped or passed on). */
  readonly close = (): void => {
    if (this.open) { this.open = false; store.hostOps--; store.progress++; store.schedule(); }
  };
  /** Drop the stream unread: the guest sees its readable end dropped. */
  cancel(): void {
    if (this.used) return;
    this.used = true;
    this.shared.cancel();
    this.shared.drop();
    this.close();
  }
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.used) throw new TypeError('the stream was already read or passed on');
    this.used = true;
    const reader = new GuestByteReader(this.shared, this.close);
    const END: IteratorResult<Uint8Array> = { done: true, value: undefined };
    return {
      next: () => new Promise((resolve) => {
        reader.take(hostReadCapacity(this.shared.t), (b) => resolve(b === null ? END : { done: false, value: b }));
      }),
      return: () => { reader.cancel(); return Promise.resolve(END); },
    };
  }
}

/**
 * The guest stream<u8> behind `rs` when `rs` is a ReadableStream made by
 * guestStreamToJs (or a GuestByteStream) that nobody has read or locked yet:
 * the caller then reads it directly (and `rs` is locked). Null for any other value.
 */
export function takeGuestByteStream(rs: unknown): GuestByteReader | null {
  if (rs instanceof GuestByteStream) {
    if (rs.used) return null;
    rs.used = true;
    return new GuestByteReader(rs.shared, rs.close);
  }
  if (rs === null || typeof rs !== 'object') return null;
  const e = jsStreamShared.get(rs);
  if (!e || e.used || (rs as ReadableStream).locked) return null;
  const t = e.shared.t;
  if (t === null || t.kind !== 'u8') return null;
  e.used = true;
  (rs as ReadableStream).getReader(); // nobody else reads it now
  return new GuestByteReader(e.shared, e.close);
}

/** A host value given to a guest as a stream: our own ReadableStream of a guest stream passes the guest stream on. */
export function hostToSharedStream(t: Elem, v: unknown): SharedStream {
  if (v instanceof SharedStreamImpl || v instanceof HostStreamSource) return v;
  if (v instanceof GuestByteStream && !v.used) {
    v.used = true;
    v.close();
    return v.shared;
  }
  if (v !== null && typeof v === 'object') {
    const e = jsStreamShared.get(v);
    if (e && !e.used && !(v as ReadableStream).locked) {
      e.used = true;
      e.close();
      return e.shared;
    }
  }
  return new HostStreamSource(t, v);
}

/** What GuestFutureValue.deliverTo reports to. */
export interface FutureValueSink { futureValue(v: unknown): void }

/**
 * A guest future as a `streamHandles` host function receives it: read at
 * once, as guestFutureToJs does, but a thenable whose Promise is made only
 * when a host calls `then`; `deliverTo` hands the value to an object instead
 * (always after the current call stack, as a Promise reaction would).
 */
export class GuestFutureValue implements PromiseLike<unknown> {
  private settled = false;
  private value: unknown = undefined;
  private waiting: FutureValueSink[] | null = null;
  private promise: Promise<unknown> | null = null;
  constructor(shared: SharedFuture, toJs: (v: unknown) => unknown) {
    readGuestFuture(shared, toJs, (v) => this.settle(v));
  }
  private settle(v: unknown): void {
    this.settled = true;
    this.value = v;
    if (this.waiting !== null) queueMicrotask(this.flush);
  }
  private readonly flush = (): void => {
    const ws = this.waiting;
    this.waiting = null;
    if (ws !== null) for (const w of ws) w.futureValue(this.value);
  };
  /** `sink.futureValue(value)` once the guest wrote it (never if it dropped the future unwritten). */
  deliverTo(sink: FutureValueSink): void {
    const first = this.waiting === null;
    (this.waiting ??= []).push(sink);
    if (this.settled && first) queueMicrotask(this.flush);
  }
  then<A = unknown, B = never>(ok?: ((v: unknown) => A | PromiseLike<A>) | null, fail?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    if (this.promise === null) this.promise = new Promise((r) => { this.deliverTo({ futureValue: r }); });
    return this.promise.then(ok, fail);
  }
}

/** A guest future (its readable end, now owned by the host) as a Promise. */
export function guestFutureToJs(shared: SharedFuture, toJs: (v: unknown) => unknown): Promise<unknown> {
  return new Promise((resolve) => { readGuestFuture(shared, toJs, resolve); });
}

/**
 * The host's one read of a guest future: `got` gets the value (converted by
 * `toJs`) once the guest wrote it, never if it dropped the future unwritten.
 * A pending host read counts as progress that may come (deadlock detection).
 */
function readGuestFuture(shared: SharedFuture, toJs: (v: unknown) => unknown, got: (v: unknown) => void): void {
  const buf = new HostWritableBuffer(shared.t, 1);
  store.hostOps++;
  shared.read(null, buf, (result) => {
    store.hostOps--; store.progress++;
    if (result === CopyResult.COMPLETED) {
      const c = buf.chunks[0];
      got(shared.t === null ? undefined : toJs(c ? c[0] : undefined));
    }
  });
  store.schedule();
}

/**
 * A future the host settles by calling `resolve` (no Promise, no reaction):
 * handed to a guest, its reader gets the value once resolved. It takes the
 * element type it is lowered as. (wasi:http's completion futures.)
 */
export class HostFuture implements SharedFuture {
  t: Elem = null;
  typed = false;
  private resolved = false;
  private value: unknown = undefined;
  private pendingDst: WritableBuffer | null = null;
  private pendingOnCopyDone: OnCopyDone | null = null;
  /** for a host that awaits it instead (it is a thenable): made on first `then` */
  private promise: Promise<unknown> | null = null;
  private settlePromise: ((v: unknown) => void) | null = null;
  /** counted in store.hostOps from when it is handed to a guest until it resolves (as a HostFutureSource was) */
  private counted = false;
  /** @internal handed to a guest as a future of `t` */
  bind(t: Elem): void {
    if (this.typed) return;
    this.typed = true;
    this.t = t;
    if (!this.resolved) { this.counted = true; store.hostOps++; }
  }
  then<A = unknown, B = never>(ok?: ((v: unknown) => A | PromiseLike<A>) | null, fail?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    if (this.promise === null) {
      this.promise = new Promise((r) => { this.settlePromise = r; });
      if (this.resolved) this.settlePromise!(this.value);
    }
    return this.promise.then(ok, fail);
  }
  resolve(v: unknown): void {
    if (this.resolved) return;
    this.resolved = true;
    this.value = v;
    this.settlePromise?.(v);
    if (this.counted) { this.counted = false; store.hostOps--; }
    store.progress++;
    const dst = this.pendingDst;
    if (dst !== null) {
      const f = this.pendingOnCopyDone!;
      this.pendingDst = null;
      this.pendingOnCopyDone = null;
      dst.write([v]);
      f(CopyResult.COMPLETED);
    }
    store.schedule();
  }
  /** The value will never come (a host promise rejected): a reader waits on, but no longer holds off deadlock detection. */
  abandon(): void {
    if (this.resolved) return;
    if (this.counted) { this.counted = false; store.hostOps--; }
    store.progress++;
    store.schedule();
  }
  read(_inst: ComponentInstanceState | null, dst: WritableBuffer, onCopyDone: OnCopyDone): void {
    if (this.resolved) { dst.write([this.value]); onCopyDone(CopyResult.COMPLETED); return; }
    this.pendingDst = dst;
    this.pendingOnCopyDone = onCopyDone;
  }
  write(): void { throw new Error('internal: the host owns the writable end'); }
  cancel(): void {
    if (this.pendingDst) {
      const f = this.pendingOnCopyDone!;
      this.pendingDst = null;
      this.pendingOnCopyDone = null;
      f(CopyResult.CANCELLED);
    }
  }
  drop(): void {}
}

/** The host's writable side of a future given to a guest: resolves from a thenable. */
export class HostFutureSource extends HostFuture {
  constructor(t: Elem, thenable: unknown) {
    super();
    this.bind(t);
    Promise.resolve(thenable).then((v) => this.resolve(v), () => this.abandon());
  }
}

export function hostToSharedFuture(t: Elem, v: unknown): SharedFuture {
  if (v instanceof SharedFutureImpl || v instanceof HostFutureSource) return v;
  if (v instanceof HostFuture) {
    v.bind(t);
    return v;
  }
  return new HostFutureSource(t, v);
}

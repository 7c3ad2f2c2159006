// Streams and futures (CanonicalABI.md "Buffer State", "Stream State",
// "Future State") and their JavaScript faces: a guest stream<T> seen by the
// host is a web ReadableStream (stream<u8> → ReadableStream<Uint8Array>), a
// future<T> is a Promise<T>; the host may hand the guest a ReadableStream or
// any AsyncIterable for a stream, and any thenable for a future.

import { Trap, trapIf } from '../errors.ts';
import { checkRange, ensureViews, type LiftLowerContext } from '../abi/context.ts';
import { planValue, type ValuePlan } from '../abi/plan.ts';
import type { ValType } from '../types/types.ts';
import type { ComponentInstanceState } from './instance.ts';
import { store } from './task.ts';
import { Waitable } from './waitable.ts';

export const CopyResult = { COMPLETED: 0, DROPPED: 1, CANCELLED: 2 } as const;

export const MAX_BUFFER_LENGTH = 2 ** 28 - 1;

type Elem = ValType | null;

// ------------------------------------------------------------------ buffers

export interface Buffer {
  readonly t: Elem;
  progress: number;
  remain(): number;
  isZeroLength(): boolean;
}
export interface ReadableBuffer extends Buffer {
  read(n: number): ArrayLike<unknown>;
}
export interface WritableBuffer extends Buffer {
  write(vs: ArrayLike<unknown>): void;
}

/** none_or_number_type */
export function noneOrNumberType(t: Elem): boolean {
  if (t === null) return true;
  switch (t.kind) {
    case 'u8': case 'u16': case 'u32': case 'u64': case 's8': case 's16': case 's32': case 's64':
    case 'f32': case 'f64':
      return true;
  }
  return false;
}

/** BufferGuestImpl: `length` elements of `t` at `ptr` in a guest memory. */
export class GuestBuffer implements ReadableBuffer, WritableBuffer {
  readonly t: Elem;
  cx: LiftLowerContext;
  ptr: number;
  progress = 0;
  length: number;
  plan: ValuePlan | null;
  constructor(t: Elem, cx: LiftLowerContext, ptr: number, length: number) {
    trapIf(length > MAX_BUFFER_LENGTH, 'stream read/write count too large');
    this.plan = t ? planValue(t, cx.opts.memory64) : null;
    if (t && length > 0) {
      ensureViews(cx);
      const p = this.plan!;
      trapIf(ptr % p.align !== 0, `misaligned pointer: ${ptr} is not aligned to ${p.align}`);
      trapIf(ptr + length * p.size > cx.u8.length, `out of bounds memory access: ${ptr}+${length * p.size} exceeds memory size ${cx.u8.length}`);
    }
    this.t = t;
    this.cx = cx;
    this.ptr = ptr;
    this.length = length;
  }
  remain(): number { return this.length - this.progress; }
  isZeroLength(): boolean { return this.length === 0; }

  read(n: number): ArrayLike<unknown> {
    let vs: ArrayLike<unknown>;
    const p = this.plan;
    if (p) {
      const cx = this.cx;
      ensureViews(cx);
      checkRange(cx, this.ptr, p.align, n * p.size);
      if (hasIndirection(this.t!)) {
        let budget = COPY_BUDGET;
        for (let i = 0; i < n; i++) budget = measure(cx, this.t!, this.ptr + i * p.size, budget);
      }
      if (this.t!.kind === 'u8') vs = cx.u8.slice(this.ptr, this.ptr + n);
      else {
        const a = new Array(n);
        for (let i = 0; i < n; i++) a[i] = p.load(cx, this.ptr + i * p.size);
        vs = a;
      }
      this.ptr += n * p.size;
    } else vs = { length: n };
    this.progress += n;
    return vs;
  }

  write(vs: ArrayLike<unknown>): void {
    const p = this.plan;
    const n = vs.length;
    if (p) {
      const cx = this.cx;
      ensureViews(cx);
      checkRange(cx, this.ptr, p.align, n * p.size);
      if (this.t!.kind === 'u8' && vs instanceof Uint8Array) cx.u8.set(vs, this.ptr);
      else {
        for (let i = 0; i < n; i++) {
          p.store(cx, vs[i], this.ptr + i * p.size);
          ensureViews(cx);
        }
      }
      this.ptr += n * p.size;
    }
    this.progress += n;
  }
}

/** Bytes a single stream/future copy may lift (guards against list "zip bombs" sharing memory). */
const COPY_BUDGET = 1 << 28;

const indirection = new WeakMap<ValType, boolean>();
function hasIndirection(t: ValType): boolean {
  let r = indirection.get(t);
  if (r === undefined) {
    switch (t.kind) {
      case 'string': case 'list': case 'map': r = true; break;
      case 'record': r = t.fields.some((f) => hasIndirection(f.type)); break;
      case 'tuple': r = t.types.some(hasIndirection); break;
      case 'variant': r = t.cases.some((c) => c.type !== null && hasIndirection(c.type)); break;
      case 'option': r = hasIndirection(t.type); break;
      case 'result': r = (t.ok !== null && hasIndirection(t.ok)) || (t.err !== null && hasIndirection(t.err)); break;
      default: r = false;
    }
    indirection.set(t, r);
  }
  return r;
}

/** Charge the bytes a value at `ptr` refers to against `budget`; traps when exhausted. */
function measure(cx: LiftLowerContext, t: ValType, ptr: number, budget: number): number {
  const dv = cx.dv;
  const m64 = cx.opts.memory64;
  const rd = (p: number) => (m64 ? Number(dv.getBigUint64(p, true)) : dv.getUint32(p, true));
  const ps = m64 ? 8 : 4;
  switch (t.kind) {
    case 'string': {
      budget -= rd(ptr + ps) & 0x7fffffff;
      break;
    }
    case 'list': case 'map': {
      const elem: ValType = t.kind === 'list' ? t.elem : { kind: 'tuple', types: [t.key, t.value] };
      if (t.kind === 'list' && t.length !== null) {
        const ep = planValue(t.elem, m64);
        for (let i = 0; i < t.length && budget >= 0; i++) budget = measure(cx, t.elem, ptr + i * ep.size, budget);
        break;
      }
      const base = rd(ptr), len = rd(ptr + ps);
      const ep = planValue(elem, m64);
      budget -= len * ep.size;
      if (budget >= 0 && hasIndirection(elem) && base + len * ep.size <= cx.u8.length) {
        for (let i = 0; i < len && budget >= 0; i++) budget = measure(cx, elem, base + i * ep.size, budget);
      }
      break;
    }
    case 'record': case 'tuple': {
      const ts = t.kind === 'record' ? t.fields.map((f) => f.type) : t.types;
      let off = 0;
      for (const ft of ts) {
        const fp = planValue(ft, m64);
        off = Math.ceil(off / fp.align) * fp.align;
        if (hasIndirection(ft)) budget = measure(cx, ft, ptr + off, budget);
        off += fp.size;
      }
      break;
    }
    default:
      break; // variants: bounded by their payload lifts (rare in bulk copies)
  }
  if (budget < 0) throw new Trap('value too large to copy through a stream or future (the copy budget was exhausted)');
  return budget;
}

/** Copy `n` elements from `src` to `dst` (memory to memory for plain numbers). */
function copyElems(dst: WritableBuffer, src: ReadableBuffer, n: number): void {
  if (dst instanceof HostByteBuffer && src instanceof GuestBuffer && src.t !== null && src.t.kind === 'u8') {
    // guest memory straight into the host's array: no intermediate copy
    const cx = src.cx;
    ensureViews(cx);
    checkRange(cx, src.ptr, 1, n);
    dst.bytes.set(cx.u8.subarray(src.ptr, src.ptr + n), dst.progress);
    src.ptr += n; src.progress += n;
    dst.progress += n;
    return;
  }
  if (dst instanceof GuestBuffer && src instanceof GuestBuffer && src.plan && noneOrNumberType(src.t)) {
    const bytes = n * src.plan.size;
    ensureViews(src.cx);
    ensureViews(dst.cx);
    checkRange(src.cx, src.ptr, src.plan.align, bytes);
    checkRange(dst.cx, dst.ptr, dst.plan!.align, bytes);
    dst.cx.u8.set(src.cx.u8.subarray(src.ptr, src.ptr + bytes), dst.ptr);
    src.ptr += bytes; src.progress += n;
    dst.ptr += bytes; dst.progress += n;
    return;
  }
  dst.write(src.read(n));
}

/** A buffer of values the host collects while reading from a guest. */
export class HostWritableBuffer implements WritableBuffer {
  readonly t: Elem;
  progress = 0;
  capacity: number;
  chunks: ArrayLike<unknown>[] = [];
  constructor(t: Elem, capacity: number) { this.t = t; this.capacity = capacity; }
  remain(): number { return this.capacity - this.progress; }
  isZeroLength(): boolean { return this.capacity === 0; }
  write(vs: ArrayLike<unknown>): void {
    this.chunks.push(vs);
    this.progress += vs.length;
  }
}

/** A host read of a stream<u8> into an array the host provides (and reuses): no allocation per chunk. */
export class HostByteBuffer implements WritableBuffer {
  readonly t: Elem;
  progress = 0;
  bytes: Uint8Array;
  constructor(t: Elem, bytes: Uint8Array) { this.t = t; this.bytes = bytes; }
  remain(): number { return this.bytes.length - this.progress; }
  isZeroLength(): boolean { return this.bytes.length === 0; }
  write(vs: ArrayLike<unknown>): void {
    this.bytes.set(vs as ArrayLike<number>, this.progress);
    this.progress += vs.length;
  }
}

// ------------------------------------------------------------------ shared state

export type OnCopy = (reclaimBuffer: () => void) => void;
export type OnCopyDone = (result: number) => void;

/** The state shared by the two ends of a stream (or the host's side of one). */
export interface SharedStream {
  readonly t: Elem;
  read(inst: ComponentInstanceState | null, dst: WritableBuffer, onCopy: OnCopy, onCopyDone: OnCopyDone): void;
  write(inst: ComponentInstanceState | null, src: ReadableBuffer, onCopy: OnCopy, onCopyDone: OnCopyDone): void;
  cancel(): void;
  drop(): void;
}

export interface SharedFuture {
  readonly t: Elem;
  read(inst: ComponentInstanceState | null, dst: WritableBuffer, onCopyDone: OnCopyDone): void;
  write(inst: ComponentInstanceState | null, src: ReadableBuffer, onCopyDone: OnCopyDone): void;
  cancel(): void;
  drop(): void;
}

const SAME_INSTANCE = 'cannot read from and write to intra-component future/stream with non-numeric payload';

export class SharedStreamImpl implements SharedStream {
  readonly t: Elem;
  dropped = false;
  pendingInst: ComponentInstanceState | null = null;
  pendingBuffer: Buffer | null = null;
  pendingOnCopy: OnCopy | null = null;
  pendingOnCopyDone: OnCopyDone | null = null;
  /** the host holds the other end (for deadlock detection) */
  constructor(t: Elem) { this.t = t; }

  resetPending(): void { this.setPending(null, null, null, null); }
  readonly resetFn = () => this.resetPending();

  setPending(inst: ComponentInstanceState | null, buffer: Buffer | null, onCopy: OnCopy | null, onCopyDone: OnCopyDone | null): void {
    this.pendingInst = inst;
    this.pendingBuffer = buffer;
    this.pendingOnCopy = onCopy;
    this.pendingOnCopyDone = onCopyDone;
  }

  resetAndNotifyPending(result: number): void {
    const f = this.pendingOnCopyDone!;
    this.resetPending();
    f(result);
  }

  cancel(): void { if (this.pendingBuffer) this.resetAndNotifyPending(CopyResult.CANCELLED); }

  drop(): void {
    if (!this.dropped) {
      this.dropped = true;
      if (this.pendingBuffer) this.resetAndNotifyPending(CopyResult.DROPPED);
    }
  }

  read(inst: ComponentInstanceState | null, dst: WritableBuffer, onCopy: OnCopy, onCopyDone: OnCopyDone): void {
    if (this.dropped) { onCopyDone(CopyResult.DROPPED); return; }
    if (!this.pendingBuffer) { this.setPending(inst, dst, onCopy, onCopyDone); return; }
    trapIf(inst !== null && inst === this.pendingInst && !noneOrNumberType(this.t), SAME_INSTANCE);
    const src = this.pendingBuffer as ReadableBuffer;
    if (src.remain() > 0) {
      if (dst.remain() > 0) {
        copyElems(dst, src, Math.min(dst.remain(), src.remain()));
        this.pendingOnCopy!(this.resetFn);
      }
      onCopyDone(CopyResult.COMPLETED);
    } else {
      this.resetAndNotifyPending(CopyResult.COMPLETED);
      this.setPending(inst, dst, onCopy, onCopyDone);
    }
  }

  write(inst: ComponentInstanceState | null, src: ReadableBuffer, onCopy: OnCopy, onCopyDone: OnCopyDone): void {
    if (this.dropped) { onCopyDone(CopyResult.DROPPED); return; }
    if (!this.pendingBuffer) { this.setPending(inst, src, onCopy, onCopyDone); return; }
    trapIf(inst !== null && inst === this.pendingInst && !noneOrNumberType(this.t), SAME_INSTANCE);
    const dst = this.pendingBuffer as WritableBuffer;
    if (dst.remain() > 0) {
      if (src.remain() > 0) {
        copyElems(dst, src, Math.min(dst.remain(), src.remain()));
        this.pendingOnCopy!(this.resetFn);
      }
      onCopyDone(CopyResult.COMPLETED);
    } else if (src.isZeroLength() && dst.isZeroLength()) {
      onCopyDone(CopyResult.COMPLETED);
    } else {
      this.resetAndNotifyPending(CopyResult.COMPLETED);
      this.setPending(inst, src, onCopy, onCopyDone);
    }
  }
}

export class SharedFutureImpl implements SharedFuture {
  readonly t: Elem;
  dropped = false;
  pendingInst: ComponentInstanceState | null = null;
  pendingBuffer: Buffer | null = null;
  pendingOnCopyDone: OnCopyDone | null = null;
  constructor(t: Elem) { this.t = t; }

  setPending(inst: ComponentInstanceState | null, buffer: Buffer | null, onCopyDone: OnCopyDone | null): void {
    this.pendingInst = inst;
    this.pendingBuffer = buffer;
    this.pendingOnCopyDone = onCopyDone;
  }

  resetAndNotifyPending(result: number): void {
    const f = this.pendingOnCopyDone!;
    this.setPending(null, null, null);
    f(result);
  }

  cancel(): void { if (this.pendingBuffer) this.resetAndNotifyPending(CopyResult.CANCELLED); }

  drop(): void {
    if (!this.dropped) {
      this.dropped = true;
      if (this.pendingBuffer) this.resetAndNotifyPending(CopyResult.DROPPED);
    }
  }

  read(inst: ComponentInstanceState | null, dst: WritableBuffer, onCopyDone: OnCopyDone): void {
    if (!this.pendingBuffer) { this.setPending(inst, dst, onCopyDone); return; }
    trapIf(inst !== null && inst === this.pendingInst && !noneOrNumberType(this.t), SAME_INSTANCE);
    copyElems(dst, this.pendingBuffer as ReadableBuffer, 1);
    this.resetAndNotifyPending(CopyResult.COMPLETED);
    onCopyDone(CopyResult.COMPLETED);
  }

  write(inst: ComponentInstanceState | null, src: ReadableBuffer, onCopyDone: OnCopyDone): void {
    if (this.dropped) { onCopyDone(CopyResult.DROPPED); return; }
    if (!this.pendingBuffer) { this.setPending(inst, src, onCopyDone); return; }
    trapIf(inst !== null && inst === this.pendingInst && !noneOrNumberType(this.t), SAME_INSTANCE);
    copyElems(this.pendingBuffer as WritableBuffer, src, 1);
    this.resetAndNotifyPending(CopyResult.COMPLETED);
    onCopyDone(CopyResult.COMPLETED);
  }
}

// ------------------------------------------------------------------ ends (handle table entries)

export const CopyState = { IDLE: 1, COPYING: 2, CANCELLING_COPY: 3, DONE: 4 } as const;

export class CopyEnd extends Waitable {
  state: number = CopyState.IDLE;
  shared: SharedStream | SharedFuture;
  constructor(shared: SharedStream | SharedFuture) {
    super();
    this.shared = shared;
  }
  copying(): boolean { return this.state === CopyState.COPYING || this.state === CopyState.CANCELLING_COPY; }
  override drop(): void {
    trapIf(this.copying(), 'cannot drop busy stream or future');
    this.shared.drop();
    super.drop();
  }
}

export class ReadableStreamEnd extends CopyEnd {}
export class WritableStreamEnd extends CopyEnd {}
export class ReadableFutureEnd extends CopyEnd {}
export class WritableFutureEnd extends CopyEnd {
  override drop(): void {
    trapIf(this.state !== CopyState.DONE, 'cannot drop future write end without first writing a value');
    super.drop();
  }
}

/** Structural type equality for the `e.shared.t != t` checks (resources by identity of their root). */
export function sameType(a: Elem, b: Elem): boolean {
  if (a === b) return true;
  if (a === null || b === null || a.kind !== b.kind) return false;
  switch (a.kind) {
    case 'record': { const bb = b as typeof a; return a.fields.length === bb.fields.length && a.fields.every((f, i) => f.name === bb.fields[i]!.name && sameType(f.type, bb.fields[i]!.type)); }
    case 'variant': { const bb = b as typeof a; return a.cases.length === bb.cases.length && a.cases.every((c, i) => c.name === bb.cases[i]!.name && sameType(c.type, bb.cases[i]!.type)); }
    case 'list': { const bb = b as typeof a; return a.length === bb.length && sameType(a.elem, bb.elem); }
    case 'tuple': { const bb = b as typeof a; return a.types.length === bb.types.length && a.types.every((x, i) => sameType(x, bb.types[i]!)); }
    case 'flags': case 'enum': { const bb = b as typeof a; return a.names.join() === bb.names.join(); }
    case 'option': return sameType(a.type, (b as typeof a).type);
    case 'result': { const bb = b as typeof a; return sameType(a.ok, bb.ok) && sameType(a.err, bb.err); }
    case 'own': case 'borrow': return true;
    case 'stream': case 'future': return sameType(a.elem, (b as typeof a).elem);
    case 'map': { const bb = b as typeof a; return sameType(a.key, bb.key) && sameType(a.value, bb.value); }
  }
  return true;
}

// ------------------------------------------------------------------ host side

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
   */
  take(max: number, cb: (bytes: Uint8Array | null) => void): void {
    if (this.ended) { cb(null); return; }
    const buf = new HostWritableBuffer(this.shared.t, max);
    const deliver = (): void => {
      const cs = buf.chunks;
      if (cs.length === 0) { cb(this.ended ? null : EMPTY_BYTES); return; }
      cb(cs.length === 1 ? cs[0] as Uint8Array : concatBytes(cs as Uint8Array[], buf.progress));
    };
    this.shared.read(null, buf, (reclaim) => { reclaim(); deliver(); }, (result) => {
      if (result === CopyResult.DROPPED) {
        this.ended = true;
        this.shared.drop();
        this.close();
      }
      deliver();
    });
    store.schedule();
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

/** A guest future (its readable end, now owned by the host) as a Promise. */
export function guestFutureToJs(shared: SharedFuture, toJs: (v: unknown) => unknown): Promise<unknown> {
  return new Promise((resolve) => {
    const buf = new HostWritableBuffer(shared.t, 1);
    store.hostOps++;
    shared.read(null, buf, (result) => {
      store.hostOps--; store.progress++;
      if (result === CopyResult.COMPLETED) {
        const c = buf.chunks[0];
        resolve(shared.t === null ? undefined : toJs(c ? c[0] : undefined));
      }
    });
    store.schedule();
  });
}

/** The host's writable side of a future given to a guest: resolves from a thenable. */
export class HostFutureSource implements SharedFuture {
  readonly t: Elem;
  state: 'pending' | 'resolved' | 'rejected' = 'pending';
  value: unknown = undefined;
  pendingDst: WritableBuffer | null = null;
  pendingOnCopyDone: OnCopyDone | null = null;
  constructor(t: Elem, thenable: unknown) {
    this.t = t;
    store.hostOps++;
    Promise.resolve(thenable).then((v) => {
      store.hostOps--; store.progress++;
      this.state = 'resolved';
      this.value = v;
      this.deliver();
      store.schedule();
    }, () => {
      store.hostOps--; store.progress++;
      this.state = 'rejected';
      store.schedule();
    });
  }
  private deliver(): void {
    const dst = this.pendingDst;
    if (dst === null) return;
    const f = this.pendingOnCopyDone!;
    this.pendingDst = null;
    this.pendingOnCopyDone = null;
    dst.write([this.value]);
    f(CopyResult.COMPLETED);
  }
  read(_inst: ComponentInstanceState | null, dst: WritableBuffer, onCopyDone: OnCopyDone): void {
    if (this.state === 'resolved') { dst.write([this.value]); onCopyDone(CopyResult.COMPLETED); return; }
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

export function hostToSharedFuture(t: Elem, v: unknown): SharedFuture {
  if (v instanceof SharedFutureImpl || v instanceof HostFutureSource) return v;
  return new HostFutureSource(t, v);
}

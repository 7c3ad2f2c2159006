// Streams and futures (CanonicalABI.md "Buffer State", "Stream State",
// "Future State"): buffers, the shared state of a stream or future, and the
// ends that sit in handle tables. The host's ends (ReadableStream / Promise)
// are in host-streams.ts.

import { trap, trapIf } from '../errors.ts';
import { checkRange, ensureViews, type LiftLowerContext } from '../abi/context.ts';
import { planValue, type ValuePlan } from '../abi/plan.ts';
import type { ValType } from '../types/types.ts';
import type { ComponentInstanceState } from './instance.ts';
import { Waitable } from './waitable.ts';

export const CopyResult = { COMPLETED: 0, DROPPED: 1, CANCELLED: 2 } as const;

export const MAX_BUFFER_LENGTH = 2 ** 28 - 1;

export type Elem = ValType | null;

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
    trapIf(length > MAX_BUFFER_LENGTH, 'copy-count-too-large');
    this.plan = t ? planValue(t, cx.opts.memory64) : null;
    if (t && length > 0) {
      ensureViews(cx);
      const p = this.plan!;
      trapIf(ptr % p.align !== 0, 'misaligned-pointer', ptr, p.align);
      trapIf(ptr + length * p.size > cx.u8.length, 'out-of-bounds', ptr, length * p.size, cx.u8.length);
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
  if (budget < 0) trap('copy-budget-exhausted');
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
  if (dst instanceof HostWritableBuffer && dst.pooled && src instanceof GuestBuffer && src.t !== null && src.t.kind === 'u8' && n <= POOLED_MAX) {
    // a small chunk for a consumer that only writes it out (a socket): carved from a shared slab, no ArrayBuffer of its own
    const cx = src.cx;
    ensureViews(cx);
    checkRange(cx, src.ptr, 1, n);
    const out = pooledBytes(n);
    out.set(cx.u8.subarray(src.ptr, src.ptr + n));
    src.ptr += n; src.progress += n;
    dst.write(out);
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

/** Largest chunk a `pooled` read carves from the slab; slab size. */
const POOLED_MAX = 4096;
const SLAB = 64 * 1024;
let slab: ArrayBuffer | null = null;
let slabUsed = 0;

/** `n` fresh bytes in a shared slab (as node's Buffer pool does): one allocation per 64 KiB of small chunks. */
function pooledBytes(n: number): Uint8Array {
  if (slab === null || slabUsed + n > SLAB) { slab = new ArrayBuffer(SLAB); slabUsed = 0; }
  const out = new Uint8Array(slab, slabUsed, n);
  slabUsed = (slabUsed + n + 7) & ~7;
  return out;
}

/** A buffer of values the host collects while reading from a guest. */
export class HostWritableBuffer implements WritableBuffer {
  readonly t: Elem;
  progress = 0;
  capacity: number;
  chunks: ArrayLike<unknown>[] = [];
  /**
   * Small byte chunks may be views into a shared slab (byteOffset ≠ 0, other
   * bytes around them): only for a consumer that writes them out and never
   * looks at their `.buffer` (GuestByteReader.take).
   */
  pooled = false;
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
    trapIf(inst !== null && inst === this.pendingInst && !noneOrNumberType(this.t), 'same-instance-copy');
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
    trapIf(inst !== null && inst === this.pendingInst && !noneOrNumberType(this.t), 'same-instance-copy');
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
    trapIf(inst !== null && inst === this.pendingInst && !noneOrNumberType(this.t), 'same-instance-copy');
    copyElems(dst, this.pendingBuffer as ReadableBuffer, 1);
    this.resetAndNotifyPending(CopyResult.COMPLETED);
    onCopyDone(CopyResult.COMPLETED);
  }

  write(inst: ComponentInstanceState | null, src: ReadableBuffer, onCopyDone: OnCopyDone): void {
    if (this.dropped) { onCopyDone(CopyResult.DROPPED); return; }
    if (!this.pendingBuffer) { this.setPending(inst, src, onCopyDone); return; }
    trapIf(inst !== null && inst === this.pendingInst && !noneOrNumberType(this.t), 'same-instance-copy');
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
    trapIf(this.copying(), 'drop-busy-copy-end');
    this.shared.drop();
    super.drop();
  }
}

export class ReadableStreamEnd extends CopyEnd {}
export class WritableStreamEnd extends CopyEnd {}
export class ReadableFutureEnd extends CopyEnd {}
export class WritableFutureEnd extends CopyEnd {
  override drop(): void {
    trapIf(this.state !== CopyState.DONE, 'drop-unwritten-future');
    super.drop();
  }
}

/**
 * Pairs of distinct type objects found equal (types never change once
 * validated): the checks run on every stream/future copy and task.return,
 * and a type such as wasi:http's error-code has dozens of cases to compare.
 */
const knownSame = new WeakMap<object, WeakSet<object>>();

/** Structural type equality for the `e.shared.t != t` checks (resources by identity of their root). */
export function sameType(a: Elem, b: Elem): boolean {
  if (a === b) return true;
  if (a === null || b === null || a.kind !== b.kind) return false;
  let seen = knownSame.get(a);
  if (seen !== undefined && seen.has(b)) return true;
  if (!sameTypeNow(a, b)) return false;
  if (seen === undefined) knownSame.set(a, seen = new WeakSet());
  seen.add(b);
  return true;
}

function sameTypeNow(a: NonNullable<Elem>, b: NonNullable<Elem>): boolean {
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

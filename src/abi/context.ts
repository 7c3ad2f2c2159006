// Lifting/lowering context (CanonicalABI.md "Lifting and Lowering Context"):
// the canonical options plus cached views of linear memory.

import { Buffer } from 'node:buffer';
import type { FutureType, ResourceType, StreamType } from '../types/types.ts';
import { trap } from '../errors.ts';

const REALLOC_MAX = 2 ** 32 - 1;

export interface CanonOptions {
  memory: WebAssembly.Memory | null;
  realloc: ((oldPtr: number | bigint, oldSize: number | bigint, align: number | bigint, newSize: number | bigint) => number | bigint) | null;
  postReturn: Function | null;
  stringEncoding: 'utf8' | 'utf16' | 'latin1+utf16';
  /** Pointers/lengths are i64 (bigint in JS) when true. */
  memory64: boolean;
}

/** Supplied by the runtime; the ABI only calls them. */
export interface HandleOps {
  liftOwn(rt: ResourceType, i: number): unknown;
  lowerOwn(rt: ResourceType, v: unknown): number;
  liftBorrow(rt: ResourceType, i: number): unknown;
  lowerBorrow(rt: ResourceType, v: unknown): number;
  liftStream(t: StreamType, i: number): unknown;
  lowerStream(t: StreamType, v: unknown): number;
  liftFuture(t: FutureType, i: number): unknown;
  lowerFuture(t: FutureType, v: unknown): number;
  liftErrorContext(i: number): unknown;
  lowerErrorContext(v: unknown): number;
}

const EMPTY_BUFFER = new ArrayBuffer(0);

/**
 * Create with `createContext(opts, handles)` (or `new AbiContext`) once per set of
 * canonical options and reuse it across calls: it caches memory views and refreshes
 * them only when `memory.buffer` changes (growth detaches the old buffer).
 */
export interface LiftLowerContext {
  opts: CanonOptions;
  handles: HandleOps;
  /** The ArrayBuffer the views below were built on. */
  buf: ArrayBuffer;
  u8: Uint8Array;
  dv: DataView;
  /** A node Buffer over the same bytes (fast latin1/ucs2 slicing). */
  nb: Uint8Array;
  /** Scratch outputs of store_string_into_range (pointer is the return value). */
  strUnits: number;
  strUtf16: boolean;
  /**
   * Lift `list<u8>` as a view of linear memory instead of a copy. Only for
   * arguments handed straight to another component's lowering, which copies
   * them into its own memory before this memory can change.
   */
  viewLists: boolean;
  /**
   * Host-call copy budget (-S hostcall-fuel): bytes of strings and lists lifting
   * may still copy in the current call, and what each call starts with
   * (Infinity except for calls of host imports under a limit).
   */
  fuel: number;
  fuelLimit: number;
}

export class AbiContext implements LiftLowerContext {
  opts: CanonOptions;
  handles: HandleOps;
  buf: ArrayBuffer = EMPTY_BUFFER;
  u8: Uint8Array = new Uint8Array(EMPTY_BUFFER);
  dv: DataView = new DataView(EMPTY_BUFFER);
  nb: Uint8Array = Buffer.from(EMPTY_BUFFER);
  strUnits = 0;
  strUtf16 = false;
  viewLists = false;
  fuel = Infinity;
  fuelLimit = Infinity;
  constructor(opts: CanonOptions, handles: HandleOps) {
    this.opts = opts;
    this.handles = handles;
    if (opts.memory) refreshViews(this);
  }
}

export function createContext(opts: CanonOptions, handles: HandleOps): LiftLowerContext {
  return new AbiContext(opts, handles);
}

/** Charge `bytes` copied out of linear memory against the host-call budget; traps when it runs out. */
export function spendFuel(cx: LiftLowerContext, bytes: number): void {
  if ((cx.fuel -= bytes) < 0) {
    trap('hostcall-fuel-exhausted', cx.fuelLimit);
  }
}

/** Make sure cx.u8/cx.dv view the current memory buffer. Cheap when unchanged. */
export function refreshViews(cx: LiftLowerContext): void {
  const mem = cx.opts.memory;
  if (mem === null) return;
  const b = mem.buffer as ArrayBuffer;
  if (b !== cx.buf) {
    cx.buf = b;
    cx.u8 = new Uint8Array(b);
    cx.dv = new DataView(b);
    cx.nb = Buffer.from(b);
  }
}

/**
 * Entry-point check: views of a grown (hence detached) buffer have length 0.
 * Call once at the start of every lift/lower entry; `reallocate` refreshes itself.
 */
export function ensureViews(cx: LiftLowerContext): void {
  if (cx.u8.length === 0) refreshViews(cx);
}

function needMemory(cx: LiftLowerContext): WebAssembly.Memory {
  const m = cx.opts.memory;
  if (m === null) trap('missing-memory');
  return m;
}

/** Convert a core pointer/length (i32 number, possibly signed, or i64 bigint) to a JS number. */
export function toPtr(v: unknown): number {
  if (typeof v === 'number') return v >>> 0;
  if (typeof v === 'bigint') return Number(BigInt.asUintN(64, v));
  throw new TypeError(`expected a core pointer value, got ${typeof v}`);
}

/** Convert a JS number pointer/length to the core value for the memory's pointer type. */
export function fromPtr(cx: LiftLowerContext, n: number): number | bigint {
  return cx.opts.memory64 ? BigInt(n) : n;
}

/** trap_if(ptr != align_to(ptr, align)); trap_if(ptr + size > len(memory)) */
export function checkRange(cx: LiftLowerContext, ptr: number, align: number, size: number): void {
  if (ptr % align !== 0) trap('misaligned-pointer', ptr, align);
  if (ptr + size > cx.u8.length) trap('out-of-bounds', ptr, size, cx.u8.length);
}

/** LiftLowerContext.reallocate: calls the guest realloc and refreshes memory views. */
export function reallocate(cx: LiftLowerContext, old: number, oldSize: number, align: number, newSize: number): number {
  needMemory(cx);
  const realloc = cx.opts.realloc;
  if (realloc === null) trap('missing-realloc');
  if (newSize > REALLOC_MAX) trap('realloc-limit', newSize);
  let r: number | bigint;
  if (cx.opts.memory64) r = realloc(BigInt(old), BigInt(oldSize), BigInt(align), BigInt(newSize));
  else r = realloc(old, oldSize, align, newSize);
  refreshViews(cx);
  return toPtr(r);
}

export function allocate(cx: LiftLowerContext, align: number, size: number): number {
  return reallocate(cx, 0, 0, align, size);
}

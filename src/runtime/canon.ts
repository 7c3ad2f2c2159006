// The canon built-ins other than resource.* (CanonicalABI.md "Canonical
// Definitions", 🔀 🚟 🚝 📝 🧵) and the choice of `canon lower` variant; the
// instantiator calls `buildCanon` for each such definition.

import type { Canon, CanonOpts } from '../binary/ast.ts';
import { createContext, ensureViews, checkRange, type CanonOptions, type HandleOps, type LiftLowerContext } from '../abi/context.ts';
import { planAsyncLift } from '../abi/func.ts';
import { planValue } from '../abi/plan.ts';
import { loadStringFromRange } from '../abi/strings.ts';
import { Trap, trapIf } from '../errors.ts';
import type { CanonInfo, ComponentDef } from '../types/validate.ts';
import type { FuncType, FutureType, StreamType, ValType } from '../types/types.ts';
import type { ComponentInstanceState } from './instance.ts';
import { ComponentFunc, HostFunc, lowerSync, LiftedFunc, toTrap } from './call.ts';
import type { RtScope } from './instantiate.ts';
import { AsyncLiftedFunc, lowerAsync, lowerBlocking } from './async-call.ts';
import {
  current, currentThread, entryFinished, noteTrap, runEntry, setCurrent, store, SUSPENDED, TaskState, Thread,
  wakeBackpressureWaiters, type CoreEntry,
} from './task.ts';
import { blockingImport, promisingEntry, type CoreValType } from './jspi.ts';
import { flattenFuncType } from '../types/layout.ts';
import { bindDeviations, deviationHooks, MAX_COUNT } from './deviations.ts';
import { EventCode, Subtask, Waitable, WaitableSet, type EventTuple } from './waitable.ts';
import {
  CopyEnd, CopyResult, CopyState, GuestBuffer, ReadableFutureEnd,
  ReadableStreamEnd, sameType, SharedFutureImpl, SharedStreamImpl, WritableFutureEnd, WritableStreamEnd,
  type SharedFuture, type SharedStream,
} from './streams.ts';
import { hostToSharedFuture, hostToSharedStream } from './host-streams.ts';

export const BLOCKED_CODE = 0xffff_ffff | 0;

/** 📝 An error-context value: a handle-table entry in the guest, this object in JS. */
export class ErrorContext {
  readonly debugMessage: string;
  constructor(debugMessage = '') { this.debugMessage = debugMessage; }
}

// ------------------------------------------------------------------ instance preparation

/** Does core code of this component need JSPI stacks (it uses built-ins that block)? */
const jspiCache = new WeakMap<ComponentDef, boolean>();
export function componentNeedsJspi(def: ComponentDef): boolean {
  let r = jspiCache.get(def);
  if (r !== undefined) return r;
  r = false;
  const defs = def.ast.definitions;
  for (let i = 0; i < defs.length && !r; i++) {
    const d = defs[i]!;
    if (d.kind !== 'canon') continue;
    const c = d.canon;
    switch (c.kind) {
      case 'lift': r = !!c.opts.async && c.opts.callback === undefined; break;
      case 'lower': r = !c.opts.async && !!(def.info.get(i) as CanonInfo | undefined)?.ft?.async; break;
      case 'waitable-set.wait': case 'thread.yield': case 'thread.suspend': case 'thread.suspend-then-resume':
      case 'thread.yield-then-resume': case 'thread.suspend-then-promote': case 'thread.yield-then-promote':
      case 'thread.new-indirect':
        r = true; break;
      case 'stream.read': case 'stream.write': case 'future.read': case 'future.write': r = !c.opts.async; break;
      case 'stream.cancel-read': case 'stream.cancel-write': case 'future.cancel-read': case 'future.cancel-write':
      case 'subtask.cancel':
        r = !c.async; break;
    }
  }
  jspiCache.set(def, r);
  return r;
}

/** Per-instance setup before its definitions run. */
export function prepareInstance(def: ComponentDef, inst: ComponentInstanceState): void {
  if (componentNeedsJspi(def)) inst.jspi = true;
  inst.asyncOps = makeAsyncHandleOps(inst);
  bindDeviations(def, inst);
}

function makeAsyncHandleOps(inst: ComponentInstanceState): Partial<HandleOps> {
  return {
    liftStream(t: StreamType, i: number): unknown {
      const e = inst.handles.remove(i);
      trapIf(!(e instanceof ReadableStreamEnd), `handle index ${i} is not a readable stream end`);
      const end = e as ReadableStreamEnd;
      trapIf(!sameType(end.shared.t, t.elem), 'stream type mismatch');
      trapIf(end.state === CopyState.DONE, 'cannot lift stream after being notified that the writable end dropped');
      trapIf(end.state !== CopyState.IDLE, 'cannot lift stream while a read is in progress');
      trapIf(end.inWaitableSet(), "cannot lift stream while it's in a waitable set");
      return end.shared;
    },
    lowerStream(t: StreamType, v: unknown): number {
      return inst.handles.add(new ReadableStreamEnd(hostToSharedStream(t.elem, v)));
    },
    liftFuture(t: FutureType, i: number): unknown {
      const e = inst.handles.remove(i);
      trapIf(!(e instanceof ReadableFutureEnd), `handle index ${i} is not a readable future end`);
      const end = e as ReadableFutureEnd;
      trapIf(!sameType(end.shared.t, t.elem), 'future type mismatch');
      trapIf(end.state === CopyState.DONE, 'cannot lift future after previous read succeeded');
      trapIf(end.state !== CopyState.IDLE, 'cannot lift future while a read is in progress');
      trapIf(end.inWaitableSet(), "cannot lift future while it's in a waitable set");
      return end.shared;
    },
    lowerFuture(t: FutureType, v: unknown): number {
      return inst.handles.add(new ReadableFutureEnd(hostToSharedFuture(t.elem, v)));
    },
    liftErrorContext(i: number): unknown {
      const e = inst.handles.get(i);
      trapIf(!(e instanceof ErrorContext), `handle index ${i} is not an error-context`);
      return e;
    },
    lowerErrorContext(v: unknown): number {
      if (!(v instanceof ErrorContext)) throw new TypeError('expected an ErrorContext');
      return inst.handles.add(v);
    },
  };
}

// ------------------------------------------------------------------ the builder

/** Wrap a built-in so traps thrown by it are remembered for JSPI entries that fail synchronously. */
function guard<F extends (...a: any[]) => unknown>(f: F): F {
  return (function (this: unknown, ...a: unknown[]) {
    try {
      return f(...a);
    } catch (e) {
      const t = toTrap(e);
      noteTrap(t);
      throw t;
    }
  }) as F;
}

type Sig = [CoreValType[], CoreValType[]];
const I32_I32: Sig = [['i32'], ['i32']];
const NONE_I32: Sig = [[], ['i32']];

/** A built-in that may block: imported through a blocking adapter in JSPI instances. */
function blocking(inst: ComponentInstanceState, sig: Sig, f: (...a: any[]) => unknown): Function {
  const g = guard(f);
  return inst.jspi ? blockingImport(g, sig[0], sig[1]) : g;
}

export type RtOpts = (o: CanonOpts) => CanonOptions;

export function buildCanon(c: Canon, info: CanonInfo, s: RtScope, inst: ComponentInstanceState, opts: RtOpts): Function | ComponentFunc {
  switch (c.kind) {
    case 'lift': {
      const o = opts(c.opts);
      const cb = c.opts.callback !== undefined ? s.coreFuncs[c.opts.callback]! : null;
      return new AsyncLiftedFunc(info.ft!, inst, s.coreFuncs[c.func]!, o, !!c.opts.async, cb);
    }
    case 'lower': {
      const callee = s.funcs[c.func]!;
      const ft = info.ft!;
      const o = opts(c.opts);
      if (c.opts.async) return guard(lowerAsync(callee, ft, inst, o) as (...a: unknown[]) => unknown);
      const calleeInst = callee.implInstance;
      // a may-block host function (runtime/call.ts mayBlock) suspends the guest's stack like a blocking callee
      if (ft.async || (calleeInst !== null && calleeInst.jspi) || (callee instanceof HostFunc && callee.mayBlock)) {
        inst.jspi = true;
        const sig = flattenFuncType(ft, 'lower', { memory64: o.memory64 });
        return blockingImport(guard(lowerBlocking(callee, ft, inst, o) as (...a: unknown[]) => unknown), sig.params, sig.results);
      }
      return lowerSync(callee, ft, inst, o);
    }
    case 'context.get': {
      const i = c.index;
      return guard(() => {
        const t = currentThread();
        return i === 0 ? t.storage0 : t.storage1;
      });
    }
    case 'context.set': {
      const i = c.index;
      return guard((v: number) => {
        const t = currentThread();
        if (i === 0) t.storage0 = v; else t.storage1 = v;
      });
    }
    case 'backpressure.inc':
      return guard(() => {
        inst.backpressure++;
        trapIf(inst.backpressure >= 2 ** 16, 'backpressure counter overflow');
      });
    case 'backpressure.dec':
      return guard(() => {
        inst.backpressure--;
        trapIf(inst.backpressure < 0, 'backpressure counter underflow');
        if (inst.backpressure === 0) wakeBackpressureWaiters(inst);
      });
    case 'task.return': return guard(taskReturn(inst, info.valType ?? null, opts(c.opts)));
    case 'task.cancel':
      return guard(() => {
        const task = currentThread().task;
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        trapIf(!task.async, 'task.cancel called from a synchronous task');
        task.cancel();
      });
    case 'waitable-set.new':
      return guard(() => {
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        return inst.handles.add(new WaitableSet());
      });
    case 'waitable-set.wait': {
      const mem = s.coreMemories[c.memory]!;
      const cancellable = c.cancellable;
      return blocking(inst, [['i32', 'i32'], ['i32']], (si: number, ptr: number) => {
        const t = currentThread();
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        const wset = getWaitableSet(inst, si);
        return wset.waitForEventStack(t, cancellable, (e) => unpackEvent(mem, ptr, e));
      });
    }
    case 'waitable-set.poll': {
      const mem = s.coreMemories[c.memory]!;
      const cancellable = c.cancellable;
      return guard((si: number, ptr: number) => {
        const t = currentThread();
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        const wset = getWaitableSet(inst, si);
        return unpackEvent(mem, ptr, wset.poll(t, cancellable));
      });
    }
    case 'waitable-set.drop':
      return guard((si: number) => {
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        const w = inst.handles.remove(si >>> 0);
        trapIf(!(w instanceof WaitableSet), `handle index ${si} is not a waitable set`);
        (w as WaitableSet).drop();
      });
    case 'waitable.join':
      return guard((wi: number, si: number) => {
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        const w = inst.handles.get(wi >>> 0);
        trapIf(!(w instanceof Waitable), `handle index ${wi} is not a waitable`);
        trapIf((w as Waitable).hasSyncWaiter(), 'cannot join a waitable that a synchronous operation is waiting on');
        if (si === 0) (w as Waitable).join(null);
        else (w as Waitable).join(getWaitableSet(inst, si));
      });
    case 'subtask.cancel': {
      const asyncOpt = c.async;
      const f = (i: number) => subtaskCancel(inst, asyncOpt, i >>> 0);
      return asyncOpt ? guard(f) : blocking(inst, I32_I32, f);
    }
    case 'subtask.drop':
      return guard((i: number) => {
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        const st = inst.handles.remove(i >>> 0);
        trapIf(!(st instanceof Subtask), `handle index ${i} is not a subtask`);
        (st as Subtask).drop();
      });
    case 'stream.new': {
      const t = info.valType as StreamType;
      return guard(() => {
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        const shared = new SharedStreamImpl(t.elem);
        const ri = inst.handles.add(new ReadableStreamEnd(shared));
        const wi = inst.handles.add(new WritableStreamEnd(shared));
        return BigInt(ri) | (BigInt(wi) << 32n);
      });
    }
    case 'future.new': {
      const t = info.valType as FutureType;
      return guard(() => {
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        const shared = new SharedFutureImpl(t.elem);
        const ri = inst.handles.add(new ReadableFutureEnd(shared));
        const wi = inst.handles.add(new WritableFutureEnd(shared));
        return BigInt(ri) | (BigInt(wi) << 32n);
      });
    }
    case 'stream.read': case 'stream.write': {
      const isRead = c.kind === 'stream.read';
      const t = info.valType as StreamType;
      const o = opts(c.opts);
      const cx = createContext(o, inst.handleOps);
      const asyncOpt = !!c.opts.async;
      // A toolchain known to pass counts above the spec's maximum gets them clamped (src/runtime/deviations.ts).
      const tooLarge = deviationHooks(inst).countTooLarge;
      const f = tooLarge === null
        ? (i: number, ptr: unknown, n: unknown) => streamCopy(inst, isRead, t, cx, asyncOpt, i >>> 0, toNum(ptr), toNum(n))
        : (i: number, ptr: unknown, n: unknown) => {
          const count = toNum(n);
          return streamCopy(inst, isRead, t, cx, asyncOpt, i >>> 0, toNum(ptr), count > MAX_COUNT ? tooLarge(count) : count);
        };
      return asyncOpt ? guard(f) : blocking(inst, [['i32', 'i32', 'i32'], ['i32']], f);
    }
    case 'future.read': case 'future.write': {
      const isRead = c.kind === 'future.read';
      const t = info.valType as FutureType;
      const o = opts(c.opts);
      const cx = createContext(o, inst.handleOps);
      const asyncOpt = !!c.opts.async;
      const f = (i: number, ptr: unknown) => futureCopy(inst, isRead, t, cx, asyncOpt, i >>> 0, toNum(ptr));
      return asyncOpt ? guard(f) : blocking(inst, [['i32', 'i32'], ['i32']], f);
    }
    case 'stream.cancel-read': case 'stream.cancel-write': case 'future.cancel-read': case 'future.cancel-write': {
      const t = info.valType as StreamType | FutureType;
      const asyncOpt = c.async;
      const EndT = c.kind === 'stream.cancel-read' ? ReadableStreamEnd : c.kind === 'stream.cancel-write' ? WritableStreamEnd
        : c.kind === 'future.cancel-read' ? ReadableFutureEnd : WritableFutureEnd;
      // A toolchain known to cancel its wakeup read before leaving the waitable set (src/runtime/deviations.ts).
      const inSet = c.kind === 'stream.cancel-read' && !asyncOpt && t.elem === null ? deviationHooks(inst).syncCancelInSet : null;
      const f = (i: number) => cancelCopy(inst, EndT, t, asyncOpt, i >>> 0, inSet);
      return asyncOpt ? guard(f) : blocking(inst, I32_I32, f);
    }
    case 'stream.drop-readable': case 'stream.drop-writable': case 'future.drop-readable': case 'future.drop-writable': {
      const t = info.valType as StreamType | FutureType;
      const EndT = c.kind === 'stream.drop-readable' ? ReadableStreamEnd : c.kind === 'stream.drop-writable' ? WritableStreamEnd
        : c.kind === 'future.drop-readable' ? ReadableFutureEnd : WritableFutureEnd;
      return guard((i: number) => {
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        const e = inst.handles.remove(i >>> 0);
        trapIf(!(e instanceof EndT), `handle index ${i} is not a ${c.kind.startsWith('stream') ? 'stream' : 'future'} ${c.kind.endsWith('readable') ? 'readable' : 'writable'} end`);
        trapIf(!sameType((e as CopyEnd).shared.t, t.elem), 'stream/future type mismatch');
        (e as CopyEnd).drop();
        store.schedule();
      });
    }
    case 'error-context.new': {
      const o = opts(c.opts);
      const cx = createContext(o, inst.handleOps);
      return guard((ptr: unknown, units: unknown) => {
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        ensureViews(cx);
        const msg = loadStringFromRange(cx, toNum(ptr), typeof units === 'bigint' ? units : (units as number) >>> 0);
        return inst.handles.add(new ErrorContext(msg));
      });
    }
    case 'error-context.debug-message': {
      const o = opts(c.opts);
      const cx = createContext(o, inst.handleOps);
      const plan = planValue({ kind: 'string' }, o.memory64);
      return guard((i: number, ptr: unknown) => {
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        const e = inst.handles.get(i >>> 0);
        trapIf(!(e instanceof ErrorContext), `handle index ${i} is not an error-context`);
        ensureViews(cx);
        const p = toNum(ptr);
        checkRange(cx, p, plan.align, plan.size);
        plan.store(cx, (e as ErrorContext).debugMessage, p);
      });
    }
    case 'error-context.drop':
      return guard((i: number) => {
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        const e = inst.handles.remove(i >>> 0);
        trapIf(!(e instanceof ErrorContext), `handle index ${i} is not an error-context`);
      });
    case 'thread.index':
      return guard(() => {
        const t = currentThread();
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        return t.index;
      });
    case 'thread.new-indirect': {
      const table = s.coreTables[c.table]!;
      return guard((fi: number, arg: number) => threadNewIndirect(inst, table, fi >>> 0, arg));
    }
    case 'thread.resume-later':
      return guard((i: number) => {
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        const other = getThread(inst, i);
        trapIf(!other.suspended(), 'thread is not suspended');
        other.resumeLater();
      });
    case 'thread.suspend': {
      const cancellable = c.cancellable;
      return blocking(inst, NONE_I32, () => {
        const t = currentThread();
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        if (t.task.deliverPendingCancel(cancellable)) return 1;
        return t.suspendStackNow(null, cancellable, cancelledCode);
      });
    }
    case 'thread.yield': {
      const cancellable = c.cancellable;
      return blocking(inst, NONE_I32, () => {
        const t = currentThread();
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        return yieldNow(t, cancellable);
      });
    }
    case 'thread.suspend-then-resume': case 'thread.yield-then-resume': {
      const cancellable = c.cancellable;
      const yielding = c.kind === 'thread.yield-then-resume';
      return blocking(inst, I32_I32, (i: number) => {
        const t = currentThread();
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        const other = getThread(inst, i);
        trapIf(!other.suspended(), 'thread is not suspended');
        return switchTo(t, other, cancellable, yielding);
      });
    }
    case 'thread.suspend-then-promote': case 'thread.yield-then-promote': {
      const cancellable = c.cancellable;
      const yielding = c.kind === 'thread.yield-then-promote';
      return blocking(inst, I32_I32, (i: number) => {
        const t = currentThread();
        trapIf(!inst.mayLeave, 'cannot leave component instance');
        const other = getThread(inst, i);
        if (t.task.deliverPendingCancel(cancellable)) return 1;
        if (other.ready()) {
          other.readyFunc = null;
          return switchTo(t, other, cancellable, yielding);
        }
        if (yielding) return yieldNow(t, cancellable);
        return t.suspendStackNow(null, cancellable, cancelledCode);
      });
    }
    default:
      return () => { throw new Trap(`${c.kind} is not supported`); };
  }
}

const cancelledCode = (c: boolean) => (c ? 1 : 0);

function toNum(v: unknown): number {
  return typeof v === 'bigint' ? Number(BigInt.asUintN(64, v)) : (v as number) >>> 0;
}

function getWaitableSet(inst: ComponentInstanceState, si: number): WaitableSet {
  const w = inst.handles.get(si >>> 0);
  trapIf(!(w instanceof WaitableSet), `handle index ${si} is not a waitable set`);
  return w as WaitableSet;
}

function getThread(inst: ComponentInstanceState, i: number): Thread {
  const t = inst.threads.get(i >>> 0);
  return t as Thread;
}

/** unpack_event */
function unpackEvent(mem: WebAssembly.Memory, ptr: number, e: EventTuple): number {
  const p = ptr >>> 0;
  const buf = mem.buffer;
  trapIf(p % 4 !== 0, `misaligned pointer: ${p} is not aligned to 4`);
  trapIf(p + 8 > buf.byteLength, `out of bounds memory access: ${p}+8 exceeds memory size ${buf.byteLength}`);
  const dv = new DataView(buf);
  dv.setUint32(p, e[1], true);
  dv.setUint32(p + 4, e[2], true);
  return e[0];
}

function yieldNow(t: Thread, cancellable: boolean): number | Promise<number> {
  if (t.task.deliverPendingCancel(cancellable)) return 1;
  return t.suspendStackNow(() => true, cancellable, cancelledCode, true);
}

/** Block `t` (suspended, or yielding) and transfer control to the suspended thread `other`. */
function switchTo(t: Thread, other: Thread, cancellable: boolean, yielding: boolean): number | Promise<number> {
  if (t.task.deliverPendingCancel(cancellable)) return 1;
  const p = t.suspendStackNow(yielding ? () => true : null, cancellable, cancelledCode, yielding);
  resumeNow(other);
  return p;
}

/** Resume a thread of the running instance right away (synchronously, unless it sits on a JSPI stack). */
function resumeNow(other: Thread): void {
  if (other.jspiSuspended) { other.resume(false); return; }
  const prev = current;
  try { other.resume(false); } finally { setCurrent(prev); }
}

// ------------------------------------------------------------------ task.return / threads

function taskReturn(inst: ComponentInstanceState, rt: ValType | null, o: CanonOptions): (...args: unknown[]) => void {
  const ft: FuncType = { kind: 'func', async: true, params: [], result: rt };
  const adapter = planAsyncLift(ft, o.memory64, true);
  const cx = createContext(o, inst.handleOps);
  return (...args: unknown[]) => {
    const task = currentThread().task;
    trapIf(!inst.mayLeave, 'cannot leave component instance');
    trapIf(!task.async, 'invalid `task.return` signature and/or options for current task (the task is synchronous)');
    trapIf(!sameType(rt, task.ft.result), 'invalid `task.return` signature and/or options for current task');
    const to = task.opts!;
    // LiftOptions.equal(opts, task.opts); a task.return without `memory` (it lifts nothing from memory) is accepted
    // for a lift that has one, as the reference tests expect.
    trapIf(to.stringEncoding !== o.stringEncoding || (o.memory !== null && to.memory !== o.memory), 'invalid `task.return` signature and/or options for current task');
    const result = adapter.liftTaskReturn(cx, args);
    task.return_(result);
  };
}

function threadNewIndirect(inst: ComponentInstanceState, table: WebAssembly.Table, fi: number, arg: number): number {
  const task = currentThread().task;
  trapIf(!inst.mayLeave, 'cannot leave component instance');
  trapIf(fi >= table.length, `table index ${fi} out of bounds`);
  const f = table.get(fi) as Function | null;
  trapIf(f === null, 'uninitialized table element');
  const t = new Thread(task);
  const entry: CoreEntry = { fn: f!, promising: inst.jspi ? promisingEntry(f!, ['i32'], [], entryFinished) : null };
  const done = () => task.unregisterThread(t);
  t.cont = () => {
    const r = runEntry(t, entry, [arg]);
    if (r === SUSPENDED) t.entryDone = done;
    else done();
  };
  task.registerThread(t);
  return t.index;
}

// ------------------------------------------------------------------ subtasks

function subtaskCancel(inst: ComponentInstanceState, asyncOpt: boolean, i: number): number | Promise<number> {
  const t = currentThread();
  trapIf(!inst.mayLeave, 'cannot leave component instance');
  const st = inst.handles.get(i);
  trapIf(!(st instanceof Subtask), `handle index ${i} is not a subtask`);
  const subtask = st as Subtask;
  trapIf(subtask.resolveDelivered(), '`subtask.cancel` called after terminal status delivered');
  trapIf(subtask.cancellationRequested, '`subtask.cancel` called twice');
  trapIf(subtask.inWaitableSet() && !asyncOpt, 'waitable cannot be used synchronously while added to a waitable set');
  const finish = () => {
    subtask.getPendingEvent();
    return subtask.state;
  };
  if (!subtask.resolved()) {
    subtask.cancellationRequested = true;
    subtask.onCancel!.requestCancellation(inst);
    if (!subtask.resolved()) {
      if (!asyncOpt) return subtask.waitForPendingEvent(t, finish);
      return BLOCKED_CODE;
    }
  }
  return finish();
}

// ------------------------------------------------------------------ copies

function streamCopy(inst: ComponentInstanceState, isRead: boolean, t: StreamType, cx: LiftLowerContext, asyncOpt: boolean, i: number, ptr: number, n: number): number | Promise<number> {
  const th = currentThread();
  trapIf(!inst.mayLeave, 'cannot leave component instance');
  const e = inst.handles.get(i);
  trapIf(!(e instanceof (isRead ? ReadableStreamEnd : WritableStreamEnd)), `handle index ${i} is not a ${isRead ? 'readable' : 'writable'} stream end`);
  const end = e as CopyEnd;
  trapIf(!sameType(end.shared.t, t.elem), 'stream type mismatch');
  trapIf(end.state === CopyState.DONE, isRead ? 'cannot read after being notified that the writable end dropped' : 'cannot write after being notified that the readable end dropped');
  trapIf(end.state !== CopyState.IDLE, 'cannot have concurrent operations active on a future/stream');
  trapIf(end.inWaitableSet() && !asyncOpt, 'waitable cannot be used synchronously while added to a waitable set');
  const buffer = new GuestBuffer(t.elem, cx, ptr, n);
  const code = isRead ? EventCode.STREAM_READ : EventCode.STREAM_WRITE;
  const streamEvent = (result: number, reclaim: (() => void) | null): EventTuple => {
    if (reclaim) {
      reclaim();
      // A partial copy whose buffer the other side still held is reported as cancelled when
      // cancellation was requested (as the reference tests expect).
      if (end.state === CopyState.CANCELLING_COPY) result = CopyResult.CANCELLED;
    }
    end.state = result === CopyResult.DROPPED ? CopyState.DONE : CopyState.IDLE;
    return [code, i, (result | (buffer.progress << 4)) >>> 0];
  };
  const onCopy = (reclaim: () => void) => { end.setPendingEvent(() => streamEvent(CopyResult.COMPLETED, reclaim)); };
  const onCopyDone = (result: number) => { end.setPendingEvent(() => streamEvent(result, null)); };
  end.state = CopyState.COPYING;
  const shared = end.shared as SharedStream;
  if (isRead) shared.read(inst, buffer, onCopy, onCopyDone);
  else shared.write(inst, buffer, onCopy, onCopyDone);
  return finishCopy(th, end, asyncOpt);
}

function finishCopy(th: Thread, end: CopyEnd, asyncOpt: boolean): number | Promise<number> {
  const payload = () => end.getPendingEvent()[2] | 0;
  if (!end.hasPendingEvent()) {
    if (!asyncOpt) return end.waitForPendingEvent(th, payload, true);
    return BLOCKED_CODE;
  }
  return payload();
}

function futureCopy(inst: ComponentInstanceState, isRead: boolean, t: FutureType, cx: LiftLowerContext, asyncOpt: boolean, i: number, ptr: number): number | Promise<number> {
  const th = currentThread();
  trapIf(!inst.mayLeave, 'cannot leave component instance');
  const e = inst.handles.get(i);
  trapIf(!(e instanceof (isRead ? ReadableFutureEnd : WritableFutureEnd)), `handle index ${i} is not a ${isRead ? 'readable' : 'writable'} future end`);
  const end = e as CopyEnd;
  trapIf(!sameType(end.shared.t, t.elem), 'future type mismatch');
  trapIf(end.state === CopyState.DONE, isRead ? 'cannot read from future after previous read succeeded' : 'cannot write to future after previous write succeeded or readable end dropped');
  trapIf(end.state !== CopyState.IDLE, 'cannot have concurrent operations active on a future/stream');
  trapIf(end.inWaitableSet() && !asyncOpt, 'waitable cannot be used synchronously while added to a waitable set');
  const buffer = new GuestBuffer(t.elem, cx, ptr, 1);
  const code = isRead ? EventCode.FUTURE_READ : EventCode.FUTURE_WRITE;
  const onCopyDone = (result: number) => {
    end.setPendingEvent(() => {
      end.state = result === CopyResult.DROPPED || result === CopyResult.COMPLETED ? CopyState.DONE : CopyState.IDLE;
      return [code, i, result];
    });
  };
  end.state = CopyState.COPYING;
  const shared = end.shared as SharedFuture;
  if (isRead) shared.read(inst, buffer, onCopyDone);
  else shared.write(inst, buffer, onCopyDone);
  return finishCopy(th, end, asyncOpt);
}

function cancelCopy(inst: ComponentInstanceState, EndT: typeof CopyEnd, t: StreamType | FutureType, asyncOpt: boolean, i: number,
  inSet: ((end: CopyEnd) => void) | null = null): number | Promise<number> {
  const th = currentThread();
  trapIf(!inst.mayLeave, 'cannot leave component instance');
  const e = inst.handles.get(i);
  trapIf(!(e instanceof EndT), `handle index ${i} has the wrong type for this cancel`);
  const end = e as CopyEnd;
  trapIf(!sameType(end.shared.t, t.elem), 'stream/future type mismatch');
  trapIf(end.state !== CopyState.COPYING || end.hasSyncWaiter(), 'cannot cancel a copy that is not in progress');
  if (end.inWaitableSet() && !asyncOpt) {
    trapIf(inSet === null, 'waitable cannot be used synchronously while added to a waitable set');
    inSet!(end); // leaves the set (a listed toolchain's deviation), or traps naming the toolchain
  }
  end.state = CopyState.CANCELLING_COPY;
  if (!end.hasPendingEvent()) {
    end.shared.cancel();
    if (!end.hasPendingEvent()) {
      if (!asyncOpt) return end.waitForPendingEvent(th, () => end.getPendingEvent()[2] | 0, true);
      return BLOCKED_CODE;
    }
  }
  return end.getPendingEvent()[2] | 0;
}

export { LiftedFunc, TaskState };

// The canon definitions (CanonicalABI.md "Canonical Definitions"): one
// builder per built-in, named after its definitions.py `canon_*` function and
// grouped as the spec groups them (lift/lower, resources, 🔀 context and
// backpressure, tasks, waitable sets, subtasks, streams and futures, 🧵 threads,
// 📝 error contexts), and the table `buildCanon` dispatches through. The
// instantiator calls `buildCanon` for every `canon` definition. `canon lift`
// and `canon lower` themselves are in call.ts (synchronous) and async-call.ts.

import type { Canon, CanonOpts } from '../binary/ast.ts';
import { createContext, ensureViews, checkRange, type CanonOptions, type LiftLowerContext } from '../abi/context.ts';
import { planAsyncLift } from '../abi/func.ts';
import { planValue } from '../abi/plan.ts';
import { loadStringFromRange } from '../abi/strings.ts';
import { trap, trapIf } from '../errors.ts';
import type { CanonInfo, ComponentDef } from '../types/validate.ts';
import type { FuncType, FutureType, StreamType } from '../types/types.ts';
import { resourceDrop, resourceNew, resourceRep, type ComponentInstanceState } from './instance.ts';
import { ComponentFunc, HostFunc, lowerSync, LiftedFunc, toTrap } from './call.ts';
import type { RtScope } from './instantiate.ts';
import { AsyncLiftedFunc, lowerAsync, lowerBlocking } from './async-call.ts';
import {
  current, currentThread, entryFinished, noteTrap, runEntry, setCurrent, store, SUSPENDED, Thread,
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
import { ErrorContext } from './error-context.ts';

export const BLOCKED_CODE = 0xffff_ffff | 0;


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
  bindDeviations(def, inst);
}

// ------------------------------------------------------------------ building a built-in

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

type CanonOf<K extends Canon['kind']> = Canon & { kind: K };

/**
 * Builds one `canon` definition of an instance: the component function of a
 * `canon lift`, the core function of any other. Every builder is named after
 * its definitions.py `canon_*` function; the static immediates come from `c`
 * and `info`, the dynamic arguments are those of the returned function.
 */
type Builder<K extends Canon['kind']> = (inst: ComponentInstanceState, c: CanonOf<K>, info: CanonInfo, s: RtScope, opts: RtOpts) => Function | ComponentFunc;

/** The dispatch table, in the order of CanonicalABI.md "Canonical Definitions". */
const BUILTINS: { [K in Canon['kind']]?: Builder<K> } = {
  'lift': canonLift,
  'lower': canonLower,
  'resource.new': canonResourceNew,
  'resource.drop': canonResourceDrop,
  'resource.rep': canonResourceRep,
  'context.get': canonContextGet,
  'context.set': canonContextSet,
  'backpressure.inc': canonBackpressureInc,
  'backpressure.dec': canonBackpressureDec,
  'task.return': canonTaskReturn,
  'task.cancel': canonTaskCancel,
  'waitable-set.new': canonWaitableSetNew,
  'waitable-set.wait': canonWaitableSetWait,
  'waitable-set.poll': canonWaitableSetPoll,
  'waitable-set.drop': canonWaitableSetDrop,
  'waitable.join': canonWaitableJoin,
  'subtask.cancel': canonSubtaskCancel,
  'subtask.drop': canonSubtaskDrop,
  'stream.new': canonStreamNew,
  'future.new': canonFutureNew,
  'stream.read': canonStreamRead,
  'stream.write': canonStreamWrite,
  'future.read': canonFutureRead,
  'future.write': canonFutureWrite,
  'stream.cancel-read': canonStreamCancelRead,
  'stream.cancel-write': canonStreamCancelWrite,
  'future.cancel-read': canonFutureCancelRead,
  'future.cancel-write': canonFutureCancelWrite,
  'stream.drop-readable': canonStreamDropReadable,
  'stream.drop-writable': canonStreamDropWritable,
  'future.drop-readable': canonFutureDropReadable,
  'future.drop-writable': canonFutureDropWritable,
  'thread.index': canonThreadIndex,
  'thread.new-indirect': canonThreadNewIndirect,
  'thread.resume-later': canonThreadResumeLater,
  'thread.suspend': canonThreadSuspend,
  'thread.yield': canonThreadYield,
  'thread.suspend-then-resume': canonThreadSuspendThenResume,
  'thread.yield-then-resume': canonThreadYieldThenResume,
  'thread.suspend-then-promote': canonThreadSuspendThenPromote,
  'thread.yield-then-promote': canonThreadYieldThenPromote,
  'error-context.new': canonErrorContextNew,
  'error-context.debug-message': canonErrorContextDebugMessage,
  'error-context.drop': canonErrorContextDrop,
};

export function buildCanon(inst: ComponentInstanceState, c: Canon, info: CanonInfo, s: RtScope, opts: RtOpts): Function | ComponentFunc {
  const build = BUILTINS[c.kind] as Builder<Canon['kind']> | undefined;
  if (build === undefined) return () => trap('not-supported', c.kind);
  return build(inst, c, info, s, opts);
}

// ------------------------------------------------------------------ canon lift / canon lower

/** canon_lift: the synchronous ABI of a non-async type is call.ts's LiftedFunc, the rest async-call.ts's AsyncLiftedFunc. */
function canonLift(inst: ComponentInstanceState, c: CanonOf<'lift'>, info: CanonInfo, s: RtScope, opts: RtOpts): ComponentFunc {
  const ft = info.ft!;
  const core = s.coreFuncs[c.func]!;
  if (!c.opts.async && !ft.async) return new LiftedFunc(ft, inst, core, opts(c.opts));
  const o = opts(c.opts);
  const cb = c.opts.callback !== undefined ? s.coreFuncs[c.opts.callback]! : null;
  return new AsyncLiftedFunc(ft, inst, core, o, !!c.opts.async, cb);
}

/**
 * canon_lower: the async ABI (lowerAsync), a synchronous call that may block
 * (lowerBlocking, through a JSPI Suspending import), or one that cannot (lowerSync).
 */
function canonLower(inst: ComponentInstanceState, c: CanonOf<'lower'>, info: CanonInfo, s: RtScope, opts: RtOpts): Function {
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

// ------------------------------------------------------------------ resources

/** canon_resource_new */
function canonResourceNew(inst: ComponentInstanceState, _c: CanonOf<'resource.new'>, info: CanonInfo): Function {
  const R = inst.resource(info.rt!);
  return (rep: number) => resourceNew(inst, R, rep);
}

/** canon_resource_drop */
function canonResourceDrop(inst: ComponentInstanceState, _c: CanonOf<'resource.drop'>, info: CanonInfo): Function {
  const R = inst.resource(info.rt!);
  return (i: number) => { try { resourceDrop(inst, R, i >>> 0); } catch (e) { throw toTrap(e); } };
}

/** canon_resource_rep */
function canonResourceRep(inst: ComponentInstanceState, _c: CanonOf<'resource.rep'>, info: CanonInfo): Function {
  const R = inst.resource(info.rt!);
  return (i: number) => resourceRep(inst, R, i >>> 0);
}

// ------------------------------------------------------------------ 🔀 context, backpressure

/** canon_context_get */
function canonContextGet(_inst: ComponentInstanceState, c: CanonOf<'context.get'>): Function {
  const i = c.index;
  return guard(() => {
    const t = currentThread();
    return i === 0 ? t.storage0 : t.storage1;
  });
}

/** canon_context_set */
function canonContextSet(_inst: ComponentInstanceState, c: CanonOf<'context.set'>): Function {
  const i = c.index;
  return guard((v: number) => {
    const t = currentThread();
    if (i === 0) t.storage0 = v; else t.storage1 = v;
  });
}

/** canon_backpressure_inc */
function canonBackpressureInc(inst: ComponentInstanceState): Function {
  return guard(() => {
    inst.backpressure++;
    trapIf(inst.backpressure >= 2 ** 16, 'backpressure-overflow');
  });
}

/** canon_backpressure_dec */
function canonBackpressureDec(inst: ComponentInstanceState): Function {
  return guard(() => {
    inst.backpressure--;
    trapIf(inst.backpressure < 0, 'backpressure-underflow');
    if (inst.backpressure === 0) wakeBackpressureWaiters(inst);
  });
}

// ------------------------------------------------------------------ 🔀 tasks

/** canon_task_return */
function canonTaskReturn(inst: ComponentInstanceState, c: CanonOf<'task.return'>, info: CanonInfo, _s: RtScope, opts: RtOpts): Function {
  const rt = info.valType ?? null;
  const o = opts(c.opts);
  const ft: FuncType = { kind: 'func', async: true, params: [], result: rt };
  const adapter = planAsyncLift(ft, o.memory64, true);
  const cx = createContext(o, inst.handleOps);
  return guard((...args: unknown[]) => {
    const task = currentThread().task;
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    trapIf(!task.async, 'task-return-sync');
    trapIf(!sameType(rt, task.ft.result), 'task-return-mismatch');
    const to = task.opts!;
    // LiftOptions.equal(opts, task.opts); a task.return without `memory` (it lifts nothing from memory) is accepted
    // for a lift that has one, as the reference tests expect.
    trapIf(to.stringEncoding !== o.stringEncoding || (o.memory !== null && to.memory !== o.memory), 'task-return-mismatch');
    const result = adapter.liftTaskReturn(cx, args);
    task.return_(result);
  });
}

/** canon_task_cancel */
function canonTaskCancel(inst: ComponentInstanceState): Function {
  return guard(() => {
    const task = currentThread().task;
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    trapIf(!task.async, 'task-cancel-sync');
    task.cancel();
  });
}

// ------------------------------------------------------------------ 🔀 waitable sets

/** canon_waitable_set_new */
function canonWaitableSetNew(inst: ComponentInstanceState): Function {
  return guard(() => {
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    return inst.handles.add(new WaitableSet());
  });
}

/** canon_waitable_set_wait */
function canonWaitableSetWait(inst: ComponentInstanceState, c: CanonOf<'waitable-set.wait'>, _info: CanonInfo, s: RtScope): Function {
  const mem = s.coreMemories[c.memory]!;
  const cancellable = c.cancellable;
  return blocking(inst, [['i32', 'i32'], ['i32']], (si: number, ptr: number) => {
    const t = currentThread();
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    const wset = getWaitableSet(inst, si);
    return wset.waitForEventStack(t, cancellable, (e) => unpackEvent(mem, ptr, e));
  });
}

/** canon_waitable_set_poll */
function canonWaitableSetPoll(inst: ComponentInstanceState, c: CanonOf<'waitable-set.poll'>, _info: CanonInfo, s: RtScope): Function {
  const mem = s.coreMemories[c.memory]!;
  const cancellable = c.cancellable;
  return guard((si: number, ptr: number) => {
    const t = currentThread();
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    const wset = getWaitableSet(inst, si);
    return unpackEvent(mem, ptr, wset.poll(t, cancellable));
  });
}

/** canon_waitable_set_drop */
function canonWaitableSetDrop(inst: ComponentInstanceState): Function {
  return guard((si: number) => {
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    const w = inst.handles.remove(si >>> 0);
    trapIf(!(w instanceof WaitableSet), 'handle-not-waitable-set', si);
    (w as WaitableSet).drop();
  });
}

/** canon_waitable_join */
function canonWaitableJoin(inst: ComponentInstanceState): Function {
  return guard((wi: number, si: number) => {
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    const w = inst.handles.get(wi >>> 0);
    trapIf(!(w instanceof Waitable), 'handle-not-waitable', wi);
    trapIf((w as Waitable).hasSyncWaiter(), 'join-sync-waited');
    if (si === 0) (w as Waitable).join(null);
    else (w as Waitable).join(getWaitableSet(inst, si));
  });
}

function getWaitableSet(inst: ComponentInstanceState, si: number): WaitableSet {
  const w = inst.handles.get(si >>> 0);
  trapIf(!(w instanceof WaitableSet), 'handle-not-waitable-set', si);
  return w as WaitableSet;
}

/** unpack_event */
function unpackEvent(mem: WebAssembly.Memory, ptr: number, e: EventTuple): number {
  const p = ptr >>> 0;
  const buf = mem.buffer;
  trapIf(p % 4 !== 0, 'misaligned-pointer', p, 4);
  trapIf(p + 8 > buf.byteLength, 'out-of-bounds', p, 8, buf.byteLength);
  const dv = new DataView(buf);
  dv.setUint32(p, e[1], true);
  dv.setUint32(p + 4, e[2], true);
  return e[0];
}

// ------------------------------------------------------------------ 🔀 subtasks

/** canon_subtask_cancel */
function canonSubtaskCancel(inst: ComponentInstanceState, c: CanonOf<'subtask.cancel'>): Function {
  const asyncOpt = c.async;
  const f = (i: number) => subtaskCancel(inst, asyncOpt, i >>> 0);
  return asyncOpt ? guard(f) : blocking(inst, I32_I32, f);
}

function subtaskCancel(inst: ComponentInstanceState, asyncOpt: boolean, i: number): number | Promise<number> {
  const t = currentThread();
  trapIf(!inst.mayLeave, 'cannot-leave-component');
  const st = inst.handles.get(i);
  trapIf(!(st instanceof Subtask), 'handle-not-subtask', i);
  const subtask = st as Subtask;
  trapIf(subtask.resolveDelivered(), 'subtask-cancel-after-resolve');
  trapIf(subtask.cancellationRequested, 'subtask-cancel-twice');
  trapIf(subtask.inWaitableSet() && !asyncOpt, 'sync-in-waitable-set');
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

/** canon_subtask_drop */
function canonSubtaskDrop(inst: ComponentInstanceState): Function {
  return guard((i: number) => {
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    const st = inst.handles.remove(i >>> 0);
    trapIf(!(st instanceof Subtask), 'handle-not-subtask', i);
    (st as Subtask).drop();
  });
}

// ------------------------------------------------------------------ 🔀 streams and futures

/** canon_stream_new */
function canonStreamNew(inst: ComponentInstanceState, _c: CanonOf<'stream.new'>, info: CanonInfo): Function {
  const t = info.valType as StreamType;
  return guard(() => {
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    const shared = new SharedStreamImpl(t.elem);
    const ri = inst.handles.add(new ReadableStreamEnd(shared));
    const wi = inst.handles.add(new WritableStreamEnd(shared));
    return BigInt(ri) | (BigInt(wi) << 32n);
  });
}

/** canon_future_new */
function canonFutureNew(inst: ComponentInstanceState, _c: CanonOf<'future.new'>, info: CanonInfo): Function {
  const t = info.valType as FutureType;
  return guard(() => {
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    const shared = new SharedFutureImpl(t.elem);
    const ri = inst.handles.add(new ReadableFutureEnd(shared));
    const wi = inst.handles.add(new WritableFutureEnd(shared));
    return BigInt(ri) | (BigInt(wi) << 32n);
  });
}

/** canon_stream_read */
function canonStreamRead(inst: ComponentInstanceState, c: CanonOf<'stream.read'>, info: CanonInfo, _s: RtScope, opts: RtOpts): Function {
  return streamCopyBuiltin(inst, true, info.valType as StreamType, c.opts, opts);
}

/** canon_stream_write */
function canonStreamWrite(inst: ComponentInstanceState, c: CanonOf<'stream.write'>, info: CanonInfo, _s: RtScope, opts: RtOpts): Function {
  return streamCopyBuiltin(inst, false, info.valType as StreamType, c.opts, opts);
}

function streamCopyBuiltin(inst: ComponentInstanceState, isRead: boolean, t: StreamType, co: CanonOpts, opts: RtOpts): Function {
  const o = opts(co);
  const cx = createContext(o, inst.handleOps);
  const asyncOpt = !!co.async;
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

/** stream_copy */
function streamCopy(inst: ComponentInstanceState, isRead: boolean, t: StreamType, cx: LiftLowerContext, asyncOpt: boolean, i: number, ptr: number, n: number): number | Promise<number> {
  const th = currentThread();
  trapIf(!inst.mayLeave, 'cannot-leave-component');
  const e = inst.handles.get(i);
  trapIf(!(e instanceof (isRead ? ReadableStreamEnd : WritableStreamEnd)), 'handle-not-stream-end', i, isRead ? 'readable' : 'writable');
  const end = e as CopyEnd;
  trapIf(!sameType(end.shared.t, t.elem), 'stream-type-mismatch');
  trapIf(end.state === CopyState.DONE, isRead ? 'stream-read-after-drop' : 'stream-write-after-drop');
  trapIf(end.state !== CopyState.IDLE, 'concurrent-copy');
  trapIf(end.inWaitableSet() && !asyncOpt, 'sync-in-waitable-set');
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

/** canon_future_read */
function canonFutureRead(inst: ComponentInstanceState, c: CanonOf<'future.read'>, info: CanonInfo, _s: RtScope, opts: RtOpts): Function {
  return futureCopyBuiltin(inst, true, info.valType as FutureType, c.opts, opts);
}

/** canon_future_write */
function canonFutureWrite(inst: ComponentInstanceState, c: CanonOf<'future.write'>, info: CanonInfo, _s: RtScope, opts: RtOpts): Function {
  return futureCopyBuiltin(inst, false, info.valType as FutureType, c.opts, opts);
}

function futureCopyBuiltin(inst: ComponentInstanceState, isRead: boolean, t: FutureType, co: CanonOpts, opts: RtOpts): Function {
  const o = opts(co);
  const cx = createContext(o, inst.handleOps);
  const asyncOpt = !!co.async;
  const f = (i: number, ptr: unknown) => futureCopy(inst, isRead, t, cx, asyncOpt, i >>> 0, toNum(ptr));
  return asyncOpt ? guard(f) : blocking(inst, [['i32', 'i32'], ['i32']], f);
}

/** future_copy */
function futureCopy(inst: ComponentInstanceState, isRead: boolean, t: FutureType, cx: LiftLowerContext, asyncOpt: boolean, i: number, ptr: number): number | Promise<number> {
  const th = currentThread();
  trapIf(!inst.mayLeave, 'cannot-leave-component');
  const e = inst.handles.get(i);
  trapIf(!(e instanceof (isRead ? ReadableFutureEnd : WritableFutureEnd)), 'handle-not-future-end', i, isRead ? 'readable' : 'writable');
  const end = e as CopyEnd;
  trapIf(!sameType(end.shared.t, t.elem), 'future-type-mismatch');
  trapIf(end.state === CopyState.DONE, isRead ? 'future-read-after-read' : 'future-write-after-write');
  trapIf(end.state !== CopyState.IDLE, 'concurrent-copy');
  trapIf(end.inWaitableSet() && !asyncOpt, 'sync-in-waitable-set');
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

/** canon_stream_cancel_read */
function canonStreamCancelRead(inst: ComponentInstanceState, c: CanonOf<'stream.cancel-read'>, info: CanonInfo): Function {
  const t = info.valType as StreamType;
  // A toolchain known to cancel its wakeup read before leaving the waitable set (src/runtime/deviations.ts).
  const inSet = !c.async && t.elem === null ? deviationHooks(inst).syncCancelInSet : null;
  return cancelCopyBuiltin(inst, ReadableStreamEnd, t, c.async, inSet);
}

/** canon_stream_cancel_write */
function canonStreamCancelWrite(inst: ComponentInstanceState, c: CanonOf<'stream.cancel-write'>, info: CanonInfo): Function {
  return cancelCopyBuiltin(inst, WritableStreamEnd, info.valType as StreamType, c.async, null);
}

/** canon_future_cancel_read */
function canonFutureCancelRead(inst: ComponentInstanceState, c: CanonOf<'future.cancel-read'>, info: CanonInfo): Function {
  return cancelCopyBuiltin(inst, ReadableFutureEnd, info.valType as FutureType, c.async, null);
}

/** canon_future_cancel_write */
function canonFutureCancelWrite(inst: ComponentInstanceState, c: CanonOf<'future.cancel-write'>, info: CanonInfo): Function {
  return cancelCopyBuiltin(inst, WritableFutureEnd, info.valType as FutureType, c.async, null);
}

function cancelCopyBuiltin(inst: ComponentInstanceState, EndT: typeof CopyEnd, t: StreamType | FutureType, asyncOpt: boolean,
  inSet: ((end: CopyEnd) => void) | null): Function {
  const f = (i: number) => cancelCopy(inst, EndT, t, asyncOpt, i >>> 0, inSet);
  return asyncOpt ? guard(f) : blocking(inst, I32_I32, f);
}

/** cancel_copy */
function cancelCopy(inst: ComponentInstanceState, EndT: typeof CopyEnd, t: StreamType | FutureType, asyncOpt: boolean, i: number,
  inSet: ((end: CopyEnd) => void) | null): number | Promise<number> {
  const th = currentThread();
  trapIf(!inst.mayLeave, 'cannot-leave-component');
  const e = inst.handles.get(i);
  trapIf(!(e instanceof EndT), 'handle-wrong-cancel-type', i);
  const end = e as CopyEnd;
  trapIf(!sameType(end.shared.t, t.elem), 'copy-type-mismatch');
  trapIf(end.state !== CopyState.COPYING || end.hasSyncWaiter(), 'cancel-without-copy');
  if (end.inWaitableSet() && !asyncOpt) {
    trapIf(inSet === null, 'sync-in-waitable-set');
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

/** canon_stream_drop_readable */
function canonStreamDropReadable(inst: ComponentInstanceState, _c: CanonOf<'stream.drop-readable'>, info: CanonInfo): Function {
  return dropBuiltin(inst, ReadableStreamEnd, info.valType as StreamType, 'stream readable');
}

/** canon_stream_drop_writable */
function canonStreamDropWritable(inst: ComponentInstanceState, _c: CanonOf<'stream.drop-writable'>, info: CanonInfo): Function {
  return dropBuiltin(inst, WritableStreamEnd, info.valType as StreamType, 'stream writable');
}

/** canon_future_drop_readable */
function canonFutureDropReadable(inst: ComponentInstanceState, _c: CanonOf<'future.drop-readable'>, info: CanonInfo): Function {
  return dropBuiltin(inst, ReadableFutureEnd, info.valType as FutureType, 'future readable');
}

/** canon_future_drop_writable */
function canonFutureDropWritable(inst: ComponentInstanceState, _c: CanonOf<'future.drop-writable'>, info: CanonInfo): Function {
  return dropBuiltin(inst, WritableFutureEnd, info.valType as FutureType, 'future writable');
}

/** drop (of a stream or future end) */
function dropBuiltin(inst: ComponentInstanceState, EndT: typeof CopyEnd, t: StreamType | FutureType, what: string): Function {
  return guard((i: number) => {
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    const e = inst.handles.remove(i >>> 0);
    trapIf(!(e instanceof EndT), 'handle-not-copy-end', i, what);
    trapIf(!sameType((e as CopyEnd).shared.t, t.elem), 'copy-type-mismatch');
    (e as CopyEnd).drop();
    store.schedule();
  });
}

// ------------------------------------------------------------------ 🧵 threads

/** canon_thread_index */
function canonThreadIndex(inst: ComponentInstanceState): Function {
  return guard(() => {
    const t = currentThread();
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    return t.index;
  });
}

/** canon_thread_new_indirect */
function canonThreadNewIndirect(inst: ComponentInstanceState, c: CanonOf<'thread.new-indirect'>, _info: CanonInfo, s: RtScope): Function {
  const table = s.coreTables[c.table]!;
  return guard((fi: number, arg: number) => threadNewIndirect(inst, table, fi >>> 0, arg));
}

function threadNewIndirect(inst: ComponentInstanceState, table: WebAssembly.Table, fi: number, arg: number): number {
  const task = currentThread().task;
  trapIf(!inst.mayLeave, 'cannot-leave-component');
  trapIf(fi >= table.length, 'table-index-out-of-bounds', fi);
  const f = table.get(fi) as Function | null;
  trapIf(f === null, 'uninitialized-table-element');
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

/** canon_thread_resume_later */
function canonThreadResumeLater(inst: ComponentInstanceState): Function {
  return guard((i: number) => {
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    const other = getThread(inst, i);
    trapIf(!other.suspended(), 'thread-not-suspended');
    other.resumeLater();
  });
}

/** canon_thread_suspend */
function canonThreadSuspend(inst: ComponentInstanceState, c: CanonOf<'thread.suspend'>): Function {
  const cancellable = c.cancellable;
  return blocking(inst, NONE_I32, () => {
    const t = currentThread();
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    if (t.task.deliverPendingCancel(cancellable)) return 1;
    return t.suspendStackNow(null, cancellable, cancelledCode);
  });
}

/** canon_thread_yield */
function canonThreadYield(inst: ComponentInstanceState, c: CanonOf<'thread.yield'>): Function {
  const cancellable = c.cancellable;
  return blocking(inst, NONE_I32, () => {
    const t = currentThread();
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    return yieldNow(t, cancellable);
  });
}

/** canon_thread_suspend_then_resume */
function canonThreadSuspendThenResume(inst: ComponentInstanceState, c: CanonOf<'thread.suspend-then-resume'>): Function {
  return thenResume(inst, c.cancellable, false);
}

/** canon_thread_yield_then_resume */
function canonThreadYieldThenResume(inst: ComponentInstanceState, c: CanonOf<'thread.yield-then-resume'>): Function {
  return thenResume(inst, c.cancellable, true);
}

function thenResume(inst: ComponentInstanceState, cancellable: boolean, yielding: boolean): Function {
  return blocking(inst, I32_I32, (i: number) => {
    const t = currentThread();
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    const other = getThread(inst, i);
    trapIf(!other.suspended(), 'thread-not-suspended');
    return switchTo(t, other, cancellable, yielding);
  });
}

/** canon_thread_suspend_then_promote */
function canonThreadSuspendThenPromote(inst: ComponentInstanceState, c: CanonOf<'thread.suspend-then-promote'>): Function {
  return thenPromote(inst, c.cancellable, false);
}

/** canon_thread_yield_then_promote */
function canonThreadYieldThenPromote(inst: ComponentInstanceState, c: CanonOf<'thread.yield-then-promote'>): Function {
  return thenPromote(inst, c.cancellable, true);
}

function thenPromote(inst: ComponentInstanceState, cancellable: boolean, yielding: boolean): Function {
  return blocking(inst, I32_I32, (i: number) => {
    const t = currentThread();
    trapIf(!inst.mayLeave, 'cannot-leave-component');
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

const cancelledCode = (c: boolean) => (c ? 1 : 0);

function getThread(inst: ComponentInstanceState, i: number): Thread {
  const t = inst.threads.get(i >>> 0);
  return t as Thread;
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

// ------------------------------------------------------------------ 📝 error contexts

/** canon_error_context_new */
function canonErrorContextNew(inst: ComponentInstanceState, c: CanonOf<'error-context.new'>, _info: CanonInfo, _s: RtScope, opts: RtOpts): Function {
  const cx = createContext(opts(c.opts), inst.handleOps);
  return guard((ptr: unknown, units: unknown) => {
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    ensureViews(cx);
    const msg = loadStringFromRange(cx, toNum(ptr), typeof units === 'bigint' ? units : (units as number) >>> 0);
    return inst.handles.add(new ErrorContext(msg));
  });
}

/** canon_error_context_debug_message */
function canonErrorContextDebugMessage(inst: ComponentInstanceState, c: CanonOf<'error-context.debug-message'>, _info: CanonInfo, _s: RtScope, opts: RtOpts): Function {
  const o = opts(c.opts);
  const cx = createContext(o, inst.handleOps);
  const plan = planValue({ kind: 'string' }, o.memory64);
  return guard((i: number, ptr: unknown) => {
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    const e = inst.handles.get(i >>> 0);
    trapIf(!(e instanceof ErrorContext), 'handle-not-error-context', i);
    ensureViews(cx);
    const p = toNum(ptr);
    checkRange(cx, p, plan.align, plan.size);
    plan.store(cx, (e as ErrorContext).debugMessage, p);
  });
}

/** canon_error_context_drop */
function canonErrorContextDrop(inst: ComponentInstanceState): Function {
  return guard((i: number) => {
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    const e = inst.handles.remove(i >>> 0);
    trapIf(!(e instanceof ErrorContext), 'handle-not-error-context', i);
  });
}

// ------------------------------------------------------------------ helpers

function toNum(v: unknown): number {
  return typeof v === 'bigint' ? Number(BigInt.asUintN(64, v)) : (v as number) >>> 0;
}

// `canon lift` of async function types (callback, stackful, or synchronous
// lift) and `canon lower` with the async ABI or of functions that may block
// (CanonicalABI.md "canon lift", "canon lower"; definitions.py canon_lift,
// canon_lower).

import { createContext, type CanonOptions, type LiftLowerContext } from '../abi/context.ts';
import { planAsyncLift, planAsyncLower, planFunc, type AsyncLiftAdapter, type FuncAdapter } from '../abi/func.ts';
import { trapIf, trapOf } from '../errors.ts';
import type { FuncType } from '../types/types.ts';
import type { ComponentInstanceState } from './instance.ts';
import { CallScope } from './resources.ts';
import { ComponentFunc, HostFunc, markEntered, toTrap, unmarkEntered } from './call.ts';
import {
  BLOCKED, callTag, current, currentThread, entryFinished, HostCall, noteTrap, releaseExclusive, runEntry, setCurrent, store, SUSPENDED, Task,
  TaskDef, Thread, type Blocked, type CallSite, type CoreEntry,
} from './task.ts';
import { promisingEntry } from './jspi.ts';
import { EVENT_CANCELLED, EVENT_NONE, EventCode, Subtask, SubtaskState, type Waitable, WaitableSet, type EventTuple } from './waitable.ts';
import { resultToJs } from './jsvalues.ts';

export const CallbackCode = { EXIT: 0, YIELD: 1, WAIT: 2, MAX: 2 } as const;

type LiftMode = 'sync' | 'stackful' | 'callback';

/** canon lift of an `async` function type. */
export class AsyncLiftedFunc extends ComponentFunc {
  inst: ComponentInstanceState;
  opts: CanonOptions;
  cx: LiftLowerContext;
  mode: LiftMode;
  private core: Function;
  private callbackFn: Function | null;
  private entry: CoreEntry | null = null;
  private cbEntry: CoreEntry | null = null;
  private syncAdapter: FuncAdapter | null;
  private asyncAdapter: AsyncLiftAdapter | null;
  private toJs: ((v: unknown) => unknown) | null;
  private taskDef: TaskDef;

  constructor(type: FuncType, inst: ComponentInstanceState, core: Function, opts: CanonOptions, asyncOpt: boolean, callback: Function | null) {
    super(type);
    this.inst = inst;
    this.opts = opts;
    this.cx = createContext(opts, inst.handleOps);
    this.core = core;
    this.callbackFn = callback;
    this.mode = !asyncOpt ? 'sync' : callback ? 'callback' : 'stackful';
    this.syncAdapter = this.mode === 'sync' ? planFunc(type, opts.memory64) : null;
    this.asyncAdapter = this.mode === 'sync' ? null : planAsyncLift(type, opts.memory64, this.mode === 'callback');
    this.toJs = resultToJs(type);
    this.taskDef = new TaskDef(type, opts, this.mode !== 'sync', this.mode === 'callback', this.mode === 'callback' ? this : null);
  }

  override get implInstance(): ComponentInstanceState { return this.inst; }

  private calleeEntry(): CoreEntry {
    let e = this.entry;
    if (e === null) {
      const sig = this.syncAdapter ? this.syncAdapter.liftCoreType : this.asyncAdapter!.coreType;
      e = this.entry = {
        fn: this.core,
        promising: this.inst.jspi ? promisingEntry(this.core, sig.params, sig.results, entryFinished) : null,
      };
    }
    return e;
  }

  callbackEntry(): CoreEntry {
    let e = this.cbEntry;
    if (e === null) {
      e = this.cbEntry = {
        fn: this.callbackFn!,
        promising: this.inst.jspi ? promisingEntry(this.callbackFn!, ['i32', 'i32', 'i32'], ['i32'], entryFinished) : null,
      };
    }
    return e;
  }

  /** The host calls: a Promise of the (JS) result. */
  call(args: unknown[], caller: ComponentInstanceState | null, signal?: AbortSignal): Promise<unknown> {
    return new Promise((resolve, reject) => { this.callWith(args, caller, signal, resolve, reject); });
  }

  /**
   * `call` with the outcome reported to `resolve`/`reject` instead of a
   * Promise (a server making a call per request saves the Promise and its
   * reactions). Either may run before this returns (a guest that returns at
   * once), and at most one of them runs.
   */
  callWith(args: unknown[], caller: ComponentInstanceState | null, signal: AbortSignal | undefined,
    resolve: (v: unknown) => void, reject: (e: unknown) => void): void {
    const site = new ExportCall(resolve, reject, args, caller === null ? this.toJs : null, signal ?? null);
    // a call from the host is a root: traps and deadlocks reject it
    const root = caller === null ? site : null;
    if (root) store.pendingRoots.add(root);
    let task: Task;
    try {
      task = this.invoke(caller, site, root ?? current?.task.root ?? null);
    } catch (e) {
      if (site.settled) return; // it returned, then trapped: the result stands (as a settled Promise would ignore this)
      site.done();
      reject(toTrap(e));
      return;
    }
    if (signal && root && !root.settled) {
      const abort = site.abort = () => task.requestCancellation(null);
      if (signal.aborted) abort();
      else signal.addEventListener('abort', abort, { once: true });
    }
    store.maybeCheckDeadlock();
  }

  /** Returns the task: it is how the caller requests cancellation (OnCancel). */
  invoke(caller: ComponentInstanceState | null, site: CallSite, root: HostCall | null): Task {
    const inst = this.inst;
    if (!inst.mayEnterFrom(caller)) throw trapOf(inst.poisoned ? 'instance-poisoned' : 'cannot-enter-component');
    const task = new Task(this.taskDef, inst, site, root, callTag(caller));
    const t = new Thread(task);
    inst.enterFrom(caller);
    try {
      const r = task.enterImplicitThread(t, (entered) => { if (entered) this.start(t); });
      if (r === true) this.start(t);
    } catch (e) {
      const te = toTrap(e);
      inst.poison();
      throw te;
    } finally {
      inst.leaveTo(caller);
    }
    return task;
  }

  /** The body of canon_lift's thread_func after entering. */
  private start(t: Thread): void {
    const task = t.task;
    const inst = this.inst;
    const args = task.start();
    const outer = inst.scope;
    inst.scope = task.scope;
    let flat: unknown[];
    try {
      flat = this.syncAdapter ? this.syncAdapter.lowerArgs(this.cx, args) : this.asyncAdapter!.lowerArgs(this.cx, args);
    } finally { inst.scope = outer; }
    const r = runEntry(t, this.calleeEntry(), flat);
    if (r === SUSPENDED) {
      t.entryDone = (v) => this.afterCallee(t, v);
      return;
    }
    this.afterCallee(t, r);
  }

  private afterCallee(t: Thread, r: unknown): void {
    const task = t.task;
    switch (this.mode) {
      case 'sync': {
        const result = this.syncAdapter!.liftResult(this.cx, r);
        task.return_(result);
        const pr = this.opts.postReturn;
        if (pr) {
          // post-return runs on the task's thread (it sees the task's context slots)
          this.inst.mayLeave = false;
          const prev = current;
          setCurrent(t);
          try { r === undefined ? pr() : pr(r); } finally { this.inst.mayLeave = true; setCurrent(prev); }
        }
        task.exitImplicitThread();
        return;
      }
      case 'stackful':
        task.exitImplicitThread();
        return;
      case 'callback':
        this.callbackLoop(t, r as number);
    }
  }

  /** canon_lift's event loop for `callback`-lifted functions. */
  callbackLoop(t: Thread, packed: number): void {
    const task = t.task;
    const inst = this.inst;
    for (;;) {
      const code = packed & 0xf;
      trapIf(code > CallbackCode.MAX, 'unsupported-callback-code');
      if (code === CallbackCode.EXIT) {
        task.exitImplicitThread();
        return;
      }
      releaseExclusive(inst);
      t.waitsForExclusive = true;
      let ev: EventTuple | Blocked;
      if (code === CallbackCode.YIELD) {
        if (task.deliverPendingCancel(true)) ev = EVENT_CANCELLED;
        else {
          t.cont = resumeAfterYield;
          t.readyFunc = exclusiveFree;
          t.cancellable = true;
          store.yieldLater(t);
          ev = BLOCKED;
        }
      } else {
        const wset = inst.handles.get(packed >>> 4);
        trapIf(!(wset instanceof WaitableSet), 'invalid-callback-waitable-set');
        // WaitableSet.wait_for_event_and(exclusive lock free), with shared functions as readiness check and continuation
        const ws = wset as WaitableSet;
        ws.addWaiter(t);
        t.waitSet = ws;
        const c = t.waitUntil(eventAndExclusiveFree, true, resumeAfterWait);
        if (c === BLOCKED) return;
        ev = endWait(t, c);
      }
      if (ev === BLOCKED) return;
      t.waitsForExclusive = false;
      inst.exclusiveThread = t;
      const r = runEntry(t, this.callbackEntry(), [ev[0], ev[1], ev[2]]);
      if (r === SUSPENDED) {
        t.entryDone = (v) => this.callbackLoop(t, v as number);
        return;
      }
      packed = r as number;
    }
  }

  resumeCallback(t: Thread, ev: EventTuple): void {
    t.waitsForExclusive = false;
    this.inst.exclusiveThread = t;
    const r = runEntry(t, this.callbackEntry(), [ev[0], ev[1], ev[2]]);
    if (r === SUSPENDED) {
      t.entryDone = (v) => this.callbackLoop(t, v as number);
      return;
    }
    this.callbackLoop(t, r as number);
  }
}

// The callback loop's waits: shared functions (the thread is their argument), not per-wait closures.

function exclusiveFree(t: Thread): boolean { return t.task.inst.exclusiveThread === null; }

function eventAndExclusiveFree(t: Thread): boolean {
  return t.task.inst.exclusiveThread === null && t.waitSet!.hasPendingEvent();
}

function endWait(t: Thread, cancelled: boolean): EventTuple {
  const ws = t.waitSet!;
  t.waitSet = null;
  ws.removeWaiter(t);
  return cancelled ? EVENT_CANCELLED : ws.getPendingEvent();
}

function resumeAfterWait(cancelled: boolean, t: Thread): void {
  const ev = endWait(t, cancelled);
  (t.task.loop as AsyncLiftedFunc).resumeCallback(t, ev);
}

function resumeAfterYield(cancelled: boolean, t: Thread): void {
  (t.task.loop as AsyncLiftedFunc).resumeCallback(t, cancelled ? EVENT_CANCELLED : EVENT_NONE);
}

/** A call of an async export by the host (or through `call` by another instance): the task's call site, settling a Promise. */
class ExportCall extends HostCall implements CallSite {
  resolve: (v: unknown) => void;
  args: unknown[] | null;
  toJs: ((v: unknown) => unknown) | null;
  /** the abort listener on `signal`, once added */
  abort: (() => void) | null = null;
  constructor(resolve: (v: unknown) => void, reject: (e: unknown) => void, args: unknown[], toJs: ((v: unknown) => unknown) | null,
    signal: AbortSignal | null) {
    super(reject);
    this.resolve = resolve;
    this.args = args;
    this.toJs = toJs;
    this.signal = signal;
  }

  onStart(): unknown[] {
    const a = this.args!;
    this.args = null;
    return a;
  }

  onResolve(result: unknown, cancelled: boolean): void {
    this.done();
    const signal = this.signal;
    if (this.abort !== null) signal!.removeEventListener('abort', this.abort);
    if (cancelled) this.reject(signal?.reason ?? new Error('the call was cancelled'));
    else this.resolve(this.toJs !== null ? this.toJs(result) : result);
  }
}

// ------------------------------------------------------------------ canon lower

/** The adapter methods a lower uses (FuncAdapter and AsyncLowerAdapter both have them). */
interface LowerAdapter {
  liftArgs(cx: LiftLowerContext, coreArgs: ArrayLike<unknown>): unknown[];
  lowerResult(cx: LiftLowerContext, v: unknown, coreArgs: ArrayLike<unknown>): unknown;
}

/**
 * The caller's side of a lowered call of an async-typed callee: the subtask
 * itself is the call site (definitions.py canon_lower's on_start/on_resolve).
 */
class LoweredSubtask extends Subtask implements CallSite {
  inst: ComponentInstanceState;
  cx: LiftLowerContext;
  coreArgs: unknown[];
  adapter: LowerAdapter;
  /** handle index once the async lower returned it to the caller (0 before): progress then becomes an event */
  index = 0;
  /** the flat result of a synchronous lower */
  flatResult: unknown = undefined;

  constructor(inst: ComponentInstanceState, cx: LiftLowerContext, coreArgs: unknown[], adapter: LowerAdapter) {
    super(new CallScope());
    this.inst = inst;
    this.cx = cx;
    this.coreArgs = coreArgs;
    this.adapter = adapter;
  }

  onStart(): unknown[] {
    if (this.index !== 0) this.setPendingEvent(subtaskEvent);
    this.state = SubtaskState.STARTED;
    const inst = this.inst;
    const outer = inst.lowerScope;
    inst.lowerScope = this.lenders;
    try { return this.adapter.liftArgs(this.cx, this.coreArgs); } finally { inst.lowerScope = outer; }
  }

  onResolve(result: unknown, cancelled: boolean): void {
    if (this.index !== 0) this.setPendingEvent(subtaskEvent);
    if (cancelled) {
      this.resolve(this.state === SubtaskState.STARTING ? SubtaskState.CANCELLED_BEFORE_STARTED : SubtaskState.CANCELLED_BEFORE_RETURNED);
    } else {
      this.flatResult = this.adapter.lowerResult(this.cx, result, this.coreArgs);
      this.resolve(SubtaskState.RETURNED);
    }
  }
}

/** The pending event of a lowered subtask (`this` is the subtask). */
function subtaskEvent(this: Waitable): EventTuple {
  const s = this as LoweredSubtask;
  if (s.resolved()) s.deliverResolve();
  return [EventCode.SUBTASK, s.index, s.state];
}

/** Starts `subtask`'s call of `callee` with `inst` marked entered (for the callee's reentrance check). */
function startSubtask(callee: ComponentFunc, inst: ComponentInstanceState, subtask: LoweredSubtask, t: Thread): void {
  const marked = markEntered(inst);
  try {
    subtask.onCancel = callee.invoke(inst, subtask, t.task.root);
  } catch (e) {
    throw toTrap(e);
  } finally {
    unmarkEntered(marked);
  }
}

/** canon lower ... async */
export function lowerAsync(callee: ComponentFunc, ft: FuncType, inst: ComponentInstanceState, opts: CanonOptions): Function {
  const adapter = planAsyncLower(ft, opts.memory64);
  const cx = createContext(opts, inst.handleOps);
  if (callee instanceof HostFunc) cx.fuelLimit = inst.hostcallFuel; // -S hostcall-fuel
  return function loweredAsync(...coreArgs: unknown[]): number {
    const t = currentThread();
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    const subtask = new LoweredSubtask(inst, cx, coreArgs, adapter);
    startSubtask(callee, inst, subtask, t);
    if (subtask.resolved()) {
      subtask.deliverResolve();
      return SubtaskState.RETURNED;
    }
    const i = inst.handles.add(subtask);
    subtask.index = i;
    return subtask.state | (i << 4);
  };
}

/**
 * canon lower (synchronous) of a function that may block: an async-typed
 * callee, or a callee whose instance runs on JSPI stacks. The returned core
 * function is a Suspending import: it returns a Promise when it blocks.
 */
export function lowerBlocking(callee: ComponentFunc, ft: FuncType, inst: ComponentInstanceState, opts: CanonOptions): Function {
  const adapter = planFunc(ft, opts.memory64);
  const cx = createContext(opts, inst.handleOps);
  if (callee instanceof HostFunc) cx.fuelLimit = inst.hostcallFuel; // -S hostcall-fuel
  if (callee instanceof HostFunc && callee.viewsBytes) cx.viewLists = true; // byte lists as views (see viewsBytes)
  if (!ft.async) {
    return function loweredMayBlock(...coreArgs: unknown[]): unknown {
      // the thread is needed only to block (a core start function may call this outside any task)
      const t0 = current;
      trapIf(!inst.mayLeave, 'cannot-leave-component');
      const outer = inst.lowerScope;
      const scope = new CallScope();
      inst.lowerScope = scope;
      const marked = markEntered(inst);
      const release = () => { if (scope.lenders) for (const h of scope.lenders) h.numLends--; };
      let r: unknown;
      try {
        const args = adapter.liftArgs(cx, coreArgs);
        r = callee.call(args, inst);
      } catch (e) {
        release();
        const te = toTrap(e);
        noteTrap(te);
        throw te;
      } finally {
        inst.lowerScope = outer;
        unmarkEntered(marked);
      }
      if (!(r instanceof Promise)) {
        release();
        return adapter.lowerResult(cx, r, coreArgs);
      }
      if (t0 === null) { release(); r.catch(() => {}); throw trapOf('cannot-block-outside-task'); }
      const t = t0;
      let settled = false, value: unknown, error: unknown = null;
      t.nestedSync = r;
      r.then((v) => { value = v; settled = true; t.nestedSync = null; store.wake(t); }, (e) => { error = toTrap(e); settled = true; t.nestedSync = null; store.wake(t); });
      return t.suspendStackNow(() => settled, false, () => {
        release();
        if (error !== null) throw error;
        return adapter.lowerResult(cx, value, coreArgs);
      });
    };
  }
  return function loweredSyncOfAsync(...coreArgs: unknown[]): unknown {
    const t = currentThread();
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    // A synchronous call of an async-typed function may block. A task of a non-async function
    // type may only block while another thread of its instance is ready (canon_lift's loop for
    // !ft.async); like wasmtime, treat the call itself as the block and check that up front.
    trapIf(!t.task.ft.async && !otherReadyThread(inst, t), 'cannot-block-sync-task');
    const subtask = new LoweredSubtask(inst, cx, coreArgs, adapter);
    startSubtask(callee, inst, subtask, t);
    const finish = () => {
      subtask.deliverResolve();
      return subtask.flatResult;
    };
    if (subtask.resolved()) return finish();
    subtask.resolveWaiter = t;
    return t.suspendStackNow(() => subtask.resolved(), false, () => {
      subtask.resolveWaiter = null;
      return finish();
    });
  };
}

function otherReadyThread(inst: ComponentInstanceState, t: Thread): boolean {
  for (const x of inst.threads.array) {
    if (x instanceof Thread && x !== t && x !== inst.exclusiveThread && !x.waitsForExclusive && !x.waitsForEntry && x.ready()) return true;
  }
  return false;
}

// Calls across the component boundary: `canon lift` turns a core function
// into a component function, `canon lower` turns a component function into a
// core function (CanonicalABI.md "canon lift", "canon lower").
//
// Every component function supports two calling conventions:
//  * `call(args, caller)`: JS values in, the JS result out (a Promise for
//    `async` function types, and for synchronous functions whose instance had
//    to block on a JSPI stack);
//  * `invoke(caller, site, root)`: definitions.py's FuncInst (site: on_start/on_resolve), used
//    by async lowers and the canon built-ins (async-call.ts, canon.ts).

import { createContext, type CanonOptions, type LiftLowerContext } from '../abi/context.ts';
import { planFunc } from '../abi/func.ts';
import { Trap, trapIf, trapOf } from '../errors.ts';
import { trapMessage } from '../trap-reasons.ts';
import type { FuncType } from '../types/types.ts';
import type { ComponentInstanceState } from './instance.ts';
import { CallScope } from './resources.ts';
import {
  callTag, current, entryFinished, HostCall, NO_SITE, noteTrap, runEntry, setCurrent, store, SUSPENDED, Task, TaskDef, TaskState, Thread, toTrapError,
  type CallSite, type CoreEntry, type OnCancel,
} from './task.ts';
import { promisingEntry } from './jspi.ts';
import { hostArgsToJs, resultToJs } from './jsvalues.ts';

/**
 * A component-level function value. `call` takes and returns JS values (see
 * the value mapping in docs/CONTRACTS.md); `caller` is the component instance
 * making the call, or null for the host.
 */
export abstract class ComponentFunc {
  type: FuncType;
  constructor(type: FuncType) { this.type = type; }
  abstract call(args: unknown[], caller: ComponentInstanceState | null): unknown;
  /** definitions.py FuncInst: start the call; returns how to request its cancellation. */
  abstract invoke(caller: ComponentInstanceState | null, site: CallSite, root: HostCall | null): OnCancel;
  /** the instance whose core code runs when this function is called (null for host functions) */
  get implInstance(): ComponentInstanceState | null { return null; }
}

const noCancel: OnCancel = { requestCancellation() {} };

/** Marks host functions for synchronous imports that may return a Promise (see `mayBlock`). */
export const MAY_BLOCK: unique symbol = Symbol.for('weir.mayBlock') as any;

/**
 * Mark a host function for a synchronous (non-`async`) import as possibly
 * blocking: it may return a Promise (or any thenable) instead of its result,
 * and the calling guest's wasm stack then suspends (JSPI) until it settles,
 * while the event loop keeps running. A call that returns a plain value costs
 * no suspension. Instances importing such a function run their core code on
 * JSPI stacks, so their synchronous exports return a Promise when a call had
 * to wait. A rejection fails the call as a throw would. Returns `fn` itself.
 */
export function mayBlock<F extends (...args: any[]) => unknown>(fn: F): F {
  Object.defineProperty(fn, MAY_BLOCK, { value: true });
  return fn;
}

/** Marks host functions that may receive `list<u8>` arguments as views of guest memory (see `viewsBytes`). */
export const VIEWS_BYTES: unique symbol = Symbol.for('weir.viewsBytes') as any;

/**
 * Mark a host function that uses its `list<u8>` arguments only while it runs
 * (until its Promise settles, for a `mayBlock` function): it then receives
 * them as views of the caller's linear memory instead of copies. It must copy
 * whatever it keeps longer (the guest may overwrite the memory afterwards).
 * Returns `fn` itself.
 */
export function viewsBytes<F extends (...args: any[]) => unknown>(fn: F): F {
  Object.defineProperty(fn, VIEWS_BYTES, { value: true });
  return fn;
}

/** Marks host functions that take stream<u8> arguments as GuestByteStream handles (see `streamHandles`). */
export const STREAM_HANDLES: unique symbol = Symbol.for('weir.streamHandles') as any;

/**
 * Mark a host function that takes its stream<u8> arguments as GuestByteStream
 * handles (an AsyncIterable of the bytes that passes the guest stream on when
 * handed back to a guest) instead of web ReadableStreams, which cost a web
 * stream each (e.g. one per HTTP message body). Its future arguments arrive
 * as GuestFutureValue thenables (no Promise unless the host calls `then`).
 * Returns `fn` itself.
 */
export function streamHandles<F extends (...args: any[]) => unknown>(fn: F): F {
  Object.defineProperty(fn, STREAM_HANDLES, { value: true });
  return fn;
}

/** Promises returned by may-block host functions (a synchronous caller awaiting one must not hold the scheduler). */
const hostBlocks = new WeakSet<Promise<unknown>>();
export function isHostBlock(p: Promise<unknown>): boolean { return hostBlocks.has(p); }

/** A function implemented by the host in JavaScript. */
export class HostFunc extends ComponentFunc {
  fn: (...args: any[]) => unknown;
  /** `fn` was marked with `mayBlock`: lowered through a Suspending import, its Promises suspend the guest. */
  readonly mayBlock: boolean;
  /** `fn` was marked with `viewsBytes`: synchronous lowers hand it byte lists as views of guest memory. */
  readonly viewsBytes: boolean;
  private needsConversion: boolean;
  /** `fn` was marked with `streamHandles` */
  private readonly handles: boolean;
  constructor(type: FuncType, fn: (...args: any[]) => unknown) {
    super(type);
    this.fn = fn;
    this.mayBlock = !type.async && (fn as { [MAY_BLOCK]?: boolean })[MAY_BLOCK] === true;
    this.viewsBytes = !type.async && (fn as { [VIEWS_BYTES]?: boolean })[VIEWS_BYTES] === true;
    this.handles = (fn as { [STREAM_HANDLES]?: boolean })[STREAM_HANDLES] === true;
    this.needsConversion = hostArgsToJs(type, this.handles) !== null;
  }
  call(args: unknown[]): unknown {
    const conv = this.needsConversion ? hostArgsToJs(this.type, this.handles)! : null;
    const r = this.fn(...(conv ? conv(args) : args));
    return this.mayBlock ? this.trackBlock(r) : r;
  }
  /** A may-block function's thenable becomes a Promise the store counts as a pending host operation. */
  private trackBlock(r: unknown): unknown {
    if (r === null || (typeof r !== 'object' && typeof r !== 'function') || typeof (r as PromiseLike<unknown>).then !== 'function') return r;
    const op = { root: current?.task.root ?? null };
    store.hostCalls.add(op);
    const done = () => { store.hostCalls.delete(op); store.progress++; };
    const p = Promise.resolve(r).then((v) => { done(); return v; }, (e) => { done(); throw e; });
    hostBlocks.add(p);
    return p;
  }
  invoke(caller: ComponentInstanceState | null, site: CallSite, root: HostCall | null): OnCancel {
    const raw = site.onStart();
    const args = this.needsConversion ? hostArgsToJs(this.type, this.handles)!(raw) : raw;
    // (only async-typed functions are invoked asynchronously: `canon lower async` needs an async type)
    if (!this.type.async) {
      site.onResolve(this.fn(...args), false);
      return noCancel;
    }
    // An async host function gets `this.signal`, aborted when the guest cancels the subtask.
    const call = new HostSubcall(site, caller, root);
    const r = this.fn.apply(call, args);
    if (r === null || (typeof r !== 'object' && typeof r !== 'function') || typeof (r as PromiseLike<unknown>).then !== 'function') {
      site.onResolve(r, false);
      return noCancel;
    }
    store.hostCalls.add(call);
    Promise.resolve(r).then((v) => call.fulfilled(v), (e) => call.rejected(e));
    return call;
  }
}

/**
 * One pending call of an async host function: its `this` (the `signal` getter,
 * made on first use), its entry in store.hostCalls, and its OnCancel. One
 * object instead of a closure per role keeps pending host calls small.
 */
class HostSubcall implements OnCancel {
  /** the host call it works for (store.hostCalls entries have it) */
  readonly root: HostCall | null;
  #site: CallSite;
  #caller: ComponentInstanceState | null;
  #ctrl: AbortController | null = null;
  #done = false;
  constructor(site: CallSite, caller: ComponentInstanceState | null, root: HostCall | null) {
    this.#site = site;
    this.#caller = caller;
    this.root = root;
  }

  /** aborted when the guest cancels the subtask */
  get signal(): AbortSignal { return (this.#ctrl ??= new AbortController()).signal; }

  fulfilled(v: unknown): void {
    if (this.#done) return;
    this.#done = true;
    store.hostCalls.delete(this);
    store.progress++;
    try {
      this.#site.onResolve(v, false);
    } catch (e) {
      const t = toTrapError(e);
      this.#caller?.poison();
      this.root?.fail(t);
    }
    store.schedule();
  }

  rejected(e: unknown): void {
    if (this.#done) return;
    this.#done = true;
    store.hostCalls.delete(this);
    store.progress++;
    const t = e instanceof Trap ? e : new Trap(trapMessage('host-function-failed', e instanceof Error ? e.message : String(e)), { cause: e, kind: 'host-function-failed' });
    this.#caller?.poison();
    this.root?.fail(t);
    store.schedule();
  }

  requestCancellation(): void {
    if (this.#done) return;
    this.#done = true;
    store.hostCalls.delete(this);
    this.#ctrl?.abort();
    this.#site.onResolve(undefined, true);
  }
}

/** Convert anything a core call can throw into a Trap (keeping host errors' identity as the cause). */
export function toTrap(e: unknown): unknown {
  return toTrapError(e);
}

/** canon lift (synchronous function types). */
export class LiftedFunc extends ComponentFunc {
  inst: ComponentInstanceState;
  core: Function;
  opts: CanonOptions;
  cx: LiftLowerContext;
  private adapter: ReturnType<typeof planFunc>;
  private entry: CoreEntry | null = null;
  private toJs: ((v: unknown) => unknown) | null;
  private taskDef: TaskDef;
  constructor(type: FuncType, inst: ComponentInstanceState, core: Function, opts: CanonOptions) {
    super(type);
    this.inst = inst;
    this.core = core;
    this.opts = opts;
    this.cx = createContext(opts, inst.handleOps);
    this.adapter = planFunc(type, opts.memory64);
    this.toJs = resultToJs(type);
    this.taskDef = new TaskDef(type, opts, false, false);
  }

  override get implInstance(): ComponentInstanceState { return this.inst; }

  private coreEntry(): CoreEntry {
    let e = this.entry;
    if (e === null) {
      const sig = this.adapter.liftCoreType;
      e = this.entry = {
        fn: this.core,
        promising: this.inst.jspi ? promisingEntry(this.core, sig.params, sig.results, entryFinished) : null,
      };
    }
    return e;
  }

  call(args: unknown[], caller: ComponentInstanceState | null): unknown {
    const r = this.callRaw(args, caller);
    const conv = caller === null ? this.toJs : null;
    if (conv === null) return r;
    return r instanceof Promise ? r.then(conv) : conv(r);
  }

  private callRaw(args: unknown[], caller: ComponentInstanceState | null): unknown {
    const inst = this.inst;
    if (!inst.mayEnterFrom(caller)) throw trapOf(inst.poisoned ? 'instance-poisoned' : 'cannot-enter-component');
    inst.enterFrom(caller);
    const task = new Task(this.taskDef, inst, NO_SITE, current?.task.root ?? null, callTag(caller));
    task.state = TaskState.STARTED;
    const t = new Thread(task);
    task.implicitThread = t;
    task.registerThread(t);
    const outerScope = inst.scope;
    let blocked = false;
    try {
      inst.scope = task.scope;
      let flat: unknown[];
      try { flat = this.adapter.lowerArgs(this.cx, args); } finally { inst.scope = outerScope; }
      const raw = runEntry(t, this.coreEntry(), flat);
      if (raw === SUSPENDED) {
        blocked = true;
        return this.syncCallBlocked(t, caller);
      }
      return this.finish(t, raw);
    } catch (e) {
      const te = toTrap(e);
      if (te instanceof Trap || !(e instanceof TypeError)) inst.poison();
      throw te;
    } finally {
      // A blocked call stays entered until syncCallBlocked finishes.
      if (!blocked) inst.leaveTo(caller);
    }
  }

  /** The end of a synchronous call: lift the result, post-return, borrow check. */
  private finish(t: Thread, raw: unknown): unknown {
    const inst = this.inst;
    const task = t.task;
    const result = this.adapter.liftResult(this.cx, raw);
    const pr = this.opts.postReturn;
    if (pr) {
      inst.mayLeave = false;
      const prev = current;
      setCurrent(t);
      try { raw === undefined ? pr() : pr(raw); } finally { inst.mayLeave = true; setCurrent(prev); }
    }
    trapIf(task.scope.numBorrows > 0, 'borrows-remain');
    task.state = TaskState.RESOLVED;
    task.unregisterThread(t);
    return result;
  }

  /**
   * The non-async-typed callee blocked (canon_lift's loop for !ft.async): run
   * other ready threads of this instance until it returns; trap when none is
   * ready. The caller waits on the returned Promise.
   */
  private async syncCallBlocked(t: Thread, caller: ComponentInstanceState | null): Promise<unknown> {
    const inst = this.inst;
    let finished = false;
    let raw: unknown;
    t.entryDone = (v) => { finished = true; raw = v; };
    store.syncHold++;
    try {
      while (!finished) {
        // A resumed thread may still be running.
        if (store.busy !== null) { await store.idle(); continue; }
        if (inst.poisoned) throw inst.trapError ?? trapOf('instance-poisoned');
        let pick: Thread | null = null;
        let nested: Promise<unknown> | null = null;
        for (const x of inst.threads.array) {
          if (!(x instanceof Thread)) continue;
          // threads waiting for the exclusive lock (callback loops, entering tasks) never run inside a synchronous call
          if (x !== inst.exclusiveThread && !x.waitsForExclusive && !x.waitsForEntry && x.ready()) { pick = x; break; }
          if (x.nestedSync !== null) nested = x.nestedSync;
        }
        if (pick === null && nested !== null) {
          // Waiting on the host (a may-block host function) holds nothing: let the
          // scheduler run other instances' threads meanwhile.
          const host = isHostBlock(nested);
          if (host) { store.syncHold--; store.schedule(); }
          try { await nested.then(undefined, () => {}); } finally { if (host) store.syncHold++; }
          continue;
        }
        trapIf(pick === null, 'sync-task-deadlock');
        if (pick!.jspiSuspended) {
          pick!.resume(false);
        } else {
          const prev = current;
          try { pick!.resume(false); } finally { setCurrent(prev); }
        }
      }
      if (inst.poisoned) throw inst.trapError ?? trapOf('instance-poisoned');
      return this.finish(t, raw);
    } catch (e) {
      inst.poison();
      throw toTrap(e);
    } finally {
      inst.leaveTo(caller);
      store.syncHold--;
      store.notifyIdle();
    }
  }

  invoke(caller: ComponentInstanceState | null, site: CallSite, _root: HostCall | null): OnCancel {
    const r = this.callRaw(site.onStart(), caller);
    if (r instanceof Promise) r.then((v) => site.onResolve(v, false));
    else site.onResolve(r, false);
    return noCancel;
  }
}

/** Mark `inst` (and its ancestors) entered while a JSPI-resumed thread calls out; returns what to undo. */
export function markEntered(inst: ComponentInstanceState): ComponentInstanceState[] | null {
  if (!inst.mayEnter) return null;
  const out: ComponentInstanceState[] = [];
  for (let i: ComponentInstanceState | null = inst; i; i = i.parent) if (i.mayEnter) { i.mayEnter = false; out.push(i); }
  return out;
}

export function unmarkEntered(m: ComponentInstanceState[] | null): void {
  if (m) for (const i of m) i.mayEnter = true;
}

/** canon lower (synchronous, of a function that cannot block): returns the core function that calls `callee` from `inst`. */
export function lowerSync(callee: ComponentFunc, type: FuncType, inst: ComponentInstanceState, opts: CanonOptions): Function {
  const adapter = planFunc(type, opts.memory64);
  const cx = createContext(opts, inst.handleOps);
  if (callee instanceof HostFunc) cx.fuelLimit = inst.hostcallFuel; // -S hostcall-fuel
  // A guest-to-guest call into another memory: byte lists go from this memory straight into the
  // callee's (its lowering copies them before this instance can run again), without a JS copy between.
  if (callee instanceof LiftedFunc && callee.opts.memory !== null && callee.opts.memory !== opts.memory) cx.viewLists = true;
  if (callee instanceof HostFunc && callee.viewsBytes) cx.viewLists = true;
  return function lowered(...coreArgs: unknown[]) {
    trapIf(!inst.mayLeave, 'cannot-leave-component');
    const outer = inst.lowerScope;
    const scope = new CallScope();
    inst.lowerScope = scope;
    const marked = markEntered(inst);
    try {
      const args = adapter.liftArgs(cx, coreArgs);
      const result = callee.call(args, inst);
      return adapter.lowerResult(cx, result, coreArgs);
    } catch (e) {
      const te = toTrap(e);
      noteTrap(te);
      throw te;
    } finally {
      inst.lowerScope = outer;
      if (scope.lenders) for (const h of scope.lenders) h.numLends--;
      unmarkEntered(marked);
    }
  };
}

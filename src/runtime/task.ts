// Tasks, threads and the event-driven scheduler (Concurrency.md; CanonicalABI.md
// "Concurrency", "Threads", "Tasks", "Embedding API"; definitions.py Thread,
// Task, Store).
//
// How threads map onto JavaScript:
//  * A thread that is not running has a continuation `cont(cancelled)`.
//  * The implicit thread of a `callback`-lifted task keeps no stack between
//    callbacks: its continuation simply calls the callback again. No JSPI.
//  * Everything that must keep a core wasm stack across a block (stackful
//    lifts, `thread.new-indirect` threads, blocking built-ins called from any
//    code of an instance that uses them) runs on a JSPI stack: core code of such
//    an instance (`inst.jspi`) is entered through `WebAssembly.promising`, and
//    its blocking built-ins are `WebAssembly.Suspending` imports that return a
//    Promise when they block. Resuming such a thread resolves that Promise; the
//    stack continues in a later microtask ("async-running").
//  * The scheduler is driven by events: a thread is queued when something it
//    waits for happens (an event on its waitable set, an exclusive lock or
//    backpressure being released, a yield) and resumed in a microtask. At most
//    one thread is async-running at a time (`store.busy`), which preserves the
//    spec's one-thread-at-a-time semantics.

import { Trap, trapIf, trapOf } from '../errors.ts';
import { TrapReason } from '../trap-reasons.ts';
import type { CanonOptions } from '../abi/context.ts';
import type { FuncType } from '../types/types.ts';
import type { ComponentInstanceState } from './instance.ts';
import { CallScope } from './resources.ts';
import type { WaitableSet } from './waitable.ts';

/**
 * The caller's side of one call (definitions.py OnStart/OnResolve), an object
 * rather than two closures: a pending call then costs no closures or contexts.
 * `cancelled` is true for `on_resolve(None)`.
 */
export interface CallSite {
  onStart(): unknown[];
  onResolve(result: unknown, cancelled: boolean): void;
}
/** What `invoke` returns: how the caller requests cancellation (the Task itself for lifted callees). */
export interface OnCancel {
  requestCancellation(caller: ComponentInstanceState | null): void;
}

/** Returned by blocking operations in continuation style when the thread blocked. */
export const BLOCKED = Symbol('blocked');
export type Blocked = typeof BLOCKED;

/** Returned by `runEntry` when the core call suspended its JSPI stack. */
export const SUSPENDED = Symbol('suspended');

/** `t` is the thread itself, so that shared functions can serve as continuations. */
type Cont = (cancelled: boolean, t: Thread) => void;
/** A thread's readiness check (gets the thread, like Cont). */
export type ReadyFunc = (t: Thread) => boolean;

// ------------------------------------------------------------------ host roots

/**
 * A call made by the host (a JS call of an export). Traps in any task it
 * (transitively) started reject it; a deadlock rejects every pending root.
 */
export class HostCall {
  settled = false;
  /** neighbours in store.pendingRoots while pending */
  prevRoot: HostCall | null = null;
  nextRoot: HostCall | null = null;
  /** the host can still cancel it (an AbortSignal that has not fired): never reported as a deadlock */
  signal: AbortSignal | null = null;
  reject: (e: unknown) => void;
  constructor(reject: (e: unknown) => void) { this.reject = reject; }
  fail(e: unknown): void {
    if (this.settled) return;
    this.settled = true;
    store.pendingRoots.delete(this);
    this.reject(e);
  }
  done(): void {
    if (this.settled) return;
    this.settled = true;
    store.pendingRoots.delete(this);
  }
}

/**
 * The pending host calls: a list threaded through the calls themselves. A Set
 * that gains and loses an entry per call rehashes (allocates) as it shrinks.
 */
class RootList {
  size = 0;
  private head: HostCall | null = null;
  add(r: HostCall): void {
    if (r.prevRoot !== null || this.head === r) return;
    r.nextRoot = this.head;
    if (this.head !== null) this.head.prevRoot = r;
    this.head = r;
    this.size++;
  }
  delete(r: HostCall): void {
    if (r.prevRoot === null && this.head !== r) return;
    if (r.prevRoot !== null) r.prevRoot.nextRoot = r.nextRoot; else this.head = r.nextRoot;
    if (r.nextRoot !== null) r.nextRoot.prevRoot = r.prevRoot;
    r.prevRoot = r.nextRoot = null;
    this.size--;
  }
  toArray(): HostCall[] {
    const out: HostCall[] = [];
    for (let r = this.head; r !== null; r = r.nextRoot) out.push(r);
    return out;
  }
}

// ------------------------------------------------------------------ store

class Store {
  /** threads to look at: each is resumed if still waiting and ready */
  queue: Thread[] = [];
  qhead = 0;
  /** threads that yielded: resumed from a macrotask so that the host gets to run too */
  yielders: Thread[] = [];
  scheduled = false;
  yieldScheduled = false;
  /** the JSPI thread that was resumed and has not yet blocked or finished */
  busy: Thread | null = null;
  /** > 0 while a non-async-typed call blocked and only its own instance's threads may run (nesting depth) */
  syncHold = 0;
  idleWaiters: (() => void)[] = [];
  pendingRoots = new RootList();
  /** host operations that may still produce events (host stream pulls, host futures, ...) */
  hostOps = 0;
  /** async host functions in flight, with the host call they work for */
  hostCalls = new Set<{ root: HostCall | null }>();
  /** bumped whenever anything happens; the deadlock check needs a quiet period */
  activity = 0;
  deadlockCheck = false;

  readonly tickFn = () => this.tick();
  readonly yieldFn = () => this.runYielders();

  schedule(): void {
    this.activity++;
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.tickFn);
    }
  }

  wake(t: Thread): void {
    if (t.queued) return;
    t.queued = true;
    this.queue.push(t);
    this.schedule();
  }

  yieldLater(t: Thread): void {
    t.yieldWait = true;
    this.yielders.push(t);
    if (!this.yieldScheduled) {
      this.yieldScheduled = true;
      setImmediate(this.yieldFn);
    }
  }

  private runYielders(): void {
    this.yieldScheduled = false;
    const ys = this.yielders;
    this.yielders = [];
    for (const t of ys) {
      if (t.queued) continue;
      t.queued = true;
      this.queue.push(t);
    }
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.tickFn);
    }
  }

  tick(): void {
    this.scheduled = false;
    while (this.busy === null && this.syncHold === 0 && this.qhead < this.queue.length) {
      const t = this.queue[this.qhead++]!;
      t.queued = false;
      if (this.qhead > 1024 && this.qhead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.qhead);
        this.qhead = 0;
      }
      if (!t.waiting()) continue;
      const inst = t.task.inst;
      if (inst.poisoned) continue;
      if (!t.readyFunc!(t)) { t.park(); continue; }
      if (!t.yieldWait) this.progress++;
      resumeTop(t);
    }
    if (this.qhead === this.queue.length) { this.queue.length = 0; this.qhead = 0; }
    this.maybeCheckDeadlock();
  }

  /** Called when the async-running thread `t` blocked or finished. */
  stopped(t: Thread): void {
    t.asyncRunning = false;
    if (current === t) setCurrent(null);
    if (this.busy === t) {
      this.busy = null;
      this.notifyIdle();
    }
  }

  /** Wake the blocked synchronous calls (they re-check their state) and the scheduler. */
  notifyIdle(): void {
    const ws = this.idleWaiters;
    if (ws.length) {
      this.idleWaiters = [];
      for (const w of ws) w();
    }
    this.schedule();
  }

  /** A Promise resolved at the next notifyIdle. */
  idle(): Promise<void> {
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /**
   * Deadlock detection: a pending host call fails with a Trap when, for a whole
   * macrotask turn, nothing that could help it happened — no events, no host
   * operations outstanding, and no runnable thread working for a pending call
   * (threads of calls that already returned may keep yielding forever).
   */
  maybeCheckDeadlock(): void {
    if (this.deadlockCheck || this.pendingRoots.size === 0) return;
    this.deadlockCheck = true;
    const seen = this.progress;
    setImmediate(() => {
      this.deadlockCheck = false;
      if (this.pendingRoots.size === 0) return;
      if (this.progress !== seen || !this.stuck()) { this.maybeCheckDeadlock(); return; }
      const e = trapOf('deadlock');
      for (const r of this.pendingRoots.toArray()) if (r.signal === null || r.signal.aborted) r.fail(e);
    });
  }

  private stuck(): boolean {
    if (this.busy || this.syncHold > 0 || this.hostOps > 0) return false;
    // host calls made for host calls that already settled (e.g. never-returning ones left behind) cannot help
    for (const op of this.hostCalls) if (op.root === null || !op.root.settled) return false;
    const live = (t: Thread) => t.task.root !== null && !t.task.root.settled;
    for (let i = this.qhead; i < this.queue.length; i++) {
      const t = this.queue[i]!;
      if (t.waiting() && live(t) && t.readyFunc!(t)) return false;
    }
    for (const t of this.yielders) if (live(t)) return false;
    return true;
  }

  /** something happened that may let a blocked task make progress */
  progress = 0;
}

export const store = new Store();

/** The thread whose core code is running (definitions.py current_thread()). */
export let current: Thread | null = null;
export function setCurrent(t: Thread | null): void {
  current = t;
  if (tagCell !== null) publishTag(runningTag());
}

// Call tags: a host that calls several exports at once (a server: one call per
// request) can ask which of its calls the running guest code works for, from
// another thread, while this one is stuck in a guest loop. A host call made
// with a tag (setHostCallTag around it) gives it to its task; every task a
// task starts inherits it; each time the current thread changes its task's tag
// is stored in the host's cell (setRunningTagCell), and outside any task the
// tag of the host call being made. A plain store, and only when the tag
// changes: the reader looks at the cell only after this thread has been stuck
// for a long time (serve's --cpu-timeout), so it needs no ordering, and most
// thread switches within one request leave the tag as it is.
let tagCell: Int32Array | null = null;
let tagIndex = 0;
let hostCallTag = 0;
let publishedTag = 0;

/** The tag of the guest code running now: the current task's, else the host call's being made. */
function runningTag(): number {
  return current !== null ? current.task.tag : hostCallTag;
}

function publishTag(tag: number): void {
  if (tag === publishedTag) return;
  publishedTag = tag;
  tagCell![tagIndex] = tag;
}

/** Publish the running task's tag at `cell[index]` (a SharedArrayBuffer view; 0: none); null stops it. */
export function setRunningTagCell(cell: Int32Array | null, index = 0): void {
  tagCell = cell;
  tagIndex = index;
  if (cell === null) return;
  publishedTag = -1;
  publishTag(runningTag());
}

/** Stops publishing into `cell` if it is the cell in use (another host may have installed its own since). */
export function clearRunningTagCell(cell: Int32Array): void {
  if (tagCell === cell) tagCell = null;
}

/**
 * The tag of host calls made from now on (0: none); until a task runs it is
 * also the running tag (guest code outside any task, e.g. start functions of
 * an instance made for the call, is the call's).
 */
export function setHostCallTag(tag: number): void {
  hostCallTag = tag;
  if (tagCell !== null) publishTag(runningTag());
}

/** The tag a task created now by a call from `caller` (null: the host) gets. */
export function callTag(caller: unknown): number {
  return caller === null ? hostCallTag : current !== null ? current.task.tag : 0;
}
export function currentThread(): Thread {
  const t = current;
  if (t === null) throw trapOf('not-in-task');
  return t;
}

/** Resume a thread from the top-level event loop (definitions.py Store.tick). */
function resumeTop(t: Thread): void {
  const inst = t.task.inst;
  if (t.jspiSuspended) { t.resume(false); return; }
  inst.enterFrom(null);
  const prev = current;
  try {
    t.resume(false);
  } catch (e) {
    threadTrapped(t, e);
  } finally {
    setCurrent(prev);
    inst.leaveTo(null);
  }
}

/** A trap outside of any synchronous caller: poison the instance and fail the host call(s) it belongs to. */
export function threadTrapped(t: Thread, e: unknown): void {
  const err = toTrapError(e);
  const inst = t.task.inst;
  inst.poison();
  inst.trapError ??= err;
  const root = t.task.root;
  if (root) root.fail(err);
  if (t.asyncRunning) store.stopped(t);
  // Anything waiting on a sync-call loop in this instance notices the poisoning.
  store.notifyIdle();
}

export function toTrapError(e: unknown): unknown {
  if (e instanceof Trap) return e;
  if (e instanceof WebAssembly.RuntimeError) return new Trap(e.message, { cause: e });
  const SE = (WebAssembly as any).SuspendError;
  if (SE && e instanceof SE) return new Trap(TrapReason['cannot-block-sync-task'], { cause: e, kind: 'cannot-block-sync-task' });
  if (e instanceof RangeError && /call stack/i.test(e.message)) return new Trap(TrapReason['call-stack-exhausted'], { cause: e, kind: 'call-stack-exhausted' });
  if ((WebAssembly as any).Exception && e instanceof (WebAssembly as any).Exception) return new Trap(TrapReason['uncaught-wasm-exception'], { cause: e, kind: 'uncaught-wasm-exception' });
  return e;
}

// ------------------------------------------------------------------ threads

const CANCELLABLE = 1, QUEUED = 2, JSPI_SUSPENDED = 4, ASYNC_RUNNING = 8, SYNC_DONE = 16, WAITS_FOR_ENTRY = 32,
  WAITS_FOR_EXCLUSIVE = 64, CANCEL_ON_RESUME = 128, YIELD_WAIT = 256;

export class Thread {
  task: Task;
  /** index in the instance's thread table; 0 when unregistered */
  index = 0;
  storage0 = 0;
  storage1 = 0;
  /** continuation; non-null iff the thread is not running */
  cont: Cont | null = null;
  /** non-null iff waiting */
  readyFunc: ReadyFunc | null = null;
  /** the boolean state below, packed (a pending task keeps its thread: 8 bytes instead of 72) */
  private flags = 0;
  get cancellable(): boolean { return (this.flags & CANCELLABLE) !== 0; }
  set cancellable(v: boolean) { this.flags = v ? this.flags | CANCELLABLE : this.flags & ~CANCELLABLE; }
  get queued(): boolean { return (this.flags & QUEUED) !== 0; }
  set queued(v: boolean) { this.flags = v ? this.flags | QUEUED : this.flags & ~QUEUED; }
  /** blocked inside a Suspending import; resuming resolves its Promise */
  get jspiSuspended(): boolean { return (this.flags & JSPI_SUSPENDED) !== 0; }
  set jspiSuspended(v: boolean) { this.flags = v ? this.flags | JSPI_SUSPENDED : this.flags & ~JSPI_SUSPENDED; }
  /** resumed from a JSPI suspension and still running */
  get asyncRunning(): boolean { return (this.flags & ASYNC_RUNNING) !== 0; }
  set asyncRunning(v: boolean) { this.flags = v ? this.flags | ASYNC_RUNNING : this.flags & ~ASYNC_RUNNING; }
  /** result capture for JSPI entries that finish synchronously */
  get syncDone(): boolean { return (this.flags & SYNC_DONE) !== 0; }
  set syncDone(v: boolean) { this.flags = v ? this.flags | SYNC_DONE : this.flags & ~SYNC_DONE; }
  /** park reason for instance-level waits */
  get waitsForEntry(): boolean { return (this.flags & WAITS_FOR_ENTRY) !== 0; }
  set waitsForEntry(v: boolean) { this.flags = v ? this.flags | WAITS_FOR_ENTRY : this.flags & ~WAITS_FOR_ENTRY; }
  get waitsForExclusive(): boolean { return (this.flags & WAITS_FOR_EXCLUSIVE) !== 0; }
  set waitsForExclusive(v: boolean) { this.flags = v ? this.flags | WAITS_FOR_EXCLUSIVE : this.flags & ~WAITS_FOR_EXCLUSIVE; }
  /** a cancellation was delivered to this (JSPI) thread: resume it with cancelled = true */
  get cancelOnResume(): boolean { return (this.flags & CANCEL_ON_RESUME) !== 0; }
  set cancelOnResume(v: boolean) { this.flags = v ? this.flags | CANCEL_ON_RESUME : this.flags & ~CANCEL_ON_RESUME; }
  /** waiting only because it yielded (resuming it is not progress for deadlock detection) */
  get yieldWait(): boolean { return (this.flags & YIELD_WAIT) !== 0; }
  set yieldWait(v: boolean) { this.flags = v ? this.flags | YIELD_WAIT : this.flags & ~YIELD_WAIT; }
  /** counts JSPI suspensions (runEntry uses it to tell a suspended entry from a trapped one) */
  suspensions = 0;
  /** a synchronous call this thread made that is still running (the callee blocked) */
  nestedSync: Promise<unknown> | null = null;
  syncValue: unknown = undefined;
  /** continuation for a JSPI entry that finishes after the thread was suspended */
  entryDone: ((v: unknown) => void) | null = null;
  /** the waitable set a callback-lifted task waits on (its WAIT code), read by the shared wait functions */
  waitSet: WaitableSet | null = null;

  constructor(task: Task) { this.task = task; }

  running(): boolean { return this.cont === null; }
  suspended(): boolean { return this.cont !== null && this.readyFunc === null; }
  waiting(): boolean { return this.cont !== null && this.readyFunc !== null; }
  ready(): boolean { return this.waiting() && this.readyFunc!(this); }

  /** Not ready when looked at: register with the instance-level condition it needs (sources of other events wake it themselves). */
  park(): void {
    const inst = this.task.inst;
    if (this.waitsForEntry && inst.backpressure > 0) inst.backpressureWaiters.push(this);
    else if ((this.waitsForEntry || this.waitsForExclusive) && inst.exclusiveThread !== null) inst.exclusiveWaiters.push(this);
  }

  startWaiting(ready: ReadyFunc, k: Cont, cancellable: boolean): void {
    this.cont = k;
    this.readyFunc = ready;
    this.cancellable = cancellable;
    if (ready(this)) store.wake(this);
    else this.park();
  }

  /** Thread.resume_later */
  resumeLater(): void {
    this.readyFunc = alwaysReady;
    store.wake(this);
  }

  /** Thread.resume: run the continuation (synchronously, or asynchronously for a JSPI stack). */
  resume(cancelled: boolean): void {
    const k = this.cont!;
    this.cont = null;
    this.readyFunc = null;
    this.waitsForEntry = false;
    this.waitsForExclusive = false;
    this.yieldWait = false;
    if (this.cancelOnResume) { this.cancelOnResume = false; cancelled = true; }
    k(cancelled, this);
  }

  /**
   * Thread.wait_until in continuation style: returns the `cancelled` flag when
   * no blocking was needed, else BLOCKED (and `k` runs when resumed).
   */
  waitUntil(ready: ReadyFunc, cancellable: boolean, k: Cont, mayReturnAtOnce = true): boolean | Blocked {
    if (this.task.deliverPendingCancel(cancellable)) return true;
    if (mayReturnAtOnce && ready(this)) return false;
    this.startWaiting(ready, k, cancellable);
    return BLOCKED;
  }

  /**
   * Block the core wasm stack of this thread (which must be running on a JSPI
   * stack, inside a Suspending import): returns `after(cancelled)` at once, or
   * a Promise of it computed when the thread is resumed.
   */
  suspendStack<T>(ready: () => boolean, cancellable: boolean, after: (cancelled: boolean) => T, mayReturnAtOnce = true, yielding = false, unlock = false): T | Promise<T> {
    if (this.task.deliverPendingCancel(cancellable)) return after(true);
    if (mayReturnAtOnce && ready()) return after(false);
    return this.suspendStackNow(ready, cancellable, after, yielding, unlock);
  }

  suspendStackNow<T>(ready: (() => boolean) | null, cancellable: boolean, after: (cancelled: boolean) => T, yielding = false, unlock = false): Promise<T> {
    const t = this;
    // A callback-lifted task that blocks in a synchronous stream/future copy gives up the
    // instance's exclusive lock while blocked (the reference sync-streams and wasmtime
    // task-builtins tests expect other callback tasks to start meanwhile; async-calls-sync
    // expects a blocking synchronous call to keep it) and takes it back when it resumes.
    const task = t.task;
    const inst = task.inst;
    let relock = false;
    if (unlock && ready !== null && task.callback && inst.exclusiveThread === t) {
      relock = true;
      const r0 = ready;
      ready = () => inst.exclusiveThread === null && r0();
      t.waitsForExclusive = true;
      releaseExclusive(inst);
    }
    const p = new Promise<T>((resolve, reject) => {
      const k: Cont = (cancelled) => {
        t.jspiSuspended = false;
        t.asyncRunning = true;
        store.busy = t;
        if (relock) inst.exclusiveThread = t;
        try { resolve(after(cancelled)); } catch (e) { reject(e); }
      };
      t.jspiSuspended = true;
      t.suspensions++;
      if (ready === null) { t.cont = k; t.readyFunc = null; t.cancellable = cancellable; }
      else if (yielding) { t.cont = k; t.readyFunc = ready; t.cancellable = cancellable; store.yieldLater(t); }
      else t.startWaiting(ready, k, cancellable);
    }).then(setCurrentTo(t));
    if (t.asyncRunning) store.stopped(t);
    return p;
  }
}

const alwaysReady = () => true;

function setCurrentTo<T>(t: Thread): (v: T) => T {
  return (v) => { setCurrent(t); return v; };
}

// ------------------------------------------------------------------ tasks

export const TaskState = { INITIAL: 1, STARTED: 2, PENDING_CANCEL: 3, CANCEL_DELIVERED: 4, RESOLVED: 5 } as const;

/** What all tasks of one lifted function share (kept once per function, not in every task). */
export class TaskDef {
  ft: FuncType;
  /** canon options of the lift (null for host-implemented functions) */
  opts: CanonOptions | null;
  async: boolean;
  callback: boolean;
  /** the lifted function running a callback-lifted task's event loop (its resumeCallback continues the loop) */
  loop: unknown;
  constructor(ft: FuncType, opts: CanonOptions | null, async: boolean, callback: boolean, loop: unknown = null) {
    this.ft = ft;
    this.opts = opts;
    this.async = async;
    this.callback = callback;
    this.loop = loop;
  }
}

/**
 * A task is the borrow scope of its call (definitions.py Task.num_borrows):
 * it extends CallScope rather than owning one.
 */
export class Task extends CallScope {
  def: TaskDef;
  inst: ComponentInstanceState;
  site: CallSite;
  state: number = TaskState.INITIAL;
  implicitThread: Thread | null = null;
  /** registered threads: one Thread (the usual case, no array), several in an array, or null */
  threads: Thread | Thread[] | null = null;
  root: HostCall | null;
  /** the tag of the host call this task works for (setHostCallTag), 0 if none */
  tag: number;

  constructor(def: TaskDef, inst: ComponentInstanceState, site: CallSite, root: HostCall | null, tag = 0) {
    super();
    this.def = def;
    this.inst = inst;
    this.site = site;
    this.root = root;
    this.tag = tag;
  }

  get ft(): FuncType { return this.def.ft; }
  get opts(): CanonOptions | null { return this.def.opts; }
  get async(): boolean { return this.def.async; }
  get callback(): boolean { return this.def.callback; }
  get loop(): unknown { return this.def.loop; }
  /** borrows received by this call (num_borrows): the task itself */
  get scope(): CallScope { return this; }

  needsExclusive(): boolean { return !this.async || this.callback; }

  hasBackpressure(): boolean {
    const inst = this.inst;
    return inst.backpressure > 0 || (this.needsExclusive() && inst.exclusiveThread !== null);
  }

  /**
   * Task.enter_implicit_thread in continuation style: returns true when the task
   * may start now, false when it was cancelled while waiting, BLOCKED when `k`
   * will be called once it may start (with false when it got cancelled).
   */
  enterImplicitThread(t: Thread, k: (entered: boolean) => void): boolean | Blocked {
    this.implicitThread = t;
    const inst = this.inst;
    if (this.ft.async) {
      if (this.hasBackpressure() || inst.numWaitingToEnter > 0) {
        inst.numWaitingToEnter++;
        t.waitsForEntry = true;
        const after = (cancelled: boolean): boolean => {
          inst.numWaitingToEnter--;
          if (cancelled) { this.cancel(); return false; }
          this.acquire(t);
          return true;
        };
        const r = t.waitUntil(() => !this.hasBackpressure(), true, (c) => k(after(c)), false);
        if (r === BLOCKED) return BLOCKED;
        return after(r);
      }
      this.acquire(t);
      return true;
    }
    this.registerThread(t);
    return true;
  }

  private acquire(t: Thread): void {
    if (this.needsExclusive()) {
      trapIf(this.inst.exclusiveThread !== null, 'exclusive-thread-set');
      this.inst.exclusiveThread = t;
    }
    this.registerThread(t);
  }

  registerThread(t: Thread): void {
    const ts = this.threads;
    if (ts === null) this.threads = t;
    else if (ts instanceof Thread) this.threads = [ts, t];
    else ts.push(t);
    t.index = this.inst.threads.add(t);
  }

  exitImplicitThread(): void {
    const t = this.implicitThread!;
    this.unregisterThread(t);
    if (this.ft.async && this.needsExclusive()) releaseExclusive(this.inst);
  }

  unregisterThread(t: Thread): void {
    const ts = this.threads;
    if (ts === t) this.threads = null;
    else if (Array.isArray(ts)) {
      const i = ts.indexOf(t);
      if (i >= 0) ts.splice(i, 1);
      if (ts.length === 0) this.threads = null;
    }
    if (t.index !== 0) { this.inst.threads.remove(t.index); t.index = 0; }
    if (this.threads === null) {
      trapIf(this.state !== TaskState.RESOLVED, 'async-export-no-result');
    }
  }

  /** Task.request_cancellation */
  requestCancellation(caller: ComponentInstanceState | null): void {
    if (this.state === TaskState.INITIAL) {
      this.state = TaskState.CANCEL_DELIVERED;
      const t = this.implicitThread!;
      if (t.waiting()) t.resume(true);
      return;
    }
    if (this.state !== TaskState.STARTED) return;
    const inst = this.inst;
    let pick: Thread | null = null;
    const ts = this.threads;
    for (const t of ts === null ? [] : ts instanceof Thread ? [ts] : ts) {
      if (!t.cancellable || t.running()) continue;
      if (t === this.implicitThread && this.needsExclusive() && inst.exclusiveThread !== null && inst.exclusiveThread !== t) continue;
      pick = t;
      break;
    }
    if (pick !== null && inst.mayEnterFrom(caller)) {
      this.state = TaskState.CANCEL_DELIVERED;
      if (pick.jspiSuspended) {
        // A JSPI stack resumes asynchronously: let the scheduler resume it (cancelled).
        pick.cancelOnResume = true;
        pick.readyFunc = alwaysReady;
        store.wake(pick);
        return;
      }
      inst.enterFrom(caller);
      const prev = current;
      try { pick.resume(true); } finally { setCurrent(prev); inst.leaveTo(caller); }
    } else {
      this.state = TaskState.PENDING_CANCEL;
    }
  }

  deliverPendingCancel(cancellable: boolean): boolean {
    if (cancellable && this.state === TaskState.PENDING_CANCEL) {
      this.state = TaskState.CANCEL_DELIVERED;
      return true;
    }
    return false;
  }

  start(): unknown[] {
    this.state = TaskState.STARTED;
    return this.site.onStart();
  }

  /** Task.return_ */
  return_(result: unknown): void {
    trapIf(this.state === TaskState.RESOLVED, 'task-already-returned');
    trapIf(this.scope.numBorrows > 0, 'borrows-remain');
    this.state = TaskState.RESOLVED;
    store.progress++;
    this.site.onResolve(result, false);
  }

  /** Task.cancel */
  cancel(): void {
    trapIf(this.state !== TaskState.CANCEL_DELIVERED, 'task-cancel-not-delivered');
    trapIf(this.scope.numBorrows > 0, 'borrows-remain');
    this.state = TaskState.RESOLVED;
    store.progress++;
    this.site.onResolve(undefined, true);
  }
}

/** A call site that passes no arguments and ignores the result. */
export const NO_SITE: CallSite = { onStart: () => [], onResolve: () => {} };

export function releaseExclusive(inst: ComponentInstanceState): void {
  inst.exclusiveThread = null;
  const ws = inst.exclusiveWaiters;
  if (ws.length) {
    inst.exclusiveWaiters = [];
    for (const t of ws) store.wake(t);
  }
}

export function wakeBackpressureWaiters(inst: ComponentInstanceState): void {
  const ws = inst.backpressureWaiters;
  if (ws.length) {
    inst.backpressureWaiters = [];
    for (const t of ws) store.wake(t);
  }
}

// ------------------------------------------------------------------ entering core code

/** A core function together with how to call it (plainly, or through a JSPI trampoline). */
export interface CoreEntry {
  fn: Function;
  /** set when the instance runs on JSPI stacks */
  promising: ((...args: unknown[]) => Promise<unknown>) | null;
}

/**
 * Call core code on thread `t`. Returns the core result, or SUSPENDED when
 * the JSPI stack blocked; `t.entryDone` must then be set by the caller and is
 * called with the result once the stack finishes.
 */
export function runEntry(t: Thread, e: CoreEntry, args: unknown[]): unknown {
  const prev = current;
  setCurrent(t);
  if (e.promising === null) {
    try { return e.fn(...args); } finally { setCurrent(prev); }
  }
  t.syncDone = false;
  const suspensions = t.suspensions;
  let p: Promise<unknown>;
  try {
    p = e.promising(...args);
  } finally {
    setCurrent(prev);
  }
  if (t.syncDone) {
    t.syncDone = false;
    const v = t.syncValue;
    t.syncValue = undefined;
    return v;
  }
  if (t.suspensions !== suspensions) {
    p.then(undefined, (err) => threadTrapped(t, err));
    return SUSPENDED;
  }
  // Trapped before suspending: the reason arrives asynchronously.
  const trap = new Trap("wasm trap");
  p.then(undefined, (err) => {
    const te = toTrapError(err);
    if (te instanceof Error) {
      trap.message = te.message;
      trap.reason = te instanceof Trap ? te.reason : te.message;
      trap.kind = te instanceof Trap ? te.kind : 'other';
      trap.cause = te instanceof Trap && te.cause !== undefined ? te.cause : te;
    }
  });
  throw lastSyncTrap ?? trap;
}

/** The most recent Trap thrown by a built-in (to report it when a JSPI entry fails synchronously). */
let lastSyncTrap: unknown = null;
export function noteTrap(e: unknown): void { lastSyncTrap = e; queueMicrotask(clearLastTrap); }
function clearLastTrap(): void { lastSyncTrap = null; }

/** The `done` import of JSPI trampolines. */
export function entryFinished(v: unknown): void {
  const t = current;
  if (t === null) return;
  if (!t.asyncRunning) {
    t.syncDone = true;
    t.syncValue = v;
    return;
  }
  const k = t.entryDone;
  t.entryDone = null;
  t.asyncRunning = false;
  try {
    if (k) k(v);
  } catch (e) {
    threadTrapped(t, e);
  }
  if (store.busy === t) { t.asyncRunning = true; store.stopped(t); }
  else if (current === t) setCurrent(null);
}

/**
 * `realloc` runs as its own (synchronous) task in the spec (LiftLowerContext.reallocate
 * calls canon_lift), so context.get/set inside it see fresh, separate slots.
 */
export function wrapRealloc<F extends Function>(inst: ComponentInstanceState, realloc: F): F {
  let t: Thread | null = null;
  return function reallocInOwnTask(...args: unknown[]) {
    if (t === null) {
      const ft: FuncType = { kind: 'func', async: false, params: [], result: null };
      t = new Thread(new Task(new TaskDef(ft, null, false, false), inst, NO_SITE, null));
    }
    t.storage0 = 0;
    t.storage1 = 0;
    const prev = current;
    t.task.tag = runningTag(); // one Task serves every call: it works for its caller (the host's call when lowering for it)
    setCurrent(t);
    try { return realloc(...args); } finally { setCurrent(prev); }
  } as unknown as F;
}

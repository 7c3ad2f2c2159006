// Waitables, waitable sets and subtasks (CanonicalABI.md "Waitable State",
// "Subtask State").

import { trapIf } from '../errors.ts';
import type { CallScope } from './resources.ts';
import { BLOCKED, store, type Blocked, type OnCancel, type Thread } from './task.ts';

export const EventCode = {
  NONE: 0, SUBTASK: 1, STREAM_READ: 2, STREAM_WRITE: 3, FUTURE_READ: 4, FUTURE_WRITE: 5, TASK_CANCELLED: 6,
} as const;

/** (event code, payload 1, payload 2) */
export type EventTuple = [number, number, number];

export const EVENT_NONE: EventTuple = [EventCode.NONE, 0, 0];
export const EVENT_CANCELLED: EventTuple = [EventCode.TASK_CANCELLED, 0, 0];

export class Waitable {
  /** called with the waitable as `this` (so a shared function can serve every waitable) */
  pendingEvent: ((this: Waitable) => EventTuple) | null = null;
  wset: WaitableSet | null = null;
  /** the thread waiting on this waitable alone (has_sync_waiter) */
  syncWaiter: Thread | null = null;
  /** the waitable set whose ready list holds this waitable */
  readyIn: WaitableSet | null = null;

  setPendingEvent(f: (this: Waitable) => EventTuple): void {
    this.pendingEvent = f;
    store.progress++;
    const ws = this.wset;
    if (ws !== null) ws.noteReady(this);
    if (this.syncWaiter !== null) store.wake(this.syncWaiter);
  }

  hasPendingEvent(): boolean { return this.pendingEvent !== null; }
  hasSyncWaiter(): boolean { return this.syncWaiter !== null; }
  inWaitableSet(): boolean { return this.wset !== null; }

  getPendingEvent(): EventTuple {
    const f = this.pendingEvent!;
    this.pendingEvent = null;
    return f.call(this);
  }

  /**
   * Waitable.wait_for_pending_event for a thread on a JSPI stack: returns
   * `after()` at once or a Promise of it.
   */
  waitForPendingEvent<T>(t: Thread, after: () => T, unlock = false): T | Promise<T> {
    this.syncWaiter = t;
    return t.suspendStack(() => this.pendingEvent !== null, false, () => {
      this.syncWaiter = null;
      return after();
    }, true, false, unlock);
  }

  join(wset: WaitableSet | null): void {
    if (this.wset) {
      const es = this.wset.elems;
      const i = es.indexOf(this);
      if (i >= 0) { es[i] = es[es.length - 1]!; es.pop(); }
    }
    this.wset = wset;
    if (wset) {
      if (wset.elems.length === 0) wset.elems = [this]; // exact size: a push onto [] reserves 17 slots
      else wset.elems.push(this);
      if (this.pendingEvent !== null) wset.noteReady(this);
    }
  }

  drop(): void {
    this.join(null);
  }
}

/** Shared (frozen) empty ready list: a waiting set keeps no array of its own until an event arrives. */
const NONE_READY: Waitable[] = Object.freeze([]) as unknown as Waitable[];

export class WaitableSet {
  elems: Waitable[] = [];
  numWaiting = 0;
  /** threads blocked in wait_for_event_and on this set */
  waiters: Thread[] = [];
  /** waitables that got a pending event while in this set (FIFO, entries may be stale); NONE_READY until the first */
  ready: Waitable[] = NONE_READY;
  rhead = 0;

  noteReady(w: Waitable): void {
    if (w.readyIn !== this) {
      w.readyIn = this;
      if (this.ready === NONE_READY) this.ready = [w];
      else this.ready.push(w);
    }
    for (const t of this.waiters) store.wake(t);
  }

  private front(): Waitable | null {
    const r = this.ready;
    while (this.rhead < r.length) {
      const w = r[this.rhead]!;
      if (w.readyIn === this && w.wset === this && w.pendingEvent !== null) return w;
      if (w.readyIn === this) w.readyIn = null;
      this.rhead++;
    }
    if (this.rhead > 0) { r.length = 0; this.rhead = 0; }
    return null;
  }

  hasPendingEvent(): boolean { return this.front() !== null; }

  getPendingEvent(): EventTuple {
    const w = this.front()!;
    this.rhead++;
    w.readyIn = null;
    return w.getPendingEvent();
  }

  /**
   * WaitableSet.wait_for_event_and in continuation style: returns the event,
   * or BLOCKED (then `k(event)` runs when the thread is resumed).
   */
  waitForEventAnd(t: Thread, readyFunc: (() => boolean) | null, cancellable: boolean, k: (e: EventTuple) => void): EventTuple | Blocked {
    const ready = readyFunc === null ? () => this.hasPendingEvent() : () => readyFunc() && this.hasPendingEvent();
    this.addWaiter(t);
    const after = (cancelled: boolean): EventTuple => {
      this.removeWaiter(t);
      return cancelled ? EVENT_CANCELLED : this.getPendingEvent();
    };
    const r = t.waitUntil(ready, cancellable, (c) => k(after(c)));
    if (r === BLOCKED) return BLOCKED;
    return after(r);
  }

  /** The same for a thread on a JSPI stack (waitable-set.wait). */
  waitForEventStack<T>(t: Thread, cancellable: boolean, map: (e: EventTuple) => T): T | Promise<T> {
    this.addWaiter(t);
    return t.suspendStack(() => this.hasPendingEvent(), cancellable, (cancelled) => {
      this.removeWaiter(t);
      return map(cancelled ? EVENT_CANCELLED : this.getPendingEvent());
    });
  }

  /** A thread starts waiting on this set (numWaiting and the threads to wake). */
  addWaiter(t: Thread): void {
    this.numWaiting++;
    if (this.waiters.length === 0) this.waiters = [t]; // exact size, as in join
    else this.waiters.push(t);
  }

  removeWaiter(t: Thread): void {
    const ws = this.waiters;
    const i = ws.indexOf(t);
    if (i >= 0) { ws[i] = ws[ws.length - 1]!; ws.pop(); }
    this.numWaiting--;
  }

  poll(t: Thread, cancellable: boolean): EventTuple {
    if (t.task.deliverPendingCancel(cancellable)) return EVENT_CANCELLED;
    if (!this.hasPendingEvent()) return EVENT_NONE;
    return this.getPendingEvent();
  }

  drop(): void {
    trapIf(this.elems.length > 0, 'drop-nonempty-waitable-set');
    trapIf(this.numWaiting > 0, 'drop-waitable-set-with-waiters');
  }
}

export const SubtaskState = {
  STARTING: 0, STARTED: 1, RETURNED: 2, CANCELLED_BEFORE_STARTED: 3, CANCELLED_BEFORE_RETURNED: 4,
} as const;

export class Subtask extends Waitable {
  state: number = SubtaskState.STARTING;
  onCancel: OnCancel | null = null;
  /** handles lent to the callee; null once the resolution was delivered */
  lenders: CallScope | null;
  cancellationRequested = false;
  /** a synchronous caller blocked until this subtask resolves */
  resolveWaiter: Thread | null = null;
  /** the results were lowered into the caller's memory (async lower) */
  constructor(scope: CallScope) {
    super();
    this.lenders = scope;
  }

  resolved(): boolean { return this.state >= SubtaskState.RETURNED; }

  resolve(state: number): void {
    this.state = state;
    if (this.resolveWaiter !== null) store.wake(this.resolveWaiter);
  }

  deliverResolve(): void {
    const l = this.lenders;
    if (l && l.lenders) for (const h of l.lenders) h.numLends--;
    this.lenders = null;
  }

  resolveDelivered(): boolean { return this.lenders === null; }

  override drop(): void {
    trapIf(!this.resolveDelivered(), 'drop-unresolved-subtask');
    super.drop();
  }
}

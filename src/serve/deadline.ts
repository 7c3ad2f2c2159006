// Request deadlines for `-W timeout` in `weir serve` (on by default there, so
// it must cost next to nothing per request). A per-request setTimeout plus an
// AbortController (a node EventTarget, whose listeners are slow to add) cost
// ~20% of a hello-world request. Instead every deadline is a small
// AbortSignal-shaped object (`aborted`, `reason`, `addEventListener` /
// `removeEventListener` of 'abort': all the runtime and the serve machine use
// of a call's signal). All deadlines of one sweep have the same length, so the
// order they start in is the order they fall due: they form a doubly linked
// list, appended at the tail and fired from the head, and a request that ends
// first unlinks itself (a few field writes; no hashing, nothing retained). One
// timer, armed for the head, fires everything due; it is re-armed no sooner
// than one period (timeout/20, 5–100 ms) later, so deadlines fire up to a
// period late and never early.

type Listener = (this: unknown, ev: Event) => void;

/** One request's deadline; hand it to the guest call as its AbortSignal. */
export class Deadline {
  aborted = false;
  reason: unknown = undefined;
  onabort: null = null;
  private listeners: Listener[] | null = null;
  /** @internal when it falls due (performance.now() time) */
  readonly due: number;
  /** @internal the sweep whose list holds it, until it fires or is dropped */
  sweep: DeadlineSweep | null;
  /** @internal neighbours in that list */
  prev: Deadline | null = null;
  next: Deadline | null = null;
  private readonly expire: (d: Deadline) => void;

  constructor(expire: (d: Deadline) => void, due: number, sweep: DeadlineSweep) {
    this.expire = expire;
    this.due = due;
    this.sweep = sweep;
  }

  addEventListener(type: string, fn: Listener | { handleEvent: Listener } | null, _opts?: unknown): void {
    if (type !== 'abort' || fn === null) return;
    const f = typeof fn === 'function' ? fn : fn.handleEvent.bind(fn);
    (this.listeners ??= []).push(f);
  }

  removeEventListener(type: string, fn: Listener | { handleEvent: Listener } | null): void {
    if (type !== 'abort' || !this.listeners || typeof fn !== 'function') return;
    const i = this.listeners.indexOf(fn);
    if (i >= 0) this.listeners.splice(i, 1);
  }

  throwIfAborted(): void { if (this.aborted) throw this.reason; }

  /** Aborts now with `reason` (the deadline, or an outer signal), running each listener once. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.drop();
    this.aborted = true;
    this.reason = reason;
    const ls = this.listeners;
    this.listeners = null;
    if (ls) for (const f of ls) { try { f.call(this, new Event('abort')); } catch { /* a listener must not stop the others */ } }
  }

  /** The request ended in time: the deadline will not fire. */
  drop(): void {
    this.sweep?.unlink(this);
  }

  /** As an AbortSignal for APIs typed with one (it implements what they use of it). */
  get signal(): AbortSignal { return this as unknown as AbortSignal; }

  /** @internal called by the sweep when due, after unlinking it */
  fire(): void { this.expire(this); }
}

/** Deadlines `ms` after their start, in start (= due) order. */
export class DeadlineSweep {
  readonly ms: number;
  private readonly period: number;
  private head: Deadline | null = null;
  private tail: Deadline | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(ms: number) {
    this.ms = ms;
    this.period = Math.min(100, Math.max(5, Math.floor(ms / 20)));
  }

  /** A deadline starting now; `expire` runs when it is due (unless dropped or aborted first). */
  start(expire: (d: Deadline) => void): Deadline {
    const d = new Deadline(expire, performance.now() + this.ms, this);
    const t = this.tail;
    if (t === null) this.head = d;
    else { t.next = d; d.prev = t; }
    this.tail = d;
    if (this.timer === null) this.arm(this.ms);
    return d;
  }

  /** @internal takes `d` out of the list (it ended, or is firing) */
  unlink(d: Deadline): void {
    const { prev, next } = d;
    if (prev === null) this.head = next; else prev.next = next;
    if (next === null) this.tail = prev; else next.prev = prev;
    d.prev = d.next = null;
    d.sweep = null;
  }

  private arm(wait: number): void {
    this.timer = setTimeout(this.fireDue, Math.max(this.period, Math.ceil(wait)));
    this.timer.unref();
  }

  private readonly fireDue = (): void => {
    this.timer = null;
    const now = performance.now();
    try {
      for (let d = this.head; d !== null && d.due <= now; d = this.head) {
        this.unlink(d);
        d.fire();
      }
    } finally {
      // even if an expiry threw: the deadlines after it still need their timer
      if (this.head !== null && this.timer === null) this.arm(this.head.due - performance.now());
    }
  };
}

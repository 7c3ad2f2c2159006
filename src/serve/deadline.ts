// Request deadlines for `-W timeout` in `weir serve` (on by default there, so
// it must cost next to nothing per request). A per-request setTimeout plus an
// AbortController (a node EventTarget, whose listeners are slow to add) cost
// ~20% of a hello-world request. Instead every deadline is a small
// AbortSignal-shaped object (`aborted`, `reason`, `addEventListener` /
// `removeEventListener` of 'abort': all the runtime and the serve machine use
// of a call's signal) filed in a time bucket; one timer per bucket period
// fires the buckets that are due. A request that ends first leaves its bucket
// (a Set delete). Deadlines fire up to one period late (period = timeout/20,
// 5–100 ms).

type Listener = (this: unknown, ev: Event) => void;

/** One request's deadline; hand it to the guest call as its AbortSignal. */
export class Deadline {
  aborted = false;
  reason: unknown = undefined;
  onabort: null = null;
  private listeners: Listener[] | null = null;
  /** @internal the bucket holding it, until it fires or is dropped */
  bucket: Set<Deadline> | null = null;
  private readonly expire: (d: Deadline) => void;

  constructor(expire: (d: Deadline) => void) { this.expire = expire; }

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
    this.bucket?.delete(this);
    this.bucket = null;
  }

  /** @internal called by the sweep when due */
  fire(): void {
    this.bucket = null;
    this.expire(this);
  }

  /** As an AbortSignal for APIs typed with one (it implements what they use of it). */
  get signal(): AbortSignal { return this as unknown as AbortSignal; }
}

/** Deadlines `ms` after their start, grouped in time buckets. */
export class DeadlineSweep {
  readonly ms: number;
  private readonly period: number;
  private readonly buckets = new Map<number, Set<Deadline>>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(ms: number) {
    this.ms = ms;
    this.period = Math.min(100, Math.max(5, Math.floor(ms / 20)));
  }

  /** A deadline starting now; `expire` runs when it is due (unless dropped or aborted first). */
  start(expire: (d: Deadline) => void): Deadline {
    const d = new Deadline(expire);
    // Rounded up, so a deadline never fires early.
    const key = Math.ceil((performance.now() + this.ms) / this.period);
    let b = this.buckets.get(key);
    if (!b) { b = new Set(); this.buckets.set(key, b); }
    b.add(d);
    d.bucket = b;
    if (this.timer === null) this.arm();
    return d;
  }

  private arm(): void {
    // Map iteration order is insertion order, and keys only grow: the first bucket is the earliest.
    const first = this.buckets.keys().next();
    if (first.done) { this.timer = null; return; }
    const wait = Math.max(0, first.value * this.period - performance.now());
    this.timer = setTimeout(this.sweep, wait);
    this.timer.unref();
  }

  private readonly sweep = (): void => {
    const now = performance.now();
    for (const [key, b] of this.buckets) {
      if (key * this.period > now) break;
      this.buckets.delete(key);
      for (const d of b) d.fire();
    }
    this.arm();
  };
}

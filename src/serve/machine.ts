// The serve machinery shared by `weir serve`, createRequestListener and
// createHandler: world detection, composition, the instance pool (reuse
// limits, concurrency per instance, idle timeout), trap isolation and
// draining.
//
// Pool policy: a request goes to the first live instance that has a free
// slot (fewer than maxConcurrent in flight, fewer than maxReuse served, no
// guest backpressure); otherwise a new instance is created. An instance that
// served maxReuse requests retires once its last request finished; an idle
// one is closed after idleTimeoutMs. When a call traps, the instance is
// discarded: every other request in flight on it fails at once (500, or a
// reset once its headers left), and the next request gets a fresh instance.

import type { Component, Imports } from '../host/component.ts';
import { matchName } from '../types/names.ts';
import { createWasi, type Wasi, type WasiConfig } from '../wasi/index.ts';
import type { HttpClient } from '../wasi/core/http/client.ts';
import { httpImports } from '../wasi/p3/http.ts';
import { P3_VERSION } from '../wasi/p3/index.ts';
import type { HandleCall, HandleSink, HandlerAdapter, ServeRequest, ServeResponse, TrailersSink } from './adapter.ts';
import { instantiateComposition, planComposition, CompositionError, type LinkPlan, type Part } from './compose.ts';
import { NEVER_SIGNAL as NEVER, P3_HANDLER, p3Adapter } from './p3-adapter.ts';
import { p2Adapter } from './p2-adapter.ts';
import type { ServeObserver } from './observe.ts';
import { GuestBody } from './guest-body.ts';
import type { Fields } from '../wasi/core/http/fields.ts';
import type { Body } from '../wasi/core/http/message.ts';
import type { ErrorCode } from '../wasi/core/http/errors.ts';
import type { InstanceLimits } from '../runtime/limits.ts';

const P2_HANDLER = 'wasi:http/incoming-handler@0.2.0';

/** Defaults (see docs/SERVE.md for the measurements behind them). */
export const SERVE_DEFAULTS = {
  maxInstanceReuseCount: 1000,
  maxInstanceConcurrentReuseCount: 16,
  idleInstanceTimeoutMs: 1000,
} as const;

export interface ServeConfig {
  /** WASI settings every instance gets (env, preopens, stdio, outgoing HTTP, sockets). */
  wasi?: WasiConfig;
  /** Requests one instance serves in total before it is retired (p2: forced to 1). */
  maxInstanceReuseCount?: number;
  /** Requests one instance holds at once (p2: forced to 1). */
  maxInstanceConcurrentReuseCount?: number;
  /** Close an instance idle this long (ms). */
  idleInstanceTimeoutMs?: number;
  /** Set INSTANCE_ID=<n> in each instance's environment (default true). */
  instanceIdEnv?: boolean;
  /** One-line diagnostics (a trapped instance, a refused response). Default: stderr. */
  log?: (line: string) => void;
  /** H9: instance events for metrics and access logs (src/serve/observe.ts). */
  observer?: ServeObserver;
  /** H9: per-instance WASI settings over `wasi` (weir serve: stdout/stderr prefixed with the instance id). */
  instanceWasi?: (instance: number) => Partial<WasiConfig>;
  /** H8: -W max-instances/max-memories/max-tables, -S max-resources/hostcall-fuel for every instance. */
  instanceLimits?: InstanceLimits;
  /** Where instance ids come from (default 0, 1, 2, …; worker threads of `--workers N` share one process-wide counter). */
  nextInstanceId?: () => number;
}

export class ServeSetupError extends Error {
  override name = 'ServeSetupError';
  readonly code = 'WEIR_SERVE_SETUP';
}

class Slot {
  readonly id: number;
  readonly adapter: HandlerAdapter;
  readonly wasi: Wasi;
  inFlight = 0;
  served = 0;
  dead = false;
  retiring = false;
  /** One timer per idle spell at most: going busy leaves it running (it then finds the slot busy), going idle only notes the time. */
  idleTimer: ReturnType<typeof setTimeout> | null = null;
  /** When inFlight last dropped to 0 (performance.now()). */
  idleSince = 0;
  /** Guest calls not yet returned (a trapped instance never returns them: they are settled when it dies). */
  readonly calls: Exchange[] = [];
  /** Rejects when the instance trapped (a host body in flight races it). */
  readonly failed: Promise<never>;
  fail!: (e: unknown) => void;
  /** Requests whose response or body is still coming: they fail when the instance does (no reaction per request on `failed`). */
  readonly sending: Exchange[] = [];
  constructor(id: number, adapter: HandlerAdapter, wasi: Wasi) {
    this.id = id;
    this.adapter = adapter;
    this.wasi = wasi;
    this.failed = new Promise<never>((_, rej) => {
      // (settled a microtask later, as a rejection would be: the pool's bookkeeping for the trap runs first)
      this.fail = (e) => { rej(e); queueMicrotask(() => { for (const s of [...this.sending]) s.fail(e); }); };
    });
    this.failed.catch(() => {});
  }
}

// slot.calls / slot.sending are arrays with the position kept in the exchange (O(1) removal by swapping
// in the last one): a Set that grows and shrinks by a few entries per request rehashes (allocates) often.
function addTo(list: Exchange[], x: Exchange, calls: boolean): void {
  if (calls) x.callAt = list.length; else x.sendAt = list.length;
  list.push(x);
}
function removeFrom(list: Exchange[], x: Exchange, calls: boolean): void {
  const i = calls ? x.callAt : x.sendAt;
  if (i < 0) return;
  const last = list.pop()!;
  if (last !== x) {
    list[i] = last;
    if (calls) last.callAt = i; else last.sendAt = i;
  }
  if (calls) x.callAt = -1; else x.sendAt = -1;
}

export class InstanceFailedError extends Error {
  override name = 'InstanceFailedError';
  readonly code = 'WEIR_INSTANCE_FAILED';
}

/** The machine is draining: the front end answers 503 and closes the connection. */
export class ShuttingDownError extends Error {
  override name = 'ShuttingDownError';
  readonly code = 'WEIR_SHUTTING_DOWN';
}

export class ServeMachine {
  readonly kind: 'p3' | 'p2';
  private readonly parts: Part[];
  private readonly plan: LinkPlan;
  private readonly config: ServeConfig;
  private readonly maxReuse: number;
  private readonly maxConcurrent: number;
  private readonly idleMs: number;
  private readonly log: (line: string) => void;
  private readonly shared: Imports;
  private readonly client: () => HttpClient;
  private readonly firstWasi: Wasi;
  private slots: Slot[] = [];
  private nextId = 0;
  private inFlight = 0;
  private closing = false;
  private drained: (() => void) | null = null;
  /** Instances created so far (for tests and the bench). */
  instancesCreated = 0;

  /**
   * Checks the world and every link before anything runs: throws
   * ServeSetupError naming what was found when the first component exports
   * no handler, or an import nobody provides.
   */
  constructor(components: Part[], config: ServeConfig = {}) {
    if (components.length === 0) throw new ServeSetupError('no component to serve');
    this.parts = components;
    this.config = config;
    this.log = config.log ?? ((l) => { process.stderr.write(`${l}\n`); });
    const exportsOf = components[0].component.type.exports;
    if (matchName(P3_HANDLER, exportsOf) !== undefined) this.kind = 'p3';
    else if (matchName(P2_HANDLER, exportsOf) !== undefined) this.kind = 'p2';
    else {
      const names = [...exportsOf.keys()].join(', ') || 'nothing';
      throw new ServeSetupError(`${components[0].name}: not an HTTP service: it exports neither wasi:http/handler@0.3.x nor wasi:http/incoming-handler@0.2.x (it exports ${names})`);
    }
    // One WASI host builds the shared outgoing client; each instance gets its own host (own INSTANCE_ID) sharing it.
    this.firstWasi = createWasi(config.wasi ?? {});
    const firstHost = this.firstWasi.host;
    this.client = () => firstHost.http;
    this.shared = httpImports({ client: this.client, version: P3_VERSION });
    try {
      this.plan = planComposition(components, { ...this.firstWasi.imports, ...this.shared });
    } catch (e) {
      this.firstWasi.close();
      if (e instanceof CompositionError) throw new ServeSetupError(e.message);
      throw e;
    }
    const p2 = this.kind === 'p2';
    this.maxReuse = p2 ? 1 : positive(config.maxInstanceReuseCount, SERVE_DEFAULTS.maxInstanceReuseCount);
    this.maxConcurrent = p2 ? 1 : positive(config.maxInstanceConcurrentReuseCount, SERVE_DEFAULTS.maxInstanceConcurrentReuseCount);
    this.idleMs = config.idleInstanceTimeoutMs ?? SERVE_DEFAULTS.idleInstanceTimeoutMs;
  }

  /** Live instances (for tests and the bench). */
  get instances(): number { return this.slots.length; }

  /**
   * Requests the live instances could take now without instantiating another
   * (handover.ts: a handed-over request is only taken into a free slot, so a
   * burst of them neither waits for instantiations nor grows the pool).
   */
  get freeCapacity(): number {
    if (this.closing) return 0;
    let n = 0;
    for (const s of this.slots) {
      if (s.dead || s.retiring || s.adapter.backpressure?.()) continue;
      n += Math.max(0, this.maxConcurrent - s.inFlight);
    }
    return n;
  }

  /** Instantiates one instance now (reports instantiation errors before a server binds). Kept in the pool. */
  warm(): void {
    const s = this.createSlot();
    this.armIdle(s);
  }

  private createSlot(): Slot {
    const id = this.config.nextInstanceId ? this.config.nextInstanceId() : this.nextId++;
    const base = this.config.wasi ?? {};
    const env: [string, string][] = base.env === undefined ? [] : Symbol.iterator in base.env
      ? [...(base.env as Iterable<readonly [string, string]>)].map(([k, v]) => [k, v] as [string, string])
      : Object.entries(base.env as Record<string, string>);
    if (this.config.instanceIdEnv !== false) env.push(['INSTANCE_ID', String(id)]);
    const own = this.config.instanceWasi?.(id); // H9 hook
    const t0 = this.config.observer?.instantiated ? performance.now() : 0; // H9 hook
    const wasi = createWasi({ ...base, ...own, env, http: { ...(base.http ?? {}), client: this.client() } });
    let adapter: HandlerAdapter | null;
    try {
      const instances = instantiateComposition(this.parts, this.plan, { ...wasi.imports, ...this.shared },
        this.config.instanceLimits ? { limits: this.config.instanceLimits } : undefined); // H8 hook
      const exports = instances[0].exports;
      adapter = this.kind === 'p3' ? p3Adapter(exports, this.maxConcurrent) : p2Adapter(exports);
    } catch (e) {
      wasi.close();
      throw e;
    }
    if (!adapter) throw new ServeSetupError(`${this.parts[0].name}: the instance has no handler export`);
    const slot = new Slot(id, adapter, wasi);
    this.instancesCreated++;
    this.config.observer?.instantiated?.(id, (performance.now() - t0) / 1000); // H9 hook
    this.slots.push(slot);
    return slot;
  }

  private acquire(): Slot {
    for (const s of this.slots) {
      if (s.dead || s.retiring || s.inFlight >= this.maxConcurrent) continue;
      if (s.adapter.backpressure?.()) continue;
      return s;
    }
    return this.createSlot();
  }

  /**
   * Hands one request to an instance. The response promise rejects when the
   * guest failed (error-code, no response, trap, or its instance trapped):
   * the front end answers 500. The response body is guarded: it fails if the
   * instance dies while the body is being sent.
   */
  handle(request: ServeRequest, signal: AbortSignal = NEVER): Promise<ServeResponse> {
    if (this.closing) return Promise.reject(new ShuttingDownError('the server is shutting down'));
    let slot: Slot;
    try {
      slot = this.acquire();
    } catch (e) {
      this.log(`weir: cannot instantiate ${this.parts[0].name}: ${errText(e)}`);
      return Promise.reject(e);
    }
    this.config.observer?.assigned?.(slot.id); // H9 hook
    slot.inFlight++;
    slot.served++;
    this.inFlight++;
    if (slot.served >= this.maxReuse) slot.retiring = true;
    const x = new Exchange(this, slot, signal);
    const start = slot.adapter.start;
    let call: HandleCall | null = null;
    if (start === undefined) {
      try {
        call = slot.adapter.handle(request, signal);
      } catch (e) {
        this.trapped(slot, e);
        x.release(); x.release();
        return Promise.reject(e);
      }
    }
    addTo(slot.calls, x, true);
    if (call === null) {
      // The adapter reports to the exchange directly (no Promise per step; see HandleSink).
      const p = x.start(null);
      try {
        start!.call(slot.adapter, request, signal, x);
      } catch (e) {
        x.settled(null, e, true);
      }
      // A guest that answered during the call (the common case) was not cancellable by `signal` in
      // between (no abort can run inside it), and after its answer nothing is cancelled: no listeners.
      if (signal !== NEVER && !x.answeredAtOnce()) this.watchSignal(slot, x, signal);
      return p;
    }
    if (signal !== NEVER) this.watchSignal(slot, x, signal);
    call.done.then(() => x.end(), (e: unknown) => { this.callFailed(slot, signal, e); x.end(); });
    return x.start(call.response);
  }

  private watchSignal(slot: Slot, x: Exchange, signal: AbortSignal): void {
    // H8 hook: a call cancelled through `signal` (-W timeout) that ends with the abort reason is no trap;
    // the instance takes no new requests after a cancellation (its task may still be running). A p2
    // call cannot be cancelled: its instance (one request) is abandoned at once, so a drain does not wait for it.
    signal.addEventListener('abort', () => {
      // The call's answer is due no later than the abort: its response promise rejects with the reason now
      // (LimitedHandler relies on this for -W timeout's 504), whatever the guest does with the cancellation.
      x.abandon(signal.reason);
      slot.retiring = true;
      if (slot.adapter.kind === 'p2' && !slot.dead) {
        slot.dead = true;
        slot.fail(new InstanceFailedError(`instance ${slot.id} abandoned after a timeout`));
        x.end();
      }
    }, { once: true });
    // H9 hook: a deadline abort (reason with status 504: -W timeout, limits.ts) counts as a request timeout.
    const observer = this.config.observer;
    if (observer?.timedOut) signal.addEventListener('abort', () => { if ((signal.reason as { status?: unknown } | undefined)?.status === 504) observer.timedOut!(); }, { once: true });
  }

  /** @internal An exchange's two parts (call, transmission) are over. */
  releaseSlot(slot: Slot): void { this.release(slot); }

  /** @internal A guest call failed: a trap (the instance is discarded), or the cancellation `signal` asked for. */
  callFailed(slot: Slot, signal: AbortSignal, e: unknown): void {
    if (!(signal.aborted && e === signal.reason)) this.trapped(slot, e);
  }

  private trapped(slot: Slot, e: unknown): void {
    if (slot.dead) return;
    slot.dead = true;
    this.log(`weir: instance ${slot.id} failed: ${errText(e)}; it is discarded (${slot.inFlight - 1} other request(s) in flight on it fail)`);
    slot.fail(new InstanceFailedError(`instance ${slot.id} failed`));
    this.config.observer?.trapped?.(slot.id); // H9 hook
    // Calls on a trapped instance may never return: their slots are free now.
    for (const x of slot.calls.slice()) x.end();
    this.remove(slot);
  }

  private release(slot: Slot): void {
    slot.inFlight--;
    this.inFlight--;
    if (slot.inFlight === 0) {
      if (slot.dead || slot.retiring || this.closing) this.remove(slot);
      else this.armIdle(slot);
    }
    if (this.inFlight === 0 && this.drained) this.drained();
  }

  private armIdle(slot: Slot): void {
    if (this.idleMs === Infinity) return;
    slot.idleSince = performance.now();
    if (slot.idleTimer === null) this.idleTimer(slot, this.idleMs);
  }

  private idleTimer(slot: Slot, ms: number): void {
    slot.idleTimer = setTimeout(() => {
      slot.idleTimer = null;
      if (slot.inFlight !== 0) return; // busy again: armIdle starts a new spell when it is idle next
      const left = slot.idleSince + this.idleMs - performance.now();
      if (left > 1) this.idleTimer(slot, left);
      else this.remove(slot);
    }, ms);
    slot.idleTimer.unref?.();
  }

  private remove(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    if (slot.idleTimer) { clearTimeout(slot.idleTimer); slot.idleTimer = null; }
    if (slot.inFlight === 0 && slot.wasi !== this.firstWasi) slot.wasi.close();
    if (i >= 0) this.config.observer?.closed?.(slot.id); // H9 hook
  }

  /** Requests in flight right now. */
  get pending(): number { return this.inFlight; }

  /** Stop taking requests, wait for the ones in flight, close every instance. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.inFlight > 0) await new Promise<void>((r) => { this.drained = r; });
    for (const s of [...this.slots]) this.remove(s);
    this.firstWasi.close();
  }
}


function positive(v: number | undefined, d: number): number {
  if (v === undefined) return d;
  if (!(v >= 1)) throw new ServeSetupError(`expected a count of at least 1, got ${v}`);
  return v;
}

export function errText(e: unknown): string {
  if (e instanceof Error) return (e as { reason?: string }).reason ?? e.message;
  return String(e);
}

/**
 * One request on its slot, from the guest call to the response's
 * transmission (one object rather than a closure per step). It is the
 * ServeResponse the front end gets: a guest stream<u8> body is read directly
 * (GuestBody), and the body and trailers fail as soon as the instance dies
 * (the guest will never finish them).
 */
class Exchange implements ServeResponse, HandleSink, TrailersSink {
  private readonly machine: ServeMachine;
  private readonly slot: Slot;
  private readonly signal: AbortSignal;
  /** the adapter reported the call's outcome (HandleSink) */
  private callSettled = false;
  /** the guest call and the response transmission */
  private pending = 2;
  /** position in slot.calls / slot.sending, -1 when not there */
  callAt = -1;
  sendAt = -1;
  private callOpen = true;
  private responded = false;
  private reported = false;
  private resolve: ((r: ServeResponse) => void) | null = null;
  private reject: ((e: unknown) => void) | null = null;
  private rejectTrailers: ((e: unknown) => void) | null = null;
  /** trailersTo's sink, until the trailers came */
  private trailerSink: TrailersSink | null = null;
  /** the instance died (after the response came): the trailers fail with `failure` */
  private dead = false;
  private failure: unknown = undefined;
  private inner: ServeResponse | null = null;
  private direct: GuestBody | null = null;
  status = 500;
  headers!: Fields;
  body!: Body;
  constructor(machine: ServeMachine, slot: Slot, signal: AbortSignal) {
    this.machine = machine;
    this.slot = slot;
    this.signal = signal;
  }

  /** The adapter reported a response already (during the call itself). */
  answeredAtOnce(): boolean { return this.callSettled && this.responded; }

  /** HandleSink: the response (at once, possibly inside the guest's task.return), or the failure. */
  settled(r: ServeResponse | null, e: unknown, callFailed: boolean): void {
    if (this.callSettled) return;
    this.callSettled = true;
    if (r !== null) {
      this.onResponse(r);
      this.end();
      return;
    }
    // No response (an error-code, or a trap reported from deep in the runtime): handled a microtask
    // later, as a rejection was, so the slot is not released (and maybe closed) under the guest's stack.
    queueMicrotask(() => {
      this.onError(e);
      if (callFailed) this.machine.callFailed(this.slot, this.signal, e);
      this.end();
    });
  }

  release(): void { if (--this.pending === 0) this.machine.releaseSlot(this.slot); }

  /** The guest call returned (or its instance died). */
  end(): void {
    if (!this.callOpen) return;
    this.callOpen = false;
    removeFrom(this.slot.calls, this, true);
    this.release();
  }

  /** The promise of the response; `response` settles it (null: the adapter calls `settled`). */
  start(response: Promise<ServeResponse> | null): Promise<ServeResponse> {
    const p = new Promise<ServeResponse>((resolve, reject) => { this.resolve = resolve; this.reject = reject; });
    if (this.slot.dead) this.fail(new InstanceFailedError(`instance ${this.slot.id} failed`));
    else {
      addTo(this.slot.sending, this, false);
      response?.then((r) => this.onResponse(r), (e: unknown) => this.onError(e));
    }
    return p;
  }

  /** The call's signal aborted: a response not yet here will not be sent (rejects with the reason). */
  abandon(reason: unknown): void { this.onError(reason); }

  private onResponse(r: ServeResponse): void {
    // A response after the signal aborted (e.g. given while the guest handled its cancellation) comes too late.
    if (!this.responded && this.signal.aborted) this.onError(this.signal.reason);
    if (this.responded) { // the instance died or the signal aborted first: nobody will send this one
      r.body.stream?.[Symbol.asyncIterator]().return?.()?.catch(() => {});
      r.transmitted(this.signal.aborted ? { tag: 'HTTP-response-timeout' } : { tag: 'internal-error', val: undefined });
      return;
    }
    this.responded = true;
    this.inner = r;
    const stream = r.body.stream;
    const direct = stream === null ? null : GuestBody.from(stream);
    this.direct = direct;
    this.status = r.status;
    this.headers = r.headers;
    this.body = new ExchangeBody(direct ?? (stream === null ? null : guard(stream, this.slot.failed)), this);
    this.resolve!(this);
  }

  /** @internal body.trailers, made on first use: the guest's, failing as soon as the instance dies. */
  guardedTrailers(): Promise<Fields | null> {
    const trailers = new Promise<Fields | null>((res, rej) => {
      if (this.dead) { rej(this.failure); return; }
      this.rejectTrailers = rej;
      this.inner!.body.trailers.then(res, rej);
    });
    trailers.catch(() => {}); // a front end that gave up on the body never reads them
    return trailers;
  }

  /** ServeResponse.trailersTo: no Promise or closure of our own; the sink fails too when the instance dies first. */
  trailersTo(sink: TrailersSink): void {
    if (this.dead) { queueMicrotask(() => sink.trailersFailed(this.failure)); return; }
    const inner = this.inner!;
    if (inner.trailersTo === undefined) {
      this.body.trailers.then((t) => sink.trailersCame(t), (e: unknown) => sink.trailersFailed(e));
      return;
    }
    this.trailerSink = sink;
    inner.trailersTo(this);
  }

  /** (TrailersSink, from the guest's response) */
  trailersCame(t: Fields | null): void {
    const sink = this.trailerSink;
    if (sink === null) return; // the instance died first: the sink was failed
    this.trailerSink = null;
    sink.trailersCame(t);
  }

  trailersFailed(e: unknown): void {
    const sink = this.trailerSink;
    if (sink === null) return;
    this.trailerSink = null;
    sink.trailersFailed(e);
  }

  private onError(e: unknown): void {
    if (this.responded) return;
    this.responded = true;
    removeFrom(this.slot.sending, this, false);
    this.release();
    this.reject!(e);
  }

  /** The instance died. */
  fail(e: unknown): void {
    if (!this.responded) { this.onError(e); return; }
    this.dead = true;
    this.failure = e;
    this.direct?.fail(e);
    this.rejectTrailers?.(e);
    const sink = this.trailerSink;
    if (sink !== null) { this.trailerSink = null; sink.trailersFailed(e); }
  }

  /** (a bound function: front ends and limits.ts pass it around on its own) */
  readonly transmitted = (e: ErrorCode | null): void => {
    if (this.reported) return;
    this.reported = true;
    removeFrom(this.slot.sending, this, false);
    this.inner?.transmitted(e);
    this.release();
  };
}

/** An exchange's body: the guarded trailers Promise is made only for a consumer that reads `trailers`. */
class ExchangeBody implements Body {
  readonly stream: AsyncIterable<Uint8Array> | null;
  private readonly x: Exchange;
  private made: Promise<Fields | null> | null = null;
  constructor(stream: AsyncIterable<Uint8Array> | null, x: Exchange) {
    this.stream = stream;
    this.x = x;
  }
  get trailers(): Promise<Fields | null> { return this.made ??= this.x.guardedTrailers(); }
}

/** The body stream, failing as soon as the instance producing it died. */
function guard(stream: AsyncIterable<Uint8Array>, failed: Promise<never>): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]() {
      const it = stream[Symbol.asyncIterator]();
      return {
        next: () => Promise.race([it.next(), failed]),
        return: (v?: unknown) => (it.return ? it.return(v) : Promise.resolve({ done: true, value: undefined })),
      };
    },
  };
}

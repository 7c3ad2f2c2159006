// Request-level limits of `weir serve` (issue 10): admission (concurrent
// requests and connections: excess waits in a queue, then gets 503 +
// Retry-After), the request body size (413; the guest's body stream ends and
// its trailers future gives error-code HTTP-request-body-size), the request
// timeout (-W timeout: 504, and the guest task is cancelled through the export
// call's AbortSignal), and the node:http settings against slow clients
// (header size → 431, header timeout → 408, idle keep-alive timeout).
//
// Everything here sits in front of the ServeMachine: `LimitedHandler` has the
// machine's `handle` shape, so node.ts and the pool stay unaware of it.

import type { Server } from 'node:net';
import type { Socket } from 'node:net';
import { HttpError, type ErrorCode } from '../wasi/core/http/errors.ts';
import type { Body } from '../wasi/core/http/message.ts';
import type { ServeRequest, ServeResponse } from './adapter.ts';
import type { ServeMachine } from './machine.ts';
import { DeadlineSweep, type Deadline } from './deadline.ts';

/** Defaults; 0 turns a limit off. Documented in `weir serve --help` and the README. */
export const SERVE_LIMIT_DEFAULTS = {
  /** wasmtime serve's default */
  maxConcurrentRequests: 1000,
  /** wasmtime serve's default (--max-concurrent-connections there) */
  maxConnections: 1000,
  /** how long a request or connection waits for a slot before 503 */
  queueTimeoutMs: 10_000,
  /** 100 MiB */
  maxRequestBodySize: 100 * 1024 * 1024,
  /** node:http's default (16 KiB) */
  maxHeaderSize: 16 * 1024,
  /** the whole header section must arrive within this (node's headersTimeout is 60 s; slowloris wants less) */
  headerTimeoutMs: 20_000,
  /** the whole request (head and body) must arrive within this (node's requestTimeout default) */
  bodyTimeoutMs: 300_000,
  /** a kept-alive connection with no request is closed after this (node's keepAliveTimeout) */
  idleTimeoutMs: 5_000,
  /** SIGINT/SIGTERM: the longest wait for requests in flight */
  shutdownTimeoutMs: 30_000,
} as const;

export interface ServeLimits {
  maxConcurrentRequests?: number;
  maxConnections?: number;
  queueTimeoutMs?: number;
  maxRequestBodySize?: number;
  maxHeaderSize?: number;
  headerTimeoutMs?: number;
  bodyTimeoutMs?: number;
  idleTimeoutMs?: number;
  shutdownTimeoutMs?: number;
  /** -W timeout: from handing the request to the guest until its response head (none by default, as wasmtime) */
  requestTimeoutMs?: number;
}

export type ResolvedLimits = Required<Omit<ServeLimits, 'requestTimeoutMs'>> & { requestTimeoutMs: number };

export function resolveLimits(l: ServeLimits = {}): ResolvedLimits {
  return { ...SERVE_LIMIT_DEFAULTS, requestTimeoutMs: 0, ...Object.fromEntries(Object.entries(l).filter(([, v]) => v !== undefined)) };
}

/** A request refused by a limit: the front end answers `status` with `headers`. */
export class ServeLimitError extends Error {
  override name = 'ServeLimitError';
  readonly code = 'WEIR_SERVE_LIMIT';
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

/**
 * Where a Gate keeps its count when several worker threads share one limit
 * (`weir serve --workers N`): `ctl[at]` holds the slots taken in every
 * worker; `ctl[at + 2]` counts the workers with a queue, each waiting
 * (Atomics.waitAsync) for `ctl[at + 1]` to be bumped. A release bumps and
 * notifies only when someone waits: with no queue anywhere (the common case)
 * a request costs two loads, a compare-exchange and a subtract. A worker registers
 * before it reads the counter and tries again, so a release is never missed:
 * either the release saw it registered, or its retry sees the free slot.
 */
export interface SharedCount {
  ctl: Int32Array;
  at: number;
  /**
   * This worker's share: `held.ctl[held.at]` slots held, `[held.at + 2]` 1
   * while it waits, so the supervisor can give both back if the worker dies.
   * Only this worker writes them, and the supervisor reads them once it is
   * gone: plain stores.
   */
  held?: { ctl: Int32Array; at: number };
}

/** A counting semaphore with a FIFO queue; a waiter that is not admitted within `queueMs` is refused. */
export class Gate {
  /** Slots held in this thread. */
  active = 0;
  /** The most holders at once (tests, bench). */
  peak = 0;
  private readonly max: number;
  private readonly queueMs: number;
  private readonly queue: { admit: () => void; refuse: () => void; timer: ReturnType<typeof setTimeout> | null }[] = [];
  private closed = false;
  private readonly shared: SharedCount | null;
  private watching = false;
  constructor(max: number, queueMs: number, shared: SharedCount | null = null) {
    this.max = max > 0 ? max : Infinity;
    this.queueMs = queueMs;
    this.shared = max > 0 ? shared : null;
  }
  /** Takes a slot if one is free right now (and nobody is queued). */
  tryEnter(): boolean {
    if (this.closed || this.queue.length > 0) return false;
    return this.claim();
  }
  /** Calls `admit` now or later, or `refuse` (queue timeout, or closed). */
  enter(admit: () => void, refuse: () => void): void {
    if (this.closed) { refuse(); return; }
    if (this.queue.length === 0 && this.claim()) { admit(); return; }
    const w = { admit, refuse, timer: null as ReturnType<typeof setTimeout> | null };
    if (this.queueMs > 0) {
      w.timer = setTimeout(() => {
        const i = this.queue.indexOf(w);
        if (i >= 0) this.queue.splice(i, 1);
        refuse();
      }, this.queueMs);
    }
    this.queue.push(w);
    if (this.shared) this.watch();
  }
  private claim(): boolean {
    if (this.shared) {
      const { ctl, at } = this.shared;
      for (;;) {
        const n = Atomics.load(ctl, at);
        if (n >= this.max) return false;
        if (Atomics.compareExchange(ctl, at, n, n + 1) === n) break;
      }
    } else if (this.active >= this.max) {
      return false;
    }
    this.active++;
    const held = this.shared?.held;
    if (held) held.ctl[held.at] = this.active;
    if (this.active > this.peak) this.peak = this.active;
    return true;
  }
  /** Admits queued waiters while slots are free. */
  private drain(): void {
    while (this.queue.length > 0 && !this.closed && this.claim()) {
      const w = this.queue.shift()!;
      if (w.timer) clearTimeout(w.timer);
      w.admit();
    }
  }
  /** Another worker's release wakes this one up while it has a queue (the timeout is a safety net). */
  private watch(): void {
    if (this.watching || !this.shared) return;
    this.watching = true;
    const { ctl, at, held } = this.shared;
    // Two stores, with no way for this thread to stop between them (a terminated worker stops in wasm
    // or at a safepoint of JS that runs longer, not between two statements of host code).
    Atomics.add(ctl, at + 2, 1);
    if (held) held.ctl[held.at + 2] = 1;
    const again = () => {
      // Read the release counter before trying, so a release between the try and the wait is not missed.
      const seen = Atomics.load(ctl, at + 1);
      this.drain();
      if (this.queue.length === 0 || this.closed) {
        this.watching = false;
        Atomics.sub(ctl, at + 2, 1);
        if (held) held.ctl[held.at + 2] = 0;
        return;
      }
      const r = Atomics.waitAsync(ctl, at + 1, seen, 250);
      if (r.async) r.value.then(again, again);
      else queueMicrotask(again);
    };
    again();
  }
  leave(): void {
    this.active--;
    if (this.shared) {
      const { ctl, at, held } = this.shared;
      if (held) held.ctl[held.at] = this.active;
      Atomics.sub(ctl, at, 1);
      if (Atomics.load(ctl, at + 2) !== 0) {
        Atomics.add(ctl, at + 1, 1);
        Atomics.notify(ctl, at + 1);
      }
    }
    this.drain();
  }
  /** Refuse everyone waiting and every later arrival (shutdown). */
  close(): void {
    this.closed = true;
    for (const w of this.queue.splice(0)) { if (w.timer) clearTimeout(w.timer); w.refuse(); }
  }
}

const busy = (what: string) => new ServeLimitError(503, `Service Unavailable: too many ${what}\n`, { 'retry-after': '1', connection: 'close' });

/**
 * The machine behind the limits: admission, body size and request timeout.
 * `handle` has ServeMachine.handle's contract, including this part of it:
 * when the signal passed to `machine.handle` aborts before the response
 * came, the call rejects at once with the signal's reason.
 */
export class LimitedHandler {
  readonly machine: Pick<ServeMachine, 'handle'>;
  readonly gate: Gate;
  private readonly limits: ResolvedLimits;
  private readonly onTimeout: (() => void) | undefined;
  /** -W timeout's deadlines (made on first use). */
  private deadlines: DeadlineSweep | null = null;
  /** `onTimeout`: called for each -W timeout expiry (H9's metrics count them). */
  /** `shared`: the count of admitted requests, when worker threads share --max-concurrent-requests. */
  constructor(machine: Pick<ServeMachine, 'handle'>, limits: ResolvedLimits, onTimeout?: () => void, shared: SharedCount | null = null) {
    this.machine = machine;
    this.limits = limits;
    this.onTimeout = onTimeout;
    this.gate = new Gate(limits.maxConcurrentRequests, limits.queueTimeoutMs, shared);
  }

  handle(request: ServeRequest, signal?: AbortSignal): Promise<ServeResponse> {
    const maxBody = this.limits.maxRequestBodySize;
    if (maxBody > 0 && request.body.stream !== null) {
      const declared = declaredLength(request);
      if (declared !== null && declared > maxBody) {
        request.body.stream[Symbol.asyncIterator]().return?.().catch(() => {});
        return Promise.reject(tooLarge(maxBody));
      }
    }
    // Fast path (a free slot): no extra promise around the call.
    if (this.gate.tryEnter()) return this.run(request, signal);
    return new Promise<void>((admit, refuse) => this.gate.enter(admit, () => refuse(busy('requests'))))
      .then(() => this.run(request, signal));
  }

  /** The call once admitted: the slot is given back when the response was sent (or failed). */
  private run(request: ServeRequest, signal?: AbortSignal): Promise<ServeResponse> {
    return this.admitted(request, signal, new Admission(this.gate));
  }

  private admitted(request: ServeRequest, outer: AbortSignal | undefined, a: Admission): Promise<ServeResponse> {
    const maxBody = this.limits.maxRequestBodySize;
    const ms = this.limits.requestTimeoutMs;
    let overflow: ((e: ServeLimitError) => void) | null = null;
    const overflowed = maxBody > 0 && request.body.stream !== null
      ? new Promise<never>((_, rej) => { overflow = rej; }) : null;
    if (overflowed) {
      overflowed.catch(() => {});
      request = { ...request, body: limitBody(request.body, maxBody, () => overflow!(tooLarge(maxBody))) };
    }
    if (ms <= 0 && !overflowed) return this.machine.handle(request, outer).then(a.responded, a.failed);
    if (!overflowed) {
      // Only a deadline (the common case): the machine's call rejects with the deadline's reason the
      // moment it aborts (ServeMachine does), so no race of our own: no Promise or closure per request.
      const deadline = a.deadline = (this.deadlines ??= new DeadlineSweep(ms)).start(this.expire);
      if (outer) {
        if (outer.aborted) deadline.abort(outer.reason);
        else outer.addEventListener('abort', () => deadline.abort(outer.reason), { once: true });
      }
      return this.machine.handle(request, deadline.signal).then(a.responded, a.failed);
    }
    // The guest's task gets its own signal: a Deadline (deadline.ts, no timer or EventTarget of its
    // own), aborted when due (the p3 export call is cancelled) or when the outer signal aborts.
    const race = new Race(a, this, ms);
    const deadline = race.deadline = ms > 0 ? (this.deadlines ??= new DeadlineSweep(ms)).start(race.expire) : null;
    if (deadline && outer) {
      if (outer.aborted) deadline.abort(outer.reason);
      else outer.addEventListener('abort', () => deadline.abort(outer.reason), { once: true });
    }
    const call = race.call = this.machine.handle(request, deadline ? deadline.signal : outer);
    // One hand-made promise (no Promise.race): the first of response, body overflow and deadline wins.
    const p = new Promise<ServeResponse>((resolve, reject) => { race.resolve = resolve; race.reject = reject; });
    call.then(race.won, race.failed);
    overflowed?.catch((e: unknown) => race.lose(e));
    return p;
  }

  /** @internal a -W timeout expired */
  timedOut(): void { this.onTimeout?.(); }

  /** A deadline without a Race fired: aborting it makes the machine reject the call with this 504. */
  private readonly expire = (d: Deadline): void => {
    d.abort(timedOut(this.limits.requestTimeoutMs));
    this.timedOut();
  };
}

function timedOut(ms: number): ServeLimitError {
  return new ServeLimitError(504, `Gateway Timeout: the component did not answer within ${ms} ms\n`, { connection: 'close' });
}

/** The race of one request with a deadline or a body limit: the first of response, overflow and deadline wins. */
class Race {
  private readonly a: Admission;
  private readonly handler: LimitedHandler;
  private readonly ms: number;
  private settled = false;
  deadline: Deadline | null = null;
  call: Promise<ServeResponse> | null = null;
  resolve: ((r: ServeResponse) => void) | null = null;
  reject: ((e: unknown) => void) | null = null;
  constructor(a: Admission, handler: LimitedHandler, ms: number) {
    this.a = a;
    this.handler = handler;
    this.ms = ms;
  }

  readonly expire = (d: Deadline): void => {
    const e = timedOut(this.ms);
    this.lose(e);
    d.abort(e);
    this.handler.timedOut();
  };

  lose(e: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.deadline?.drop();
    this.a.leave();
    this.reject!(e);
    // A response that comes after losing is dropped: its body is cancelled and its completion future says so.
    this.call!.then((r) => {
      r.body.stream?.[Symbol.asyncIterator]().return?.().catch(() => {});
      r.transmitted({ tag: 'HTTP-response-timeout' });
    }, () => {});
  }

  readonly won = (r: ServeResponse): void => {
    if (this.settled) return;
    this.settled = true;
    this.deadline?.drop();
    this.resolve!(this.a.responded(r));
  };

  readonly failed = (e: unknown): void => {
    if (this.settled) return;
    this.settled = true;
    this.deadline?.drop();
    this.a.leave();
    this.reject!(e);
  };
}

function tooLarge(max: number): ServeLimitError {
  return new ServeLimitError(413, `Content Too Large: the request body exceeds ${max} bytes\n`, { connection: 'close' });
}

/**
 * One admitted request's hold on its gate slot: given back once, when the
 * response was transmitted (its `transmitted` is wrapped) or when there is
 * no response. Settled in the same reaction as the call (no extra Promise).
 */
class Admission {
  private readonly gate: Gate;
  private left = false;
  private inner: ((e: ErrorCode | null) => void) | null = null;
  /** -W timeout's deadline when no Race holds it: it ends with the response head. */
  deadline: Deadline | null = null;
  constructor(gate: Gate) { this.gate = gate; }
  leave(): void {
    if (this.left) return;
    this.left = true;
    this.gate.leave();
  }
  readonly responded = (r: ServeResponse): ServeResponse => {
    this.deadline?.drop();
    this.inner = r.transmitted;
    r.transmitted = this.transmitted;
    return r;
  };
  readonly failed = (e: unknown): never => {
    this.deadline?.drop();
    this.leave();
    throw e;
  };
  private readonly transmitted = (e: ErrorCode | null): void => {
    this.leave();
    this.inner!(e);
  };
}


function declaredLength(r: ServeRequest): number | null {
  const v = r.headers.get('content-length');
  if (v.length === 0) return null;
  const n = Number(Buffer.from(v[0]).toString('latin1').trim());
  return Number.isFinite(n) ? n : null;
}

/**
 * The body with at most `max` bytes: past that the stream ends for the guest,
 * its trailers future fails with HTTP-request-body-size, and `over` is called.
 */
export function limitBody(body: Body, max: number, over: () => void): Body {
  const inner = body.stream;
  if (inner === null) return body;
  let fail!: (e: unknown) => void;
  const trailers = new Promise<Awaited<Body['trailers']>>((res, rej) => { fail = rej; body.trailers.then(res, rej); });
  trailers.catch(() => {});
  let seen = 0;
  let exceeded = false;
  const END: IteratorResult<Uint8Array> = { done: true, value: undefined };
  return {
    stream: {
      [Symbol.asyncIterator]() {
        const it = inner[Symbol.asyncIterator]();
        return {
          async next(): Promise<IteratorResult<Uint8Array>> {
            if (exceeded) return END;
            const r = await it.next();
            if (r.done) return r;
            seen += r.value.length;
            if (seen > max) {
              exceeded = true;
              fail(new HttpError({ tag: 'HTTP-request-body-size', val: BigInt(seen) }));
              it.return?.().catch(() => {});
              over();
              return END;
            }
            return r;
          },
          return: (v?: unknown) => (it.return ? it.return(v) : Promise.resolve(END)),
        };
      },
    },
    trailers,
  };
}

/** The node:http server options for the limits (header size → 431, header timeout → 408, idle keep-alive). */
export function httpServerOptions(l: ResolvedLimits): Record<string, number | boolean> {
  const header = l.headerTimeoutMs;
  const body = l.bodyTimeoutMs;
  return {
    keepAlive: true,
    ...(l.maxHeaderSize > 0 ? { maxHeaderSize: l.maxHeaderSize } : { maxHeaderSize: 2 ** 31 - 1 }),
    // node requires headersTimeout <= requestTimeout when both are on
    headersTimeout: header > 0 && body > 0 ? Math.min(header, body) : header,
    requestTimeout: body,
    keepAliveTimeout: l.idleTimeoutMs,
    // node checks the two timeouts on this period (30 s by default): keep it below the shortest one
    connectionsCheckingInterval: Math.max(50, Math.min(1000, ...[header, body].filter((x) => x > 0).map((x) => Math.floor(x / 4)))),
  };
}

/**
 * The same limits on H9's HTTPS server (node:http2 with allowHTTP1): its
 * http/1.1 connections read these fields as node:http does (431, 408, idle
 * keep-alive); h2 streams get the header limit as SETTINGS_MAX_HEADER_LIST_SIZE
 * (node resets a stream over it rather than answering 431).
 */
export function applyTlsServerLimits(server: object, l: ResolvedLimits): void {
  const o = httpServerOptions(l);
  const t = server as Record<string, unknown> & { updateSettings?: (s: Record<string, number>) => void };
  for (const k of ['headersTimeout', 'requestTimeout', 'keepAliveTimeout', 'connectionsCheckingInterval', 'maxHeaderSize'] as const) t[k] = o[k];
  if (l.maxHeaderSize > 0) t.updateSettings?.({ maxHeaderListSize: l.maxHeaderSize });
}

/**
 * The listening socket in front of `server` (http, or H9's TLS server): it
 * accepts with reading paused and hands a connection to `server` only while
 * fewer than maxConnections are open; the others wait, and after the queue
 * timeout a plain-HTTP one gets 503 + Retry-After (a TLS one is closed).
 */
/**
 * After an answer that ends the connection (our side ended: the answer, then
 * FIN): read and drop what the client still sends until it closes, at most
 * `ms`. Closing with unread input would reset the connection, and the reset
 * can destroy the answer before the client reads it.
 */
export function readAwayThenClose(s: Socket, ms: number): void {
  s.resume();
  const t = setTimeout(() => s.destroy(), ms);
  t.unref();
  s.once('end', () => { clearTimeout(t); s.destroy(); });
  s.once('close', () => clearTimeout(t));
}

export class ConnectionGate {
  readonly gate: Gate;
  readonly front: Server;
  readonly waiting = new Set<Socket>();
  /** `shared`: the count of open connections, when worker threads share --max-connections. */
  constructor(front: Server, server: { emit(event: string, ...args: unknown[]): boolean }, limits: ResolvedLimits, tls: boolean, shared: SharedCount | null = null) {
    this.front = front;
    this.gate = new Gate(limits.maxConnections, limits.queueTimeoutMs, shared);
    // node:http starts its connection tracking (header/request timeouts, closeIdleConnections) on
    // 'listening'; the inner server never listens itself, so it hears it from the front.
    front.on('listening', () => server.emit('listening'));
    front.on('connection', (s: Socket) => {
      this.waiting.add(s);
      s.on('error', () => {});
      this.gate.enter(() => {
        this.waiting.delete(s);
        if (s.destroyed) { this.gate.leave(); return; }
        s.once('close', () => this.gate.leave());
        server.emit('connection', s);
        s.resume();
      }, () => {
        this.waiting.delete(s);
        if (s.destroyed) return;
        if (tls) { s.destroy(); return; }
        const body = 'Service Unavailable: too many connections\n';
        s.end(`HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
        readAwayThenClose(s, 5000); // it was accepted paused
      });
    });
  }
  /** Stop accepting; connections still waiting are closed. */
  close(): void {
    this.front.close();
    this.gate.close();
    for (const s of this.waiting) s.destroy();
  }
}

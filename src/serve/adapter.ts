// The serve machinery's view of "a component instance that can handle HTTP
// requests". The pool (pool.ts) owns instances and hands each request to the
// instance's adapter; the front ends (node:http listener, web Request/Response
// handler) only speak these shapes.
//
// Implementations:
//   p3 wasi:http/handler@0.3.x       src/serve/p3-adapter.ts   (H3)
//   p2 wasi:http/incoming-handler    src/wasi/p2/http-serve.ts (H4), wrapped by
//                                    src/serve/p2-adapter.ts
//
// Contract for `handle`:
//  - `response` resolves with the guest's response once the guest returned
//    it (p3) / set it (p2); it rejects (→ the caller answers 500) when the
//    guest returned an error-code, returned without a response, or trapped.
//  - `done` settles when the guest's call (and, for p3, the task's work
//    after returning) has finished: the instance slot is free again. It
//    rejects with the trap when the guest trapped: the pool then discards the
//    instance and fails its other requests.
//  - The response body is pulled by the caller with backpressure. When the
//    caller finished writing the response (or failed to), it calls
//    `response.transmitted(null | error-code)`, which p3 turns into the
//    result of the future `response.new` returned to the guest.

import type { Fields } from '../wasi/core/http/fields.ts';
import type { ErrorCode } from '../wasi/core/http/errors.ts';
import type { Body } from '../wasi/core/http/message.ts';

/** A request as it arrived, handed to a guest. Headers are immutable and without the forbidden names. */
export interface ServeRequest {
  method: string;
  /** 'HTTP' or 'HTTPS' */
  scheme: string;
  authority: string | null;
  pathWithQuery: string;
  headers: Fields;
  body: Body;
  /** The CPU watchdog's name for this request while it waits for its response (watchdog.ts; 0 or absent: untracked). */
  watchdogId?: number;
}

export interface ServeResponse {
  status: number;
  headers: Fields;
  body: Body;
  /** Report how sending the response went (null = every byte and the trailers were flushed). */
  transmitted(error: ErrorCode | null): void;
  /**
   * The trailers by callback, for a consumer that would only `.then` them
   * (no Promise or closure made for them; use this or `body.trailers`, not
   * both): `sink.trailersCame` with the trailers or null, or
   * `sink.trailersFailed` as `body.trailers` would reject. Never synchronously.
   */
  trailersTo?(sink: TrailersSink): void;
}

/** What ServeResponse.trailersTo reports to (the front end's response writer). */
export interface TrailersSink {
  trailersCame(t: Fields | null): void;
  trailersFailed(e: unknown): void;
}

export interface HandleCall {
  response: Promise<ServeResponse>;
  done: Promise<void>;
}

/**
 * The callback face of `handle` (what `start` reports to): `settled` runs
 * once, possibly before `start` returns: with the response, or with why there
 * is none (`callFailed`: the call itself failed, e.g. a trap, as `done`
 * rejecting; otherwise an error-code or no response, with the call over).
 * It must not throw.
 */
export interface HandleSink {
  settled(response: ServeResponse | null, error: unknown, callFailed: boolean): void;
}

export interface HandlerAdapter {
  /** 'p3' for wasi:http/handler, 'p2' for wasi:http/incoming-handler. */
  readonly kind: 'p3' | 'p2';
  /** The most requests one instance may hold at once (p2 proxy: 1). */
  readonly maxConcurrent: number;
  /** Whether the guest currently asks not to get new calls (component-model backpressure). */
  backpressure?(): boolean;
  handle(request: ServeRequest, signal: AbortSignal): HandleCall;
  /** `handle` without Promises, when the adapter can (p3 callback-lifted exports). */
  start?(request: ServeRequest, signal: AbortSignal, sink: HandleSink): void;
}

/** Builds the adapter for an instance's exports, or null when it exports no handler of that kind. */
export type AdapterFactory = (exports: Record<string, any>) => HandlerAdapter | null;

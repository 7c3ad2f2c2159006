// Serving one request with a WASI 0.2 `wasi:http/incoming-handler` export.
//
// p2 semantics: the guest receives an incoming-request and a
// response-outparam; it calls `response-outparam.set` with its response (or an
// error-code), then streams the body through the outgoing-body's
// output-stream and finishes it. An instance handles one request at a time.
// The response is answered as soon as `set` is called, while the guest keeps
// writing the body. If the guest returns or traps before `set`, the answer is
// a 500 and the log line "guest never invoked response-outparam.set".

import type { RawBody } from '../core/http/client.ts';
import { HttpError, type ErrorCode } from '../core/http/errors.ts';
import type { FieldEntries } from '../core/http/fields.ts';
import { IncomingRequest, OutgoingResponse, ResponseOutparam } from './http.ts';

/** The export name prefix a p2 proxy component exports its handler under. */
export const P2_INCOMING_HANDLER = 'wasi:http/incoming-handler@0.2';

/** The `handle` function of an instance's wasi:http/incoming-handler@0.2.x export, or null. */
export function findIncomingHandler(exports: Record<string, unknown>): ((req: unknown, out: unknown) => unknown) | null {
  for (const [name, value] of Object.entries(exports)) {
    if (!name.startsWith(P2_INCOMING_HANDLER)) continue;
    const handle = (value as { handle?: unknown } | null)?.handle;
    if (typeof handle === 'function') return handle as (req: unknown, out: unknown) => unknown;
  }
  return null;
}

export class GuestHandlerError extends Error {
  override name = 'GuestHandlerError';
  /** the guest's error-code when it set one, for logs */
  readonly code: ErrorCode | null;
  constructor(message: string, code: ErrorCode | null = null) {
    super(message);
    this.code = code;
  }
}

/** A request for serveP2Request: headers and trailers as entries. */
export interface P2ServeRequest {
  method: string;
  scheme: string | null;
  authority: string | null;
  pathWithQuery: string | null;
  headers: FieldEntries;
  body: RawBody;
}

export interface P2ServeResponse {
  status: number;
  headers: FieldEntries;
  body: RawBody;
}

/**
 * Call the guest's `handle` for one request. `response` resolves once the
 * guest called `set` with `ok`; it rejects with GuestHandlerError when the
 * guest set an error-code, or returned / trapped without setting a response
 * (the caller answers 500 and logs the message). `done` settles when the
 * guest's call has returned (the instance is free again); it rejects with the
 * trap if the guest trapped.
 */
export function serveP2Request(
  handle: (req: unknown, out: unknown) => unknown,
  request: P2ServeRequest,
): { response: Promise<P2ServeResponse>; done: Promise<void> } {
  let answer!: (r: P2ServeResponse) => void;
  let refuse!: (e: unknown) => void;
  const response = new Promise<P2ServeResponse>((res, rej) => { answer = res; refuse = rej; });
  response.catch(() => {});
  let outgoing: OutgoingResponse | null = null;
  const outparam = new ResponseOutparam((r) => {
    if (r.tag === 'err') {
      refuse(new GuestHandlerError(`guest answered with error-code ${r.val.tag}`, r.val));
      return;
    }
    outgoing = r.val;
    // A body the guest never asked for is empty (taking it now makes a later body() fail).
    if (!outgoing.body) outgoing.takeBody()!.finish(undefined);
    answer({ status: outgoing.status, headers: outgoing.headers.fields.copyAll(), body: outgoing.body!.raw() });
  });
  const incoming = new IncomingRequest(request);

  const finished = (trap: unknown): void => {
    if (!outparam.used) {
      outparam.used = true;
      refuse(new GuestHandlerError(trap ? `guest never invoked response-outparam.set (it trapped: ${String((trap as Error).message ?? trap)})`
        : 'guest never invoked response-outparam.set'));
    }
    // p2 has no background work: a body not finished by now never will be.
    const b = outgoing?.body;
    if (b && !b.finished) b.fail(new HttpError({ tag: 'HTTP-response-incomplete' }));
  };

  let done: Promise<void>;
  try {
    const r = handle(incoming, outparam);
    done = Promise.resolve(r).then(() => finished(null), (e: unknown) => { finished(e ?? new Error('trap')); throw e; });
  } catch (e) {
    finished(e ?? new Error('trap'));
    done = Promise.reject(e);
  }
  done.catch(() => {});
  return { response, done };
}

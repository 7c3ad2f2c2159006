// The response body on its way from a guest to the socket, without a web
// ReadableStream or a Promise per chunk: a guest stream<u8> is read straight
// from guest memory (one array of exactly the bytes the guest wrote, which
// the socket write keeps) through callbacks that run synchronously when the
// guest is already waiting in its write. Other bodies (host iterables, e.g.
// a client response passed on) go through the same callback face.

import { takeGuestByteStream, type GuestByteReader } from '../runtime/host-streams.ts';

/** Gets one step of a body: `bytes` (possibly empty), or the end (null), or a failure (`error` set). */
export interface PullSink { pulled(bytes: Uint8Array | null, error: unknown): void }

/** A body read one chunk at a time, reported to a sink object (at most one pull outstanding; no closure per pull). */
export interface BodyPuller {
  pull(sink: PullSink): void;
  /** The consumer stops reading: the producer sees its stream dropped. */
  cancel(): void;
}

/** Bytes read from the guest at most per chunk (the guest's own write size bounds it first). */
const MAX_CHUNK = 1 << 20;
const NO_ERROR = undefined;
const END: IteratorResult<Uint8Array> = { done: true, value: undefined };

/**
 * A guest's stream<u8> response body: a BodyPuller for the node front end and
 * an AsyncIterable for every other consumer. `fail` settles a pull the guest
 * will never answer (its instance trapped).
 */
export class GuestBody implements BodyPuller, AsyncIterable<Uint8Array> {
  private readonly reader: GuestByteReader;
  private pending: PullSink | null = null;
  private failure: unknown = null;
  private done = false;
  /** Chunks may be views into a shared slab (the node front end only writes them to the socket). */
  pooled = false;
  /** Called once the body ended, failed or was cancelled (the pool stops tracking it). */
  onSettled: ((b: GuestBody) => void) | null = null;
  constructor(reader: GuestByteReader) { this.reader = reader; }

  /** The guest stream behind `stream` when it is an unread one made by the runtime, else null. */
  static from(stream: unknown): GuestBody | null {
    const r = takeGuestByteStream(stream);
    return r === null ? null : new GuestBody(r);
  }

  pull(sink: PullSink): void {
    if (this.failure !== null) { sink.pulled(null, this.failure); return; }
    if (this.done) { sink.pulled(null, NO_ERROR); return; }
    this.pending = sink;
    this.reader.take(MAX_CHUNK, this.onBytes, this.pooled);
  }

  private readonly onBytes = (bytes: Uint8Array | null): void => {
    const sink = this.pending;
    if (sink === null) return; // failed meanwhile
    this.pending = null;
    if (bytes === null) this.settle();
    sink.pulled(bytes, NO_ERROR);
  };

  cancel(): void {
    if (this.done) return;
    this.reader.cancel();
    this.pending = null;
    this.settle();
  }

  fail(e: unknown): void {
    if (this.done) return;
    this.failure = e;
    const sink = this.pending;
    this.pending = null;
    this.settle();
    sink?.pulled(null, e);
  }

  private settle(): void {
    if (this.done) return;
    this.done = true;
    const s = this.onSettled;
    this.onSettled = null;
    s?.(this);
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => new Promise<IteratorResult<Uint8Array>>((resolve, reject) => {
        this.pull({
          pulled: (bytes, error) => {
            if (error !== NO_ERROR) reject(error);
            else resolve(bytes === null ? END : { done: false, value: bytes });
          },
        });
      }),
      return: () => { this.cancel(); return Promise.resolve(END); },
    };
  }
}

/** Any body stream as a BodyPuller. */
export function bodyPuller(stream: AsyncIterable<Uint8Array>): BodyPuller {
  if (stream instanceof GuestBody) return stream;
  const it = stream[Symbol.asyncIterator]();
  return {
    pull(sink) {
      it.next().then(
        (r) => sink.pulled(r.done ? null : r.value, NO_ERROR),
        (e: unknown) => sink.pulled(null, e === undefined ? new Error('the body failed') : e),
      );
    },
    cancel() { it.return?.().catch(() => {}); },
  };
}

/** What afterThisTurn runs: `task.afterTurn(arg)` (an object and a number: no closure per call). */
export interface TurnTask { afterTurn(arg: number): void }

/**
 * Runs `task.afterTurn(arg)` after the current macrotask (one setImmediate
 * shared by every caller in the same turn, instead of one timer per response).
 */
export function afterThisTurn(task: TurnTask, arg: number): void {
  turnTasks.push(task);
  turnArgs.push(arg);
  if (!turnScheduled) { turnScheduled = true; setImmediate(runTurn); }
}
let turnTasks: TurnTask[] = [];
let turnArgs: number[] = [];
let turnScheduled = false;
function runTurn(): void {
  turnScheduled = false;
  const q = turnTasks, a = turnArgs;
  turnTasks = [];
  turnArgs = [];
  for (let i = 0; i < q.length; i++) q[i].afterTurn(a[i]);
}

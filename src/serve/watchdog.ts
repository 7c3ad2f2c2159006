// The CPU watchdog of `weir serve --workers N` (issue 10): a guest stuck in a
// loop never gives its thread back, and on V8 only another thread can stop it
// (worker.terminate() interrupts wasm code). Each worker shares one small
// Int32Array with the main thread:
//
//   BEAT     when the worker's event loop last turned (nowMs()), written at
//            least every BEAT_MS while it does; when it is --cpu-timeout old,
//            the worker is stuck (in guest code, as host code never runs that
//            long) and the main thread kills it. Written by a timer when the
//            worker is idle, and by every BEAT_EVERY-th request when it is
//            busy, which pushes the timer back: on this 2-core VM each timer
//            wake-up of a loaded server cost ~0.7 ms of CPU (it knocks the
//            server and its client out of step, so more of its writes must
//            wake a sleeping client), so a 20 ms timer cost ~0.7 µs of every
//            request's ~18;
//   KILLED   set by the main thread before it acts, so a worker that comes
//            back at that moment parks instead of racing it for the sockets;
//   CURRENT  the request whose guest code is running (the offender when the
//            worker is stuck), 0 otherwise: set around the request's first
//            call, and by the runtime whenever guest code of a task starts or
//            resumes (each task carries its request's id as its call tag:
//            runtime/task.ts), so a guest that loops after an await, in a
//            later callback, is named too;
//   slots    one per open plain-TCP connection: [id, fd, state, request, inode].
//            The socket belongs to the worker, but a file descriptor is
//            process-wide: before the kill, the main thread answers on the fd
//            of every connection whose request still waits for its response
//            head (500 for the offender, 503 + Retry-After for the others),
//            and on every idle kept-alive connection where a new request
//            already arrived unread (503), each with `Connection: close`; the
//            kill then closes the sockets. A connection between requests (the
//            last response handed to the kernel, its request read to the end:
//            state DONE; or none yet) is moved whole to another worker where
//            dup works, and otherwise a complete idempotent request that
//            arrived unread on it is run by another worker (handover.ts).
//
// Only plain-TCP HTTP/1.x connections can be answered this way (TLS and h2
// need their session state): those are reset by the kill, as are responses
// already under way and connections still in the worker's accept queue.

import { fstatSync, readSync, writeSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server, Socket } from 'node:net';
import { clearRunningTagCell, setHostCallTag, setRunningTagCell } from '../runtime/task.ts';
import type { ServeRequest, ServeResponse } from './adapter.ts';
import { HANDOVER_MAX_REQUEST, atRequestStart, handoverRequest } from './handover.ts';

export const BEAT = 0;
export const KILLED = 1;
export const CURRENT = 2;
const SLOT_BASE = 4;
const SLOT_WORDS = 5;
/** Connections tracked per worker; more are served, but reset rather than answered if the worker is killed. */
export const SLOTS = 4096;
/** The longest a live worker's event loop goes without writing BEAT. */
export const BEAT_MS = 20;
/** A busy worker writes BEAT (and pushes its timer back) once per this many requests. */
const BEAT_EVERY = 32;

/**
 * Milliseconds on the monotonic clock every thread of the process shares, as
 * an int32 that wraps (compare two with `(a - b) | 0`; good for 24 days apart).
 */
export function nowMs(): number {
  const [s, ns] = process.hrtime();
  return (s * 1000 + Math.floor(ns / 1e6)) | 0;
}

const IDLE = 0;
const WAITING = 1;
const ANSWERED = 2;
/** The request was read to its end and its response handed to the kernel: the connection is between requests. */
const DONE = 3;

export function watchdogBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer((SLOT_BASE + SLOTS * SLOT_WORDS) * 4);
}

interface Handler { handle(request: ServeRequest, signal?: AbortSignal): Promise<ServeResponse> }

/** The worker's side: the heartbeat, and the table of open connections and their requests. */
export class ConnectionTable {
  private readonly ctl: Int32Array;
  private readonly free: number[] = [];
  private nextId = 1;
  /**
   * Each tracked socket's slot. Not a property on the socket: a keyed store of
   * a new property turns a net.Socket (already past V8's fast-property limit for
   * keyed adds) into a dictionary-mode object, slowing every use of it by node.
   * Sockets live long, so a Map costs little; the entry goes with 'close'.
   */
  private readonly slotOfSocket = new Map<object, number>();
  private timer: ReturnType<typeof setInterval> | null = null;
  /** Requests until the next beat from the request path. */
  private untilBeat = BEAT_EVERY;

  constructor(buffer: SharedArrayBuffer) {
    this.ctl = new Int32Array(buffer);
    setRunningTagCell(this.ctl, CURRENT);
    for (let i = SLOTS - 1; i >= 0; i--) this.free.push(i);
  }

  /** Starts the heartbeat: once the worker listens (a warm spare stays quiet until then). */
  start(): void {
    if (this.timer) return;
    this.beat();
    this.timer = setInterval(this.beat, BEAT_MS);
    this.timer.unref();
  }

  private readonly beat = (): void => {
    this.parkIfKilled();
    Atomics.store(this.ctl, BEAT, nowMs());
  };

  /** The main thread decided to kill this worker: stay off the sockets until it does. */
  private parkIfKilled(): void {
    if (Atomics.load(this.ctl, KILLED) !== 0) Atomics.wait(this.ctl, KILLED, 1);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    clearRunningTagCell(this.ctl);
  }

  private id(): number {
    const id = this.nextId;
    this.nextId = (this.nextId % 0x7ffffffe) + 1;
    return id;
  }

  /** A plain-TCP connection the HTTP/1.x server took: tracked until it closes. */
  connection(socket: Socket): void {
    const fd = socketFd(socket);
    if (fd < 0) return;
    const slot = this.free.pop();
    if (slot === undefined) return;
    const at = SLOT_BASE + slot * SLOT_WORDS;
    const ctl = this.ctl;
    const ino = socketInode(fd);
    if (ino === null) { this.free.push(slot); return; }
    ctl[at + 1] = fd;
    ctl[at + 2] = IDLE;
    ctl[at + 3] = 0;
    ctl[at + 4] = ino;
    Atomics.store(ctl, at, this.id());
    this.slotOfSocket.set(socket, slot);
    socket.once('close', () => {
      this.slotOfSocket.delete(socket);
      Atomics.store(ctl, at, 0);
      this.free.push(slot);
    });
  }

  private slotOf(req: IncomingMessage): number {
    const slot = req.httpVersionMajor === 1 && req.socket ? this.slotOfSocket.get(req.socket) : undefined;
    return slot === undefined ? -1 : slot;
  }

  /**
   * For nodeListener: a request arrived; its connection is busy until the
   * machine settles it. Returns the id that names the request in the table
   * (0: not tracked, e.g. h2), which the listener puts on the ServeRequest.
   */
  readonly begin = (req: IncomingMessage): number => {
    if (--this.untilBeat === 0) {
      this.untilBeat = BEAT_EVERY;
      this.timer?.refresh();
      this.beat();
    } else if (this.ctl[KILLED] !== 0) {
      this.parkIfKilled();
    }
    const slot = this.slotOf(req);
    if (slot < 0) return 0;
    const at = SLOT_BASE + slot * SLOT_WORDS;
    const id = this.id();
    // plain stores: the supervisor reads them only once this thread has stopped for --cpu-timeout
    this.ctl[at + 3] = id;
    this.ctl[at + 2] = WAITING;
    return id;
  };

  /**
   * For nodeListener: the machine settled `req`, its head leaves now. Once
   * the response is handed to the kernel ('finish') and the request has been
   * read to its end, the connection is between requests again (DONE): the
   * supervisor may move it to another worker if this one gets stuck.
   */
  readonly answered = (req: IncomingMessage, res: ServerResponse): void => {
    const slot = this.slotOf(req);
    if (slot < 0) return;
    const at = SLOT_BASE + slot * SLOT_WORDS;
    const ctl = this.ctl;
    ctl[at + 2] = ANSWERED;
    const id = ctl[at + 3];
    // Not if a later request on the connection (pipelined) has begun meanwhile, or the slot went to another.
    const done = (): void => { if (ctl[at + 3] === id && ctl[at + 2] === ANSWERED) ctl[at + 2] = DONE; };
    res.once('finish', () => {
      if (req.complete) done();
      else req.once('end', done); // node reads away the body the guest left
    });
  };

  /** Wraps the machine (innermost): the request's id tags the guest call (and names it in CURRENT meanwhile). */
  inner(machine: Handler): Handler {
    return {
      handle: (request, signal) => {
        const id = request.watchdogId;
        if (!id) return machine.handle(request, signal);
        // Tasks the call creates carry `id`; CURRENT names it also while no task runs yet (instantiation).
        setHostCallTag(id);
        try {
          return machine.handle(request, signal);
        } finally {
          setHostCallTag(0);
        }
      },
    };
  }
}

/** The socket's inode (low 31 bits), which tells it apart from a later socket given the same fd number. */
export function socketInode(fd: number): number | null {
  try {
    return Number(fstatSync(fd, { bigint: true }).ino & 0x7fffffffn);
  } catch {
    return null;
  }
}

/** The descriptor under a connection or a listening server (Node keeps it on the internal handle), -1 if none. */
export function socketFd(socket: Socket | Server): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } } | null)?._handle?.fd;
  return typeof fd === 'number' && fd > 2 ? fd : -1;
}

/** A request read off a stopped worker's connection, for another worker to answer (handover.ts). */
export interface Stranded { fd: number; ino: number; request: Buffer }

/** What the main thread did for the connections of a killed worker. */
export interface StrandedAnswers { offender: boolean; answered503: number; reset: number; handover: Stranded[]; moved: number }

/**
 * Moves a stopped worker's connection (its fd, checked to be the socket with
 * inode `ino`) to another worker (handover.ts ConnectionMover); false if it
 * could not, and the connection was left as it was.
 */
export type MoveConnection = (fd: number, ino: number) => boolean;

const busy = () => response(503, 'Service Unavailable', 'the worker serving this connection was stopped (a request ran past --cpu-timeout); retry\n', { 'retry-after': '1' });

/**
 * The main thread's side, called with the worker stuck: marks it killed and
 * answers what can be answered on its connections. With `move`, a connection
 * between requests (the last response handed to the kernel, or none yet)
 * whose unread input is nothing or the start of a request goes to another
 * worker whole, unanswered (handover.ts). Otherwise, a complete idempotent
 * request that arrived unread is returned in `handover` (when `handover` is
 * true), unanswered: the caller has another worker run it and answers with
 * answerHandedOver. The caller terminates the worker after that (which closes
 * the sockets it still has).
 */
export function answerStranded(buffer: SharedArrayBuffer, cpuTimeoutMs: number, handover = false, move: MoveConnection | null = null): StrandedAnswers {
  const ctl = new Int32Array(buffer);
  Atomics.store(ctl, KILLED, 1);
  const current = Atomics.load(ctl, CURRENT);
  const out: StrandedAnswers = { offender: false, answered503: 0, reset: 0, handover: [], moved: 0 };
  for (let slot = 0; slot < SLOTS; slot++) {
    const at = SLOT_BASE + slot * SLOT_WORDS;
    if (Atomics.load(ctl, at) === 0) continue;
    const fd = ctl[at + 1];
    const state = ctl[at + 2];
    const ino = ctl[at + 4];
    // The socket may have closed in the worker's last turn (its fd is closed before 'close' clears the
    // slot) and the number been reused by another connection: only write to the socket recorded here.
    if (socketInode(fd) !== ino) continue;
    if (move && (state === DONE || state === IDLE) && atRequestStart(fd) && move(fd, ino)) { out.moved++; continue; }
    if (state === ANSWERED || state === DONE || state === IDLE) {
      // ANSWERED/DONE: a kept-alive connection whose last response was answered, IDLE: accepted with no
      // request seen. What arrived on it the worker never read: one whole request another worker may run.
      const unread = drain(fd, handover);
      const request = unread.bytes && handoverRequest(unread.bytes);
      if (request) { out.handover.push({ fd, ino, request }); continue; }
      if (state !== IDLE) {
        // Answer only if a new request arrived (clients that do not pipeline send one only after the whole
        // response). Otherwise its response may still be under way: the close cuts it short.
        if (unread.any && answerOnFd(fd, busy())) out.answered503++;
        else out.reset++;
        continue;
      }
      // IDLE: nothing can be under way, so it is answered like a waiting request whether or not its
      // request has arrived yet (HTTP lets a server answer before it reads the request): a client that
      // connected just before the stall gets 503 + Retry-After, not a reset when the close comes.
    }
    // WAITING (the worker read its request), or IDLE as above. An IDLE request id is 0: never the offender.
    const offender = current !== 0 && ctl[at + 3] === current;
    const ok = answerOnFd(fd, offender
      ? response(500, 'Internal Server Error', `the component ran longer than --cpu-timeout (${cpuTimeoutMs} ms) without yielding; its worker was stopped\n`, {})
      : busy());
    drain(fd, false);
    if (!ok) out.reset++;
    else if (offender) out.offender = true;
    else out.answered503++;
  }
  return out;
}

/**
 * Answers a handed-over request on its stopped worker's connection: the
 * response another worker produced, or 503 + Retry-After (`response` null).
 * Writes until `deadline` (Date.now()) if the socket's buffer is full; false
 * if it could not write it all (the close then cuts the answer short).
 */
export async function answerHandedOver(s: Stranded, response: Buffer | null, deadline: number): Promise<boolean> {
  if (socketInode(s.fd) !== s.ino) return false;
  const bytes = response ?? busy();
  let off = 0;
  for (;;) {
    try {
      while (off < bytes.length) off += writeSync(s.fd, bytes, off);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() >= deadline) return false;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  drain(s.fd, false);
  return true;
}

function response(status: number, reason: string, body: string, extra: Record<string, string>): Buffer {
  const head = [`HTTP/1.1 ${status} ${reason}`, 'content-type: text/plain; charset=utf-8', `content-length: ${Buffer.byteLength(body)}`, 'connection: close'];
  for (const [k, v] of Object.entries(extra)) head.push(`${k}: ${v}`);
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n${body}`);
}

/** Writes `bytes` to a non-blocking socket fd; false if it could not. */
function answerOnFd(fd: number, bytes: Buffer): boolean {
  try {
    let off = 0;
    for (let tries = 0; off < bytes.length && tries < 8; tries++) off += writeSync(fd, bytes, off);
    return off === bytes.length;
  } catch {
    return false;
  }
}

/**
 * Reads away what the client already sent (closing a socket with unread
 * input resets it, and the reset can destroy the answer before the client
 * reads it). `any`: there was something; `bytes` (with `keep`): all of it,
 * or null past HANDOVER_MAX_REQUEST.
 */
function drain(fd: number, keep: boolean): { any: boolean; bytes: Buffer | null } {
  // Fresh each call: reusing one (stop 20) took away the supervisor's only steady allocation, V8 then
  // collected its heap (which holds every stopped worker's JS side) too rarely, and the soak's RSS climbed
  // ~10%. The supervisor now collects after each worker exits (serve-workers.ts collectSoon) as well.
  const sink = Buffer.allocUnsafe(64 * 1024);
  const kept: Buffer[] = [];
  let size = 0;
  try {
    for (let i = 0; i < 64; i++) {
      const n = readSync(fd, sink, 0, sink.length, null);
      if (n <= 0) break;
      size += n;
      if (keep && size <= HANDOVER_MAX_REQUEST) kept.push(Buffer.from(sink.subarray(0, n)));
    }
  } catch {
    // EAGAIN: nothing (more) to read
  }
  return { any: size > 0, bytes: keep && size > 0 && size <= HANDOVER_MAX_REQUEST ? Buffer.concat(kept) : null };
}

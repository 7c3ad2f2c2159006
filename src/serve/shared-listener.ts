// One listening socket for every worker of `weir serve --workers N`.
//
// With a SO_REUSEPORT listener per worker the kernel hashes each new
// connection to one of them, and a worker stuck in guest code leaves the
// connections hashed to it in its own accept queue until the watchdog stops
// it: they wait up to --cpu-timeout, and are reset when its socket closes
// unless net.ipv4.tcp_migrate_req=1 (off by default). Even with it some were
// reset (soak: 13 per 400,000 requests; each connected just after one worker
// was stopped, sat ~340 ms with its request unread, and got a bare RST as the
// other worker was stopped next).
//
// Here the supervisor listens once and keeps the socket as a descriptor of its
// own (`dup`, through node:ffi: Node has no call for it). Each worker, as it
// starts to listen, takes a dup of that descriptor and listens on it, so every
// worker accepts from the one queue: a stuck worker accepts nothing and the
// others take every connection at once; stopping it closes only its
// descriptor, never the queue. Where dup is not available, the workers fall
// back to SO_REUSEPORT listeners (serve-workers.ts).
//
// A stopped worker is disarmed before it is terminated: its descriptor is
// replaced (dup2) by one of a listening socket nobody can reach. Terminating
// a worker runs its event loop once more to close its handles, and in that
// pass its listener accepted connections from the shared queue (clients that
// had just been answered reconnect at once) and closed them unanswered: 5 of
// the 10 resets in a 400,000-request soak. The number stays the worker's, so
// it is closed once, by the worker, as before.
//
// The descriptor is shared through two words, [lock, fd]: a worker dups it
// under the lock, and the supervisor closes it under the same lock (fd = -1
// after), so no worker can dup a number that was closed and reused. Each
// worker's own descriptor is in its `held` words (HELD_LISTENER), set once it
// listens and cleared (under the lock) before it closes it.

import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { libc } from './libc.ts';
import { socketFd, socketInode } from './watchdog.ts';
import type { MovedConnections } from './handover.ts';

const LOCK = 0;
const FD = 1;
/** Index in a worker's `held` words (serve-workers.ts) of its descriptor for the shared socket, -1 if none. */
export const HELD_LISTENER = 4;

function lock(words: Int32Array): void {
  // Held for one dup, dup2 or close: a few microseconds.
  while (Atomics.compareExchange(words, LOCK, 0, 1) !== 0) Atomics.wait(words, LOCK, 1, 1);
}

function unlock(words: Int32Array): void {
  Atomics.store(words, LOCK, 0);
  Atomics.notify(words, LOCK, 1);
}

/** listen(), then a dup of the server's descriptor, then close(): 'listening' comes on the next tick, before the loop polls the socket, so the server itself accepts nothing. */
function listenAndKeep(server: Server, listen: (cb: () => void) => void): Promise<{ fd: number; port: number }> {
  const c = libc();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    listen(() => {
      const a = server.address();
      const port = a && typeof a === 'object' ? a.port : 0;
      const fd = socketFd(server);
      const own = c && fd >= 0 ? c.dup(fd) : -1;
      server.close(() => resolve({ fd: own, port }));
    });
  });
}

export class SharedListener {
  /** [lock, fd]: what the workers get. */
  readonly words: SharedArrayBuffer;
  readonly port: number;
  /** the socket's inode: a stopped worker's descriptor is replaced only while it is still this socket */
  private readonly ino: number | null;
  /** a listening Unix socket whose path is gone: what a stopped worker's descriptor becomes (-1: none) */
  private unreachable: number;

  private constructor(port: number, fd: number, unreachable: number) {
    this.port = port;
    this.words = new SharedArrayBuffer(8);
    new Int32Array(this.words)[FD] = fd;
    this.ino = socketInode(fd);
    this.unreachable = unreachable;
  }

  /**
   * Listens on host:port (exclusively: a port another process holds, even
   * with SO_REUSEPORT, is refused; port 0 picks a free one). Null where the
   * descriptor cannot be shared (no dup): the caller listens another way.
   * Rejects with the listen error (EADDRINUSE, EACCES…).
   */
  static async open(host: string, port: number): Promise<SharedListener | null> {
    if (!libc()) return null;
    const server = createServer();
    const { fd, port: bound } = await listenAndKeep(server, (cb) => server.listen({ port, host, exclusive: true }, cb));
    if (fd < 0) return null;
    return new SharedListener(bound, fd, await unreachableListener());
  }

  /**
   * A stopped worker (`held`: its words) accepts nothing more: its descriptor
   * for the socket becomes one for a socket no one can connect to, whose
   * accept finds nothing (EAGAIN), so its event loop, run once more as it is
   * terminated, takes no connection from the shared queue.
   */
  disarm(held: Int32Array): void {
    const words = new Int32Array(this.words);
    lock(words);
    const fd = held[HELD_LISTENER];
    held[HELD_LISTENER] = -1;
    if (fd >= 0 && this.unreachable >= 0 && this.ino !== null && socketInode(fd) === this.ino) libc()!.dup2(this.unreachable, fd);
    unlock(words);
  }

  /**
   * Moves a stopped worker's connection `fd` (while it is still the socket
   * `ino`) to the workers: a dup of it goes in `mailbox` (handover.ts), and the
   * worker's number becomes one of the unreachable socket, as for its
   * listener, so its last pass of the event loop at the termination reads
   * nothing of the connection, and its close closes only that number. False,
   * with nothing changed, where that cannot be done.
   */
  moveConnection(fd: number, ino: number, mailbox: MovedConnections): boolean {
    const c = libc();
    if (!c || this.unreachable < 0 || socketInode(fd) !== ino) return false;
    const dup = c.dup(fd);
    if (dup < 0) return false;
    if (!mailbox.put(dup)) { c.close(dup); return false; }
    c.dup2(this.unreachable, fd);
    return true;
  }

  /** Stop listening: workers still listening keep their descriptors until they close them. */
  close(): void {
    const words = new Int32Array(this.words);
    lock(words);
    const fd = words[FD];
    words[FD] = -1;
    if (fd >= 0) libc()!.close(fd);
    unlock(words);
  }

  /** close(), and the unreachable socket too: once no worker is left to disarm. */
  dispose(): void {
    this.close();
    const words = new Int32Array(this.words);
    lock(words);
    if (this.unreachable >= 0) libc()!.close(this.unreachable);
    this.unreachable = -1;
    unlock(words);
  }
}

/**
 * A listening Unix socket in a fresh directory, removed once it listens; where
 * the temporary directory cannot be written, on Linux, one with a random
 * abstract name (no file; a client that guessed it would wait unanswered).
 * -1 if neither can be had (then stopped workers are not disarmed).
 */
async function unreachableListener(): Promise<number> {
  let dir: string | null = null;
  try {
    dir = mkdtempSync(join(tmpdir(), 'weir-'));
    const server = createServer();
    const path = join(dir, 'x.sock');
    return (await listenAndKeep(server, (cb) => server.listen(path, cb))).fd; // closing the server removes the path
  } catch {
    if (process.platform !== 'linux') return -1;
    try {
      const server = createServer();
      const name = `\0weir-unreachable-${process.pid}-${process.hrtime.bigint().toString(36)}-${Math.random().toString(36).slice(2)}`;
      return (await listenAndKeep(server, (cb) => server.listen(name, cb))).fd;
    } catch {
      return -1;
    }
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** In a worker: a descriptor of its own for the shared socket (to `listen({ fd })` on); -1 once it is closed, -2 without dup here. */
export function takeSharedListener(buffer: SharedArrayBuffer): number {
  const c = libc();
  if (!c) return -2;
  const words = new Int32Array(buffer);
  lock(words);
  const fd = words[FD];
  const mine = fd >= 0 ? c.dup(fd) : -1;
  unlock(words);
  return mine;
}

/** In a worker: it listens on `fd` (the supervisor may disarm it from now on), or (-1) is about to close it. */
export function noteListening(buffer: SharedArrayBuffer, held: Int32Array, fd: number): void {
  const words = new Int32Array(buffer);
  lock(words);
  held[HELD_LISTENER] = fd;
  unlock(words);
}

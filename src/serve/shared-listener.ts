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
// The descriptor is shared through two words, [lock, fd]: a worker dups it
// under the lock, and the supervisor closes it under the same lock (fd = -1
// after), so no worker can dup a number that was closed and reused.

import { createServer } from 'node:net';
import { libc } from './libc.ts';

const LOCK = 0;
const FD = 1;

function lock(words: Int32Array): void {
  // Held for one dup or close: a few microseconds.
  while (Atomics.compareExchange(words, LOCK, 0, 1) !== 0) Atomics.wait(words, LOCK, 1, 1);
}

function unlock(words: Int32Array): void {
  Atomics.store(words, LOCK, 0);
  Atomics.notify(words, LOCK, 1);
}

export class SharedListener {
  /** [lock, fd]: what the workers get. */
  readonly words: SharedArrayBuffer;
  readonly port: number;

  private constructor(port: number, fd: number) {
    this.port = port;
    this.words = new SharedArrayBuffer(8);
    new Int32Array(this.words)[FD] = fd;
  }

  /**
   * Listens on host:port (exclusively: a port another process holds, even
   * with SO_REUSEPORT, is refused; port 0 picks a free one). Null where the
   * descriptor cannot be shared (no dup): the caller listens another way.
   * Rejects with the listen error (EADDRINUSE, EACCES…).
   */
  static open(host: string, port: number): Promise<SharedListener | null> {
    const c = libc();
    return new Promise((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen({ port, host, exclusive: true }, () => {
        // 'listening' comes on the next tick after listen(2): the event loop has not polled the
        // socket, so this server accepts nothing before it is closed below.
        const a = server.address();
        const p = a && typeof a === 'object' ? a.port : port;
        const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
        const own = c && typeof fd === 'number' && fd >= 0 ? c.dup(fd) : -1;
        server.close(() => resolve(own >= 0 ? new SharedListener(p, own) : null));
      });
    });
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
}

/** In a worker: a descriptor of its own for the shared socket (to `listen({ fd })` on), or -1 once it is closed or without dup. */
export function takeSharedListener(buffer: SharedArrayBuffer): number {
  const c = libc();
  if (!c) return -1;
  const words = new Int32Array(buffer);
  lock(words);
  const fd = words[FD];
  const mine = fd >= 0 ? c.dup(fd) : -1;
  unlock(words);
  return mine;
}

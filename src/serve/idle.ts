// `--idle-timeout` for `weir serve`'s plain-HTTP server: a kept-alive
// connection with no request is closed after the timeout. node:http's own
// keepAliveTimeout re-arms a socket timer after every response (a bound
// function and a Timeout per request), which cost ~2% of a hello-world
// request (paired wrk runs, --idle-timeout 0 vs 5s: 1.020×). Instead one
// interval looks at every connection: a connection counts as active when it
// moved bytes since the last look or has a response outstanding, and is
// closed once it has not been active for the timeout plus node's grace of
// 1 s (keepAliveTimeoutBuffer: a client trusting `Keep-Alive: timeout=N` must
// not meet a closed socket), up to a quarter timeout later, never sooner. As
// with node's timer, the clock starts with the first response: before it,
// `--header-timeout` governs the connection. (The TLS server keeps node's
// timer: an h2 session is not a socket with one response at a time.)

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

interface Seen { read: number; written: number; at: number }

/** node's keepAliveTimeoutBuffer (its default): how long past the advertised timeout a connection stays open. */
const GRACE_MS = 1000;

export class IdleSweep {
  readonly ms: number;
  private readonly seen = new Map<Socket, Seen>();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(ms: number) {
    this.ms = ms;
    this.timer = setInterval(() => this.sweep(), Math.min(1000, Math.max(25, Math.floor(ms / 4))));
    this.timer.unref();
  }

  /** Track a connection the server took (until it closes). */
  add(socket: Socket): void {
    this.seen.set(socket, { read: socket.bytesRead, written: socket.bytesWritten, at: performance.now() });
    socket.once('close', () => this.seen.delete(socket));
  }

  /** Wraps the server's request listener so that responses carry node's `Keep-Alive: timeout=N` hint. */
  hinting(listener: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
    const ms = this.ms;
    return (req, res) => {
      // node writes the hint from this field (set from server.keepAliveTimeout, which is 0 here);
      // were it gone in some node, responses would only lack the hint.
      (res as unknown as { _keepAliveTimeout: number })._keepAliveTimeout = ms;
      listener(req, res);
    };
  }

  /** node's server options with its own keep-alive timer off (this sweep does that job). */
  static serverOptions<T extends Record<string, unknown>>(options: T): T {
    return { ...options, keepAliveTimeout: 0 };
  }

  close(): void { clearInterval(this.timer); }

  private sweep(): void {
    const now = performance.now();
    for (const [s, seen] of this.seen) {
      const read = s.bytesRead;
      const written = s.bytesWritten;
      if (read !== seen.read || written !== seen.written || written === 0 || responding(s)) {
        seen.read = read;
        seen.written = written;
        seen.at = now;
      } else if (now - seen.at >= this.ms + GRACE_MS) {
        s.destroy();
      }
    }
  }
}

/** A response is outstanding on the connection (node's closeIdleConnections asks the same field). */
function responding(s: Socket): boolean {
  const res = (s as unknown as { _httpMessage?: { writableFinished?: boolean } | null })._httpMessage;
  return res != null && res.writableFinished !== true;
}

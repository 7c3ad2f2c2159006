// wasi:sockets@0.3 (types, ip-name-lookup) over the sockets core. This face
// only converts values and waiting styles: listen's stream<tcp-socket> and
// receive's stream<u8> are AsyncIterables pulled when the guest reads (so a
// socket is never read faster than the guest consumes it), send's stream<u8>
// is a ReadableStream pumped one chunk at a time with the socket's
// backpressure. Every check lives in the core (src/wasi/core/sockets/).

import { HostResource } from '../../runtime/resources.ts';
import type { IpAddressFamily, IpSocketAddress } from '../core/sockets/address.ts';
import { lookupErrorCode, toSocketError, type SocketErrorCode } from '../core/sockets/errors.ts';
import type { Network } from '../core/sockets/network.ts';
import { TcpSocket } from '../core/sockets/tcp.ts';
import { UdpSocket } from '../core/sockets/udp.ts';
import { err, ok, type Result } from '../wit-values.ts';

type P3SocketError = { tag: Exclude<SocketErrorCode, 'other'> } | { tag: 'other'; val: string | undefined };

const code = (c: SocketErrorCode): P3SocketError => (c === 'other' ? { tag: 'other', val: undefined } : { tag: c });
const fromError = (e: unknown): { tag: 'err'; val: P3SocketError } => err(code(toSocketError(e).code));

/** Runs a core call; its failure (any error: the guest never sees a JS exception) becomes err(error-code). */
function res<T>(f: () => T): Result<T, P3SocketError> {
  try {
    return ok(f());
  } catch (e) {
    return fromError(e);
  }
}

async function resAsync<T>(f: () => Promise<T>): Promise<Result<T, P3SocketError>> {
  try {
    return ok(await f());
  } catch (e) {
    return fromError(e);
  }
}

/** Largest chunk handed to the guest from one read. */
const RECV_CHUNK = 1 << 20;

const END: IteratorResult<never> = { done: true, value: undefined };

/** listen's perpetual stream<tcp-socket>: accepted connections, taken as the guest reads. */
function acceptStream(listener: TcpSocket): AsyncIterable<TcpSocket> {
  listener.retain(); // the stream keeps the listener open after its handle is dropped
  let open = true;
  const close = () => { if (open) { open = false; listener.release(); } };
  const iterator: AsyncIterator<TcpSocket> = {
    async next(): Promise<IteratorResult<TcpSocket>> {
      while (open) {
        let s: TcpSocket | null;
        try { s = listener.accept(); } catch { close(); break; }
        if (s) return { done: false, value: s };
        await listener.whenAcceptable();
        if (listener.state !== 'listening') { close(); break; }
      }
      return END;
    },
    async return(): Promise<IteratorResult<TcpSocket>> { close(); return END; },
  };
  return { [Symbol.asyncIterator]: () => iterator };
}

/** receive: the stream<u8> and the future that settles when it ends. */
function receiveStream(s: TcpSocket): [AsyncIterable<Uint8Array>, Promise<Result<undefined, P3SocketError>>] {
  s.retain();
  let settle!: (r: Result<undefined, P3SocketError>) => void;
  const done = new Promise<Result<undefined, P3SocketError>>((r) => { settle = r; });
  let open = true;
  const finish = (c: SocketErrorCode | null) => {
    if (!open) return;
    open = false;
    settle(c === null ? ok(undefined) : err(code(c)));
    s.release();
  };
  const iterator: AsyncIterator<Uint8Array> = {
    async next(): Promise<IteratorResult<Uint8Array>> {
      if (!open) return END;
      try {
        const b = await s.readAsync(RECV_CHUNK);
        if (b !== null) return { done: false, value: b };
        finish(s.receiveError());
      } catch (e) {
        finish(toSocketError(e).code);
      }
      return END;
    },
    async return(): Promise<IteratorResult<Uint8Array>> {
      // The guest dropped the stream: SHUT_RD, and the future is ok.
      if (open) s.shutdownReceive();
      finish(null);
      return END;
    },
  };
  return [{ [Symbol.asyncIterator]: () => iterator }, done];
}

/** send: pumps the guest's stream into the socket; FIN when the guest ends it. */
async function sendStream(s: TcpSocket, data: ReadableStream<Uint8Array>): Promise<Result<undefined, P3SocketError>> {
  s.retain();
  const reader = data.getReader();
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      if (r.value.length > 0) await s.write(r.value);
    }
    await s.shutdownSend();
    return ok(undefined);
  } catch (e) {
    reader.cancel().catch(() => {});
    return fromError(e);
  } finally {
    reader.releaseLock();
    s.release();
  }
}

export function socketsImports(network: Network, version: string): Record<string, Record<string, unknown>> {
  const tcpSocket = new HostResource('tcp-socket', { drop: (s: TcpSocket) => s.release() });
  const udpSocket = new HostResource('udp-socket', { drop: (s: UdpSocket) => s.release() });
  const types: Record<string, unknown> = {
    'tcp-socket': tcpSocket,
    'udp-socket': udpSocket,

    '[static]tcp-socket.create': (family: IpAddressFamily) => res(() => TcpSocket.create(network, family)),
    '[method]tcp-socket.bind': (s: TcpSocket, a: IpSocketAddress) => res(() => s.bind(a)),
    '[method]tcp-socket.connect': function (this: { signal?: AbortSignal } | undefined, s: TcpSocket, a: IpSocketAddress) {
      const signal = this?.signal;
      signal?.addEventListener('abort', () => { if (s.state === 'connecting') s.destroy(); }, { once: true });
      return resAsync(() => s.connect(a));
    },
    '[method]tcp-socket.listen': (s: TcpSocket) => res(() => { s.listen(); return acceptStream(s); }),
    '[method]tcp-socket.send': (s: TcpSocket, data: ReadableStream<Uint8Array>) => {
      if (s.sendStarted || s.state !== 'connected') {
        data.cancel().catch(() => {});
        return Promise.resolve(err(code('invalid-state')));
      }
      s.sendStarted = true;
      return sendStream(s, data);
    },
    '[method]tcp-socket.receive': (s: TcpSocket) => {
      if (s.receiveStarted || s.state !== 'connected') return [[], Promise.resolve(err(code('invalid-state')))];
      s.receiveStarted = true;
      return receiveStream(s);
    },
    '[method]tcp-socket.get-local-address': (s: TcpSocket) => res(() => s.localAddress()),
    '[method]tcp-socket.get-remote-address': (s: TcpSocket) => res(() => s.remoteAddress()),
    '[method]tcp-socket.get-is-listening': (s: TcpSocket) => s.isListening,
    '[method]tcp-socket.get-address-family': (s: TcpSocket) => s.family,
    '[method]tcp-socket.set-listen-backlog-size': (s: TcpSocket, n: bigint) => res(() => s.setListenBacklogSize(n)),
    '[method]tcp-socket.get-keep-alive-enabled': (s: TcpSocket) => ok(s.options.keepAliveEnabled),
    '[method]tcp-socket.set-keep-alive-enabled': (s: TcpSocket, v: boolean) => res(() => s.setKeepAliveEnabled(v)),
    '[method]tcp-socket.get-keep-alive-idle-time': (s: TcpSocket) => ok(s.options.keepAliveIdleTime),
    '[method]tcp-socket.set-keep-alive-idle-time': (s: TcpSocket, v: bigint) => res(() => s.setKeepAliveIdleTime(v)),
    '[method]tcp-socket.get-keep-alive-interval': (s: TcpSocket) => ok(s.options.keepAliveInterval),
    '[method]tcp-socket.set-keep-alive-interval': (s: TcpSocket, v: bigint) => res(() => s.setKeepAliveInterval(v)),
    '[method]tcp-socket.get-keep-alive-count': (s: TcpSocket) => ok(s.options.keepAliveCount),
    '[method]tcp-socket.set-keep-alive-count': (s: TcpSocket, v: number) => res(() => s.setKeepAliveCount(v)),
    '[method]tcp-socket.get-hop-limit': (s: TcpSocket) => ok(s.options.hopLimit),
    '[method]tcp-socket.set-hop-limit': (s: TcpSocket, v: number) => res(() => s.setHopLimit(v)),
    '[method]tcp-socket.get-receive-buffer-size': (s: TcpSocket) => ok(s.options.receiveBufferSize),
    '[method]tcp-socket.set-receive-buffer-size': (s: TcpSocket, v: bigint) => res(() => s.setReceiveBufferSize(v)),
    '[method]tcp-socket.get-send-buffer-size': (s: TcpSocket) => ok(s.options.sendBufferSize),
    '[method]tcp-socket.set-send-buffer-size': (s: TcpSocket, v: bigint) => res(() => s.setSendBufferSize(v)),

    '[static]udp-socket.create': (family: IpAddressFamily) => res(() => UdpSocket.create(network, family)),
    '[method]udp-socket.bind': (s: UdpSocket, a: IpSocketAddress) => res(() => s.bind(a)),
    '[method]udp-socket.connect': (s: UdpSocket, a: IpSocketAddress) => res(() => s.connect(a)),
    '[method]udp-socket.disconnect': (s: UdpSocket) => res(() => s.disconnect()),
    '[method]udp-socket.send': (s: UdpSocket, data: Uint8Array, remote: IpSocketAddress | undefined) =>
      resAsync(() => s.send(data, remote)),
    '[method]udp-socket.receive': function (this: { signal?: AbortSignal } | undefined, s: UdpSocket) {
      return resAsync(async () => { const d = await s.receive(this?.signal); return [d.data, d.remoteAddress]; });
    },
    '[method]udp-socket.get-local-address': (s: UdpSocket) => res(() => s.localAddress()),
    '[method]udp-socket.get-remote-address': (s: UdpSocket) => res(() => s.remoteAddress()),
    '[method]udp-socket.get-address-family': (s: UdpSocket) => s.family,
    '[method]udp-socket.get-unicast-hop-limit': (s: UdpSocket) => ok(s.options.unicastHopLimit),
    '[method]udp-socket.set-unicast-hop-limit': (s: UdpSocket, v: number) => res(() => s.setUnicastHopLimit(v)),
    '[method]udp-socket.get-receive-buffer-size': (s: UdpSocket) => ok(s.options.receiveBufferSize),
    '[method]udp-socket.set-receive-buffer-size': (s: UdpSocket, v: bigint) => res(() => s.setReceiveBufferSize(v)),
    '[method]udp-socket.get-send-buffer-size': (s: UdpSocket) => ok(s.options.sendBufferSize),
    '[method]udp-socket.set-send-buffer-size': (s: UdpSocket, v: bigint) => res(() => s.setSendBufferSize(v)),
  };
  return {
    [`wasi:sockets/types@${version}`]: types,
    [`wasi:sockets/ip-name-lookup@${version}`]: {
      'resolve-addresses': async (name: string) => {
        try {
          return ok(await network.resolveAddresses(name));
        } catch (e) {
          const c = lookupErrorCode(e);
          return err(c === 'other' ? { tag: 'other', val: undefined } : { tag: c });
        }
      },
    },
  };
}

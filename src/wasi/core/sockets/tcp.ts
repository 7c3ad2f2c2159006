// The TCP socket of the sockets core, shared by the wasi:sockets 0.2 and 0.3
// faces. It implements the state machine of the spec
// (TcpSocketOperationalSemantics.md): unbound → bound → listening |
// connecting → connected | closed; a call in the wrong state throws
// SocketError('invalid-state') and leaves the state unchanged. Every guest
// argument is validated first (invalid-argument), then the policy is asked
// (access-denied), and only then is an OS socket opened: with no grant no OS
// socket ever exists.
//
// Node mapping: bind = net.BoundSocket (synchronous; EADDRINUSE surfaces at
// bind, even for ports held by other processes; a bound socket that does not
// listen refuses connections); listen = net.Server adopting the BoundSocket;
// connect = net.Socket adopting it (or an unbound net.Socket). Data moves on
// demand: the net.Socket stays paused and is read only when a face asks, so
// Node buffers at most READ_AHEAD bytes ahead of the guest; writes report
// backpressure through write()'s Promise.
//
// Non-blocking surface (for 0.2 pollables) and Promise surface (for 0.3):
//   read(max) → bytes | null (end) | undefined (nothing yet)   whenReadable()
//   writeCapacity(), writeNow(bytes)                             whenWritable(), whenFlushed()
//   accept() → TcpSocket | null                                  whenAcceptable()
// plus readAsync(max), write(bytes), shutdownSend() (FIN after flushing),
// shutdownReceive() (stop delivering; discard), and the lifetime refcount
// (retain/release: the handle and every stream a face hands out hold one).

import type { BoundSocket, Server, Socket } from 'node:net';
import {
  canonicalIp, fromNode, ipOf, ipToString, isIpv4Compatible, isIpv4Mapped, isMulticastOrBroadcast, isUnspecified,
  isWellFormed, nodeHost, wildcard, type IpAddressFamily, type IpSocketAddress,
} from './address.ts';
import { SocketError, toSocketError, type SocketErrorCode } from './errors.ts';
import { bufferSize, hopLimit, keepAliveCount, keepAliveDuration, TcpOptions } from './options.ts';
import type { Network } from './network.ts';

// node:net is loaded on first use: a plain `weir run` must not pay for it.
const nodeNet = (): typeof import('node:net') => process.getBuiltinModule('node:net');

export type TcpState = 'unbound' | 'bound' | 'listening' | 'connecting' | 'connected' | 'closed';

/** How far Node may read a connection ahead of the guest. */
export const READ_AHEAD = 256 << 10;
/** How much written data Node may hold before write() waits for it to drain. */
export const WRITE_BUFFER = 256 << 10;
/**
 * Accepted connections waiting for the guest, including those whose peer is
 * still being checked (each holds an fd while an embedder callback thinks);
 * beyond this, new ones are reset.
 */
export const ACCEPT_QUEUE = 256;

const fail = (code: SocketErrorCode): never => { throw new SocketError(code); };

/** The spec's invalid-argument checks for an address given to bind or connect. */
function checkAddress(sa: IpSocketAddress, family: IpAddressFamily, remote: boolean): void {
  if (!isWellFormed(sa) || sa.tag !== family) fail('invalid-argument');
  const ip = ipOf(sa);
  if (isMulticastOrBroadcast(ip) || isIpv4Mapped(ip) || isIpv4Compatible(ip)) fail('invalid-argument');
  if (remote && (isUnspecified(ip) || sa.val.port === 0)) fail('invalid-argument');
}


type Waiter = () => void;
function wakeAll(list: Waiter[]): void {
  for (const w of list.splice(0)) w();
}

export class TcpSocket {
  readonly family: IpAddressFamily;
  readonly options: TcpOptions;
  private readonly net: Network;
  private _state: TcpState = 'unbound';
  private bound: BoundSocket | null = null;
  private server: Server | null = null;
  private sock: Socket | null = null;
  private local: IpSocketAddress | null = null;
  private remote: IpSocketAddress | null = null;
  private refs = 1;
  private released = false;

  // receive side
  private leftover: Uint8Array | null = null;
  private eof = false;
  private recvShut = false;
  private readWaiters: Waiter[] = [];
  /** The error that ended the connection (null while healthy or after a clean end). */
  private error: SocketErrorCode | null = null;

  // send side
  private sendShut = false;
  private writeWaiters: Waiter[] = [];

  // listen side
  private queue: TcpSocket[] = [];
  /** Connections whose peer the policy is still checking (they count against ACCEPT_QUEUE; closing the listener resets them). */
  private readonly checking = new Set<Socket>();
  private acceptWaiters: Waiter[] = [];

  /** Set by faces: the 0.3 send/receive are single-use per socket. */
  sendStarted = false;
  receiveStarted = false;

  private constructor(net: Network, family: IpAddressFamily, options: TcpOptions) {
    this.net = net;
    this.family = family;
    this.options = options;
  }

  /** tcp-socket.create: no OS socket yet (so creating is allowed without any grant). */
  static create(net: Network, family: IpAddressFamily): TcpSocket {
    if (family !== 'ipv4' && family !== 'ipv6') fail('invalid-argument');
    const s = new TcpSocket(net, family, new TcpOptions(family === 'ipv6'));
    net.track(s);
    return s;
  }

  get state(): TcpState { return this._state; }
  get isListening(): boolean { return this._state === 'listening'; }

  // ---- bind / listen / connect -------------------------------------------

  /** Synchronous bind; the ephemeral port is known on return. */
  bind(local: IpSocketAddress): void {
    if (this._state !== 'unbound') fail('invalid-state');
    checkAddress(local, this.family, false);
    if (!this.net.policy.allowsSync(local, 'tcp-bind')) fail('access-denied');
    this.bindOs(local);
  }

  private bindOs(local: IpSocketAddress): void {
    try {
      this.bound = new (nodeNet().BoundSocket)({ host: nodeHost(local), port: local.val.port, ipv6Only: this.family === 'ipv6' });
    } catch (e) {
      throw toSocketError(e);
    }
    const a = this.bound.address() as { address: string; port: number };
    this.local = fromNode(a.address, a.port);
    this._state = 'bound';
  }

  /** listen: binds implicitly (checked as a bind of the wildcard address) when unbound. */
  listen(): void {
    if (this._state !== 'unbound' && this._state !== 'bound') fail('invalid-state');
    const policy = this.net.policy;
    if (this._state === 'unbound') {
      const any = wildcard(this.family);
      if (!policy.allowsSync(any, 'tcp-bind') || !policy.allowsSync(any, 'tcp-listen')) fail('access-denied');
      this.bindOs(any);
    } else if (!policy.allowsSync(this.local!, 'tcp-listen')) {
      fail('access-denied');
    }
    const server = new (nodeNet().Server)({ allowHalfOpen: true, pauseOnConnect: true });
    server.on('error', () => {}); // a failed listen is reported synchronously below
    server.listen(this.bound!, this.options.backlog);
    this.bound = null; // adopted by the server
    if (!server.listening) {
      // Node closes the handle and reports the (deferred) error on the next tick;
      // on a socket that bound fine the only cause is another socket listening on the port.
      this._state = 'closed';
      fail('address-in-use');
    }
    this.server = server;
    this._state = 'listening';
    server.on('connection', (s: Socket) => { this.onConnection(s); });
  }

  private onConnection(s: Socket): void {
    s.on('error', () => {}); // a reset while the peer is being checked must not become an uncaught error
    const peer = fromNode(s.remoteAddress, s.remotePort);
    if (!peer || this.released || this.queue.length + this.checking.size >= ACCEPT_QUEUE) { s.resetAndDestroy(); return; }
    this.checking.add(s);
    this.net.policy.allows(peer, 'tcp-accept').then((ok) => {
      if (!this.checking.delete(s)) return; // the listener closed meanwhile (and reset it)
      if (!ok || this.released || this.queue.length >= ACCEPT_QUEUE) { s.resetAndDestroy(); return; }
      const child = new TcpSocket(this.net, this.family, this.options.copy(this.family === 'ipv6'));
      this.net.track(child);
      child.adopt(s);
      this.queue.push(child);
      wakeAll(this.acceptWaiters);
    }, () => { this.checking.delete(s); s.resetAndDestroy(); });
  }

  /** connect (0.3 `async func`; 0.2 start-connect/finish-connect). A failure leaves the socket `closed`. */
  async connect(remote: IpSocketAddress): Promise<void> {
    if (this._state === 'connecting' || this._state === 'connected' || this._state === 'listening' || this._state === 'closed') fail('invalid-state');
    checkAddress(remote, this.family, true);
    const wasBound = this._state === 'bound';
    this._state = 'connecting';
    const policy = this.net.policy;
    if (!(await policy.allows(remote, 'tcp-connect'))
      || (!wasBound && !(await policy.allowsImplicitBind(this.family, 'tcp-bind', remote, 'tcp-connect')))) {
      this.closeOs();
      this._state = 'closed';
      fail('access-denied');
    }
    if (this.released) { this._state = 'closed'; fail('invalid-state'); }
    const sock = wasBound
      ? new (nodeNet().Socket)({ handle: this.bound!, allowHalfOpen: true, readableHighWaterMark: READ_AHEAD, writableHighWaterMark: WRITE_BUFFER } as ConstructorParameters<typeof Socket>[0])
      : new (nodeNet().Socket)({ allowHalfOpen: true, readableHighWaterMark: READ_AHEAD, writableHighWaterMark: WRITE_BUFFER } as ConstructorParameters<typeof Socket>[0]);
    this.bound = null;
    this.sock = sock;
    try {
      await new Promise<void>((resolve, reject) => {
        const closed = () => reject(new SocketError('connection-aborted')); // destroyed while connecting (cancel, host close)
        sock.once('error', reject);
        sock.once('close', closed);
        sock.once('connect', () => { sock.off('error', reject); sock.off('close', closed); resolve(); });
        sock.connect({ host: nodeHost(remote), port: remote.val.port, family: this.family === 'ipv6' ? 6 : 4 });
      });
    } catch (e) {
      sock.destroy();
      this.sock = null;
      this._state = 'closed';
      throw toSocketError(e);
    }
    this.adopt(sock);
    if (this.released) this.destroy();
  }

  /** Wires a connected net.Socket (connected by us, or accepted by a listener). */
  private adopt(s: Socket): void {
    this.sock = s;
    this._state = 'connected';
    this.local = fromNode(s.localAddress, s.localPort);
    this.remote = fromNode(s.remoteAddress, s.remotePort);
    s.pause();
    const wakeRead = () => wakeAll(this.readWaiters);
    const wakeWrite = () => wakeAll(this.writeWaiters);
    s.on('readable', wakeRead);
    s.on('end', () => { this.eof = true; wakeRead(); });
    s.on('drain', wakeWrite);
    s.on('error', (e) => { this.error ??= toSocketError(e).code; wakeRead(); wakeWrite(); });
    s.on('close', () => { this.eof = true; wakeRead(); wakeWrite(); });
    this.applyKeepAlive();
  }

  // ---- addresses ---------------------------------------------------------

  localAddress(): IpSocketAddress {
    if (!this.local || this._state === 'unbound') fail('invalid-state');
    return this.local!;
  }

  remoteAddress(): IpSocketAddress {
    if (!this.remote || this._state !== 'connected') fail('invalid-state');
    return this.remote!;
  }

  // ---- accept ------------------------------------------------------------

  /** The next accepted connection, or null when none is waiting (or not listening). */
  accept(): TcpSocket | null {
    if (this._state !== 'listening') fail('invalid-state');
    return this.queue.shift() ?? null;
  }

  /** Resolves when accept() has something to return (or the listener was released). */
  whenAcceptable(): Promise<void> {
    if (this.queue.length > 0 || this.released || this._state !== 'listening') return Promise.resolve();
    return new Promise((r) => { this.acceptWaiters.push(r); });
  }

  // ---- receive -----------------------------------------------------------

  /**
   * Non-blocking read of at most `max` bytes: bytes, null at the end of the
   * stream (peer's FIN, shutdownReceive, or an error: see receiveError()), or
   * undefined when nothing is available yet (wait with whenReadable()).
   */
  read(max: number): Uint8Array | null | undefined {
    if (this._state !== 'connected' && !this.sock) fail('invalid-state');
    if (this.recvShut) return null;
    let chunk = this.leftover;
    this.leftover = null;
    if (chunk === null && this.sock) {
      const b = this.sock.read() as Buffer | null;
      if (b !== null) chunk = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    }
    if (chunk !== null && chunk.length > 0) {
      if (chunk.length > max) { this.leftover = chunk.subarray(max); chunk = chunk.subarray(0, max); }
      return chunk;
    }
    if (this.eof || this.error !== null || !this.sock) return null;
    return undefined;
  }

  /** Resolves when read() would not return undefined. */
  whenReadable(): Promise<void> {
    if (this.recvShut || this.eof || this.error !== null || !this.sock || this.leftover || this.sock.readableLength > 0) return Promise.resolve();
    return new Promise((r) => { this.readWaiters.push(r); });
  }

  /** Reads at least one byte (at most `max`), or null at the end. */
  async readAsync(max: number): Promise<Uint8Array | null> {
    for (;;) {
      const b = this.read(max);
      if (b !== undefined) return b;
      await this.whenReadable();
    }
  }

  /** Why the receive side ended: null for the peer's FIN (or a local shutdown), else the error. */
  receiveError(): SocketErrorCode | null { return this.recvShut && this.error === null ? null : this.error; }

  /** SHUT_RD: stop delivering; data already queued or arriving later is discarded. */
  shutdownReceive(): void {
    if (this.recvShut) return;
    this.recvShut = true;
    this.leftover = null;
    const s = this.sock;
    if (s && !s.destroyed) { s.removeAllListeners('readable'); s.on('data', () => {}); s.resume(); }
    wakeAll(this.readWaiters);
  }

  // ---- send --------------------------------------------------------------

  /** How many bytes writeNow may take without exceeding the write buffer (0 = wait for whenWritable). */
  writeCapacity(): number {
    const s = this.sock;
    if (this._state !== 'connected' || !s) fail('invalid-state');
    if (this.sendShut) fail('invalid-state');
    if (this.error !== null) throw new SocketError(this.error);
    if (s!.destroyed || s!.writableEnded) fail('connection-broken');
    return Math.max(0, WRITE_BUFFER - s!.writableLength);
  }

  /** Queues bytes (ownership passes to the socket; do not reuse the buffer). */
  writeNow(bytes: Uint8Array): void {
    this.writeCapacity();
    this.sock!.write(bytes);
  }

  /** Resolves when writeCapacity() > 0 (or the connection failed: writeCapacity then throws). */
  whenWritable(): Promise<void> {
    const s = this.sock;
    if (!s || s.destroyed || this.error !== null || !s.writableNeedDrain) return Promise.resolve();
    return new Promise((r) => { this.writeWaiters.push(r); });
  }

  /** Resolves when everything queued has been handed to the kernel. */
  async whenFlushed(): Promise<void> {
    const s = this.sock;
    while (s && !s.destroyed && this.error === null && s.writableLength > 0) {
      await new Promise<void>((r) => { this.writeWaiters.push(r); });
    }
    if (this.error !== null) throw new SocketError(this.error);
  }

  /** Writes all of `bytes`, waiting while the write buffer is full (backpressure). */
  async write(bytes: Uint8Array): Promise<void> {
    this.writeNow(bytes);
    if (this.sock!.writableNeedDrain) await this.whenWritable();
    if (this.error !== null) throw new SocketError(this.error);
  }

  /** SHUT_WR: flush, then send FIN; resolves when done (rejects with the connection's error). */
  shutdownSend(): Promise<void> {
    const s = this.sock;
    if (this.sendShut || !s) return this.error !== null ? Promise.reject(new SocketError(this.error)) : Promise.resolve();
    this.sendShut = true;
    if (this.error !== null) return Promise.reject(new SocketError(this.error));
    return new Promise<void>((resolve, reject) => {
      s.end(() => { if (this.error !== null) reject(new SocketError(this.error)); else resolve(); });
      s.once('close', () => { if (this.error !== null) reject(new SocketError(this.error)); else resolve(); });
    });
  }

  // ---- options -----------------------------------------------------------

  setListenBacklogSize(n: bigint): void {
    if (n <= 0n) fail('invalid-argument');
    if (this._state === 'connecting' || this._state === 'connected') fail('invalid-state');
    // Node cannot re-listen with a new backlog.
    if (this._state === 'listening') fail('not-supported');
    this.options.backlog = Number(n > 4096n ? 4096n : n);
  }
  setKeepAliveEnabled(v: boolean): void { this.options.keepAliveEnabled = !!v; this.applyKeepAlive(); }
  setKeepAliveIdleTime(ns: bigint): void { this.options.keepAliveIdleTime = keepAliveDuration(ns); this.applyKeepAlive(); }
  setKeepAliveInterval(ns: bigint): void { this.options.keepAliveInterval = keepAliveDuration(ns); this.applyKeepAlive(); }
  setKeepAliveCount(n: number): void { this.options.keepAliveCount = keepAliveCount(n); this.applyKeepAlive(); }
  /** Cached only: Node has no TCP IP_TTL / IPV6_UNICAST_HOPS setter. */
  setHopLimit(n: number): void { this.options.hopLimit = hopLimit(n); }
  /** Cached only: Node has no TCP SO_RCVBUF setter. */
  setReceiveBufferSize(n: bigint): void { this.options.receiveBufferSize = bufferSize(n); }
  /** Cached only: Node has no TCP SO_SNDBUF setter. */
  setSendBufferSize(n: bigint): void { this.options.sendBufferSize = bufferSize(n); }

  private applyKeepAlive(): void {
    const s = this.sock;
    if (!s || s.destroyed) return;
    const o = this.options;
    s.setKeepAlive({
      enable: o.keepAliveEnabled,
      initialDelay: Number(o.keepAliveIdleTime / 1_000_000n),
      interval: Number(o.keepAliveInterval / 1_000_000n),
      count: o.keepAliveCount,
    } as unknown as boolean);
  }

  // ---- lifetime ----------------------------------------------------------

  /** A stream or other face object now uses this socket; pair with release(). */
  retain(): void { this.refs++; }

  /** The guest dropped the handle, or a stream over the socket ended. At zero, the OS socket is closed. */
  release(): void {
    if (this.refs <= 0) return;
    if (--this.refs === 0) this.destroy();
  }

  /**
   * Closes the OS socket. On the last release, data already sent is flushed
   * first (destroySoon); `force` (host shutdown) closes at once, so a peer
   * that stops reading cannot keep the process alive.
   */
  destroy(force = false): void {
    if (this.released) { if (force) this.sock?.destroy(); return; }
    this.released = true;
    this.closeOs(force);
    // Stay tracked while unsent data drains, so that host shutdown can still close it.
    const s = this.sock;
    if (s && !s.destroyed) s.once('close', () => this.net.untrack(this));
    else this.net.untrack(this);
    wakeAll(this.acceptWaiters);
    wakeAll(this.readWaiters);
    wakeAll(this.writeWaiters);
  }

  private closeOs(force = false): void {
    if (this.bound) { try { this.bound.close(); } catch { /* adopted */ } this.bound = null; }
    if (this.server) { this.server.close(); this.server = null; }
    for (const c of this.queue.splice(0)) c.destroy(true);
    for (const c of this.checking) c.resetAndDestroy();
    this.checking.clear();
    const s = this.sock;
    if (s && !s.destroyed) {
      if (force || this._state === 'connecting') s.destroy();
      else s.destroySoon();
    }
  }

  /** For policy tests and diagnostics: the canonical peer of a connected socket. */
  peerText(): string | null { return this.remote ? ipToString(canonicalIp(ipOf(this.remote))) : null; }
}

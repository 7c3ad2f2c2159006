// The UDP socket of the sockets core (shared by the 0.2 and 0.3 faces).
// States: unbound → bound (optionally connected to one peer). The OS socket
// (a dgram.Socket, bound synchronously with bindSync) exists only after a
// granted bind, connect or send. Received datagrams wait in a bounded queue
// (dgram is push-only, like a kernel buffer: when the queue is full new
// datagrams are dropped); sources the policy denies are dropped unseen.

import type { Socket as DgramSocket } from 'node:dgram';
import {
  fromNode, ipOf, ipToString, isIpv4Compatible, isIpv4Mapped, isUnspecified, isWellFormed, nodeHost, wildcard,
  type IpAddressFamily, type IpSocketAddress,
} from './address.ts';
import { SocketError, toSocketError, type SocketErrorCode } from './errors.ts';
import { bufferSize, hopLimit, UdpOptions } from './options.ts';
import type { Network } from './network.ts';

/** Largest datagram a guest may send (the spec's limit; IPv4 allows less, the OS then says EMSGSIZE). */
export const MAX_DATAGRAM = 65535;
/**
 * Received datagrams kept for the guest (count and bytes), including those
 * whose source is still being checked (an embedder callback may be slow);
 * beyond either, new ones are dropped.
 */
export const UDP_QUEUE_DATAGRAMS = 256;
export const UDP_QUEUE_BYTES = 1 << 20;

const fail = (code: SocketErrorCode): never => { throw new SocketError(code); };

export interface Datagram { data: Uint8Array; remoteAddress: IpSocketAddress }


function sameAddress(a: IpSocketAddress, b: IpSocketAddress): boolean {
  return a.tag === b.tag && a.val.port === b.val.port && ipToString(ipOf(a)) === ipToString(ipOf(b));
}

export class UdpSocket {
  readonly family: IpAddressFamily;
  readonly options: UdpOptions;
  private readonly net: Network;
  private sock: DgramSocket | null = null;
  private remote: IpSocketAddress | null = null;
  private queue: Datagram[] = [];
  private queuedBytes = 0;
  /** Datagrams whose source is still being checked (kept in arrival order). */
  private inbound: Promise<void> = Promise.resolve();
  /** How many datagrams `inbound` holds: they count against UDP_QUEUE_DATAGRAMS (a zero-length one too). */
  private checking = 0;
  private waiters: (() => void)[] = [];
  private closed = false;
  private refs = 1;

  private constructor(net: Network, family: IpAddressFamily) {
    this.net = net;
    this.family = family;
    this.options = new UdpOptions(family === 'ipv6');
  }

  /** udp-socket.create: no OS socket yet. */
  static create(net: Network, family: IpAddressFamily): UdpSocket {
    if (family !== 'ipv4' && family !== 'ipv6') fail('invalid-argument');
    const s = new UdpSocket(net, family);
    net.track(s);
    return s;
  }

  get isBound(): boolean { return this.sock !== null; }
  get isConnected(): boolean { return this.remote !== null; }

  private checkArg(sa: IpSocketAddress): void {
    if (!isWellFormed(sa) || sa.tag !== this.family) fail('invalid-argument');
    if (isIpv4Mapped(ipOf(sa)) || isIpv4Compatible(ipOf(sa))) fail('invalid-argument');
  }

  bind(local: IpSocketAddress): void {
    if (this.closed || this.sock) fail('invalid-state');
    this.checkArg(local);
    if (!this.net.policy.allowsSync(local, 'udp-bind')) fail('access-denied');
    this.bindOs(local);
  }

  private newSocket(): DgramSocket {
    const sock = (process.getBuiltinModule('node:dgram') as typeof import('node:dgram')).createSocket({ type: this.family === 'ipv6' ? 'udp6' : 'udp4', ipv6Only: this.family === 'ipv6' });
    sock.on('error', () => {}); // asynchronous ICMP errors: the next send reports them
    return sock;
  }

  private bindOs(local: IpSocketAddress): void {
    const host = nodeHost(local);
    let sock = this.newSocket();
    try {
      sock.bindSync({ address: host, port: local.val.port });
      if (local.val.port === 0) {
        // Linux gives a port picked at bind time (port 0) back on disconnect, so
        // a reconnect would change it. Re-bind the picked port explicitly (that
        // pins it); if someone takes it in between, keep the first socket.
        const port = sock.address().port;
        const pinned = this.newSocket();
        sock.close();
        try {
          pinned.bindSync({ address: host, port });
          sock = pinned;
        } catch {
          pinned.close();
          sock = this.newSocket();
          sock.bindSync({ address: host, port: 0 });
        }
      }
    } catch (e) {
      try { sock.close(); } catch { /* never bound */ }
      throw toSocketError(e);
    }
    this.sock = sock;
    sock.on('message', (msg, rinfo) => { this.onMessage(msg, rinfo.address, rinfo.port); });
    this.applyOptions();
  }

  private onMessage(msg: Buffer, address: string, port: number): void {
    const from = fromNode(address, port);
    if (!from || this.closed) return;
    if (this.queue.length + this.checking >= UDP_QUEUE_DATAGRAMS || this.queuedBytes + msg.length > UDP_QUEUE_BYTES) return;
    const data = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
    this.queuedBytes += data.length; // reserved while the source is checked
    this.checking++;
    this.inbound = this.inbound.then(() => this.net.policy.allows(from, 'udp-receive')).then((ok) => {
      this.checking--;
      if (!ok || this.closed) { this.queuedBytes -= data.length; return; }
      this.queue.push({ data, remoteAddress: from });
      const w = this.waiters.shift();
      w?.();
    });
  }

  /** Sets (or replaces) the connected peer; binds implicitly when unbound. Synchronous. */
  connect(remote: IpSocketAddress): void {
    if (this.closed) fail('invalid-state');
    this.checkArg(remote);
    if (isUnspecified(ipOf(remote)) || remote.val.port === 0) fail('invalid-argument');
    const policy = this.net.policy;
    if (!policy.allowsSync(remote, 'udp-send') && !policy.allowsSync(remote, 'udp-receive')) fail('access-denied');
    if (!this.sock) {
      if (!policy.allowsImplicitBindSync(this.family, 'udp-bind', remote, ['udp-send', 'udp-receive'])) fail('access-denied');
      this.bindOs(wildcard(this.family));
    }
    const sock = this.sock!;
    if (this.remote) { try { sock.disconnect(); } catch { /* not connected */ } this.remote = null; }
    try {
      sock.connectSync(remote.val.port, nodeHost(remote));
    } catch (e) {
      throw toSocketError(e);
    }
    this.remote = fromNode(sock.remoteAddress().address, sock.remoteAddress().port);
  }

  disconnect(): void {
    if (this.closed || !this.sock || !this.remote) fail('invalid-state');
    try { this.sock!.disconnect(); } catch (e) { throw toSocketError(e); }
    this.remote = null;
  }

  /** Sends one datagram (to `remote`, or to the connected peer when omitted). */
  async send(data: Uint8Array, remote: IpSocketAddress | undefined): Promise<void> {
    if (this.closed) fail('invalid-state');
    if (data.length > MAX_DATAGRAM) fail('datagram-too-large');
    let dest: IpSocketAddress;
    if (remote === undefined) {
      if (!this.remote) fail('invalid-argument');
      dest = this.remote!;
    } else {
      this.checkArg(remote);
      if (isUnspecified(ipOf(remote)) || remote.val.port === 0) fail('invalid-argument');
      if (this.remote && !sameAddress(remote, this.remote)) fail('invalid-argument');
      dest = remote;
    }
    const policy = this.net.policy;
    if (!(await policy.allows(dest, 'udp-send'))) fail('access-denied');
    if (!this.sock && !(await policy.allowsImplicitBind(this.family, 'udp-bind', dest, 'udp-send'))) fail('access-denied');
    if (this.closed) fail('invalid-state');
    if (!this.sock) this.bindOs(wildcard(this.family));
    const sock = this.sock!;
    await new Promise<void>((resolve, reject) => {
      const done = (e: Error | null) => (e ? reject(toSocketError(e)) : resolve());
      try {
        if (this.remote) sock.send(data, done);
        else sock.send(data, dest.val.port, nodeHost(dest), done);
      } catch (e) {
        reject(toSocketError(e));
      }
    });
  }

  /** The next datagram (waits for one). invalid-state when unbound. */
  async receive(signal?: AbortSignal): Promise<Datagram> {
    if (this.closed || !this.sock) fail('invalid-state');
    for (;;) {
      const d = this.queue.shift();
      if (d) { this.queuedBytes -= d.data.length; return d; }
      if (this.closed) fail('invalid-state');
      if (signal?.aborted) throw signal.reason;
      await new Promise<void>((r) => {
        this.waiters.push(r);
        signal?.addEventListener('abort', () => r(), { once: true });
      });
    }
  }

  /** Non-blocking receive (0.2 incoming-datagram-stream): up to `max` queued datagrams. */
  receiveNow(max: number): Datagram[] {
    if (this.closed || !this.sock) fail('invalid-state');
    const out = this.queue.splice(0, Math.max(0, max));
    for (const d of out) this.queuedBytes -= d.data.length;
    return out;
  }

  /** Resolves when a datagram is queued (or the socket closed). */
  whenReceivable(): Promise<void> {
    if (this.queue.length > 0 || this.closed || !this.sock) return Promise.resolve();
    return new Promise((r) => { this.waiters.push(r); });
  }

  localAddress(): IpSocketAddress {
    if (this.closed || !this.sock) fail('invalid-state');
    const a = this.sock!.address();
    return fromNode(a.address, a.port) ?? fail('invalid-state');
  }

  remoteAddress(): IpSocketAddress {
    if (this.closed || !this.remote) fail('invalid-state');
    return this.remote!;
  }

  setUnicastHopLimit(n: number): void { this.options.unicastHopLimit = hopLimit(n); this.applyOptions(); }
  setReceiveBufferSize(n: bigint): void { this.options.receiveBufferSize = bufferSize(n); this.applyOptions(); }
  setSendBufferSize(n: bigint): void { this.options.sendBufferSize = bufferSize(n); this.applyOptions(); }

  /** Applies the cached options to the OS socket (values stay answered from the cache: Linux doubles buffer sizes). */
  private applyOptions(): void {
    const s = this.sock;
    if (!s) return;
    const o = this.options;
    try { s.setTTL(o.unicastHopLimit); } catch { /* best effort */ }
    try { s.setRecvBufferSize(Number(o.receiveBufferSize)); } catch { /* capped by the OS */ }
    try { s.setSendBufferSize(Number(o.sendBufferSize)); } catch { /* capped by the OS */ }
  }

  retain(): void { this.refs++; }
  release(): void {
    if (this.refs <= 0) return;
    if (--this.refs === 0) this.destroy();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.net.untrack(this);
    if (this.sock) { try { this.sock.close(); } catch { /* already closed */ } }
    this.queue = [];
    this.queuedBytes = 0;
    for (const w of this.waiters.splice(0)) w();
  }
}

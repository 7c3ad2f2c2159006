// wasi:sockets/udp@0.2 over the sockets core's UdpSocket (src/wasi/core/sockets/udp.ts):
// start-bind/finish-bind, `stream` (optionally connected to one peer) giving an
// incoming and an outgoing datagram stream, and pollables. 0.2's `send` is
// synchronous in WIT: each datagram is checked at once (arguments, then the
// policy's synchronous answer) and handed to the core; an OS failure that
// arrives later is reported by the next check-send / send.

import {
  ipOf, isIpv4Mapped, isUnspecified, isWellFormed, ipToString, MAX_DATAGRAM, UdpSocket,
  type Datagram, type IpAddressFamily, type IpSocketAddress, type Network,
} from '../core/sockets/index.ts';
import { Notifier, Pollable, raceAbort } from './io.ts';
import { err, ok, type Result } from '../wit-values.ts';
import { P2Network, p2ErrorCode, type P2ErrorCode } from './sockets-errors.ts';
import { attempt } from './sockets-tcp.ts';

/** Datagrams that may be in flight (handed to the core, not yet sent): check-send's answer when none is. */
const SEND_WINDOW = 64;

interface IncomingDatagram { data: Uint8Array; remoteAddress: IpSocketAddress }
interface OutgoingDatagram { data: Uint8Array; remoteAddress: IpSocketAddress | undefined }

function sameAddress(a: IpSocketAddress, b: IpSocketAddress): boolean {
  return a.tag === b.tag && a.val.port === b.val.port && ipToString(ipOf(a)) === ipToString(ipOf(b));
}

export class P2UdpSocket {
  readonly core: UdpSocket;
  private readonly net: Network;
  private bindStarted = false;
  private dropped = false;
  constructor(net: Network, core: UdpSocket) {
    this.net = net;
    this.core = core;
  }

  static create(net: Network, family: IpAddressFamily): P2UdpSocket {
    return new P2UdpSocket(net, UdpSocket.create(net, family));
  }

  startBind(network: P2Network, local: IpSocketAddress): Result<undefined, P2ErrorCode> {
    if (!(network instanceof P2Network)) return err('invalid-argument');
    if (this.bindStarted) return err('concurrency-conflict');
    return attempt(() => {
      this.core.bind(local);
      this.bindStarted = true;
      return undefined;
    });
  }

  finishBind(): Result<undefined, P2ErrorCode> {
    if (!this.bindStarted) return err('not-in-progress');
    this.bindStarted = false;
    return ok(undefined);
  }

  /** `stream`: (re)sets the connected peer and hands out a fresh pair of datagram streams. */
  stream(remote: IpSocketAddress | undefined): Result<[IncomingDatagramStream, OutgoingDatagramStream], P2ErrorCode> {
    if (!this.core.isBound) return err('invalid-state');
    return attempt(() => {
      if (remote !== undefined) this.core.connect(remote);
      else if (this.core.isConnected) this.core.disconnect();
      return [new IncomingDatagramStream(this.core), new OutgoingDatagramStream(this.net, this.core)] as [IncomingDatagramStream, OutgoingDatagramStream];
    });
  }

  localAddress(): Result<IpSocketAddress, P2ErrorCode> { return attempt(() => this.core.localAddress()); }
  remoteAddress(): Result<IpSocketAddress, P2ErrorCode> { return attempt(() => this.core.remoteAddress()); }
  addressFamily(): IpAddressFamily { return this.core.family; }

  drop(): void {
    if (this.dropped) return;
    this.dropped = true;
    this.core.release();
  }
}

export class IncomingDatagramStream {
  private readonly core: UdpSocket;
  /** a datagram taken from the core to answer a pollable's ready() */
  private peeked: Datagram | null = null;
  private waiting: Promise<void> | null = null;
  private dropped = false;
  constructor(core: UdpSocket) {
    this.core = core;
    core.retain();
  }

  receive(max: bigint): Result<IncomingDatagram[], P2ErrorCode> {
    const n = max > 1024n ? 1024 : Number(max);
    if (n <= 0) return ok([]);
    return attempt(() => {
      const out: Datagram[] = [];
      if (this.peeked) { out.push(this.peeked); this.peeked = null; }
      if (out.length < n) out.push(...this.core.receiveNow(n - out.length));
      return out.map((d) => ({ data: d.data, remoteAddress: d.remoteAddress }));
    });
  }

  ready(): boolean {
    if (this.peeked !== null) return true;
    try {
      this.peeked = this.core.receiveNow(1)[0] ?? null;
    } catch {
      return true; // closed: receive reports it
    }
    return this.peeked !== null;
  }

  whenReady(signal: AbortSignal): Promise<void> {
    if (this.ready()) return Promise.resolve();
    this.waiting ??= this.core.whenReceivable().finally(() => { this.waiting = null; });
    return raceAbort(this.waiting, signal);
  }

  drop(): void {
    if (this.dropped) return;
    this.dropped = true;
    this.core.release();
  }
}

export class OutgoingDatagramStream {
  private readonly net: Network;
  private readonly core: UdpSocket;
  private inFlight = 0;
  /** an OS failure of an earlier send, reported once */
  private lateError: P2ErrorCode | null = null;
  private readonly changed = new Notifier();
  private dropped = false;
  constructor(net: Network, core: UdpSocket) {
    this.net = net;
    this.core = core;
    core.retain();
  }

  checkSend(): Result<bigint, P2ErrorCode> {
    if (this.lateError !== null) {
      const e = this.lateError;
      this.lateError = null;
      return err(e);
    }
    return ok(BigInt(Math.max(0, SEND_WINDOW - this.inFlight)));
  }

  /** The checks the core makes inside its async send, made now: a failure is this call's result. */
  private check(d: OutgoingDatagram): P2ErrorCode | null {
    if (d.data.length > MAX_DATAGRAM) return 'datagram-too-large';
    let dest: IpSocketAddress;
    if (d.remoteAddress === undefined) {
      if (!this.core.isConnected) return 'invalid-argument';
      dest = this.core.remoteAddress();
    } else {
      const sa = d.remoteAddress;
      if (!isWellFormed(sa) || sa.tag !== this.core.family) return 'invalid-argument';
      const ip = ipOf(sa);
      if (isIpv4Mapped(ip) || isUnspecified(ip) || sa.val.port === 0) return 'invalid-argument';
      if (this.core.isConnected && !sameAddress(sa, this.core.remoteAddress())) return 'invalid-argument';
      dest = sa;
    }
    // 0.2's send is synchronous: the policy must answer synchronously too
    if (!this.net.policy.allowsSync(dest, 'udp-send')) return 'access-denied';
    return null;
  }

  send(datagrams: OutgoingDatagram[]): Result<bigint, P2ErrorCode> {
    if (this.lateError !== null) {
      const e = this.lateError;
      this.lateError = null;
      return err(e);
    }
    const room = Math.max(0, SEND_WINDOW - this.inFlight);
    let sent = 0;
    for (const d of datagrams) {
      if (sent >= room) break;
      let bad: P2ErrorCode | null;
      try { bad = this.check(d); } catch (e) { bad = p2ErrorCode(e); }
      if (bad !== null) return sent === 0 ? err(bad) : ok(BigInt(sent));
      this.inFlight++;
      this.core.send(d.data, d.remoteAddress).then(
        () => { this.inFlight--; this.changed.notify(); },
        (e) => { this.inFlight--; this.lateError ??= p2ErrorCode(e); this.changed.notify(); },
      );
      sent++;
    }
    return ok(BigInt(sent));
  }

  ready(): boolean { return this.lateError !== null || this.inFlight < SEND_WINDOW; }
  whenReady(signal: AbortSignal): Promise<void> { return this.ready() ? Promise.resolve() : this.changed.next(signal); }

  drop(): void {
    if (this.dropped) return;
    this.dropped = true;
    this.core.release();
  }
}

/** A pollable over anything with ready()/whenReady() (the datagram streams). */
export class ReadinessPollable extends Pollable {
  private readonly s: { ready(): boolean; whenReady(signal: AbortSignal): Promise<void> };
  constructor(s: { ready(): boolean; whenReady(signal: AbortSignal): Promise<void> }) { super(); this.s = s; }
  ready(): boolean { return this.s.ready(); }
  whenReady(signal: AbortSignal): Promise<void> { return this.s.whenReady(signal); }
}


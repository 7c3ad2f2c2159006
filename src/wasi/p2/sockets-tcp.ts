// wasi:sockets/tcp@0.2 over the sockets core's TcpSocket (src/wasi/core/sockets/tcp.ts).
// The core does the work and every check; this face adds what only 0.2 has:
// start-*/finish-* pairs (`concurrency-conflict` while one is started,
// `not-in-progress` for a finish without a start, `would-block` while a
// connect is under way), explicit binds before listen, input/output streams
// over the connection, shutdown, and pollables (src/wasi/p2/io.ts).

import {
  ipOf, isIpv4Mapped, isMulticastOrBroadcast, isUnspecified, isWellFormed, SocketError, TcpSocket,
  type IpAddressFamily, type IpSocketAddress, type Network,
} from '../core/sockets/index.ts';
import type { ByteSink, ByteSource } from '../core/streams.ts';
import { InputStream, OutputStream, Pollable, raceAbort, SinkWriter } from './io.ts';
import { err, ok, type Result } from '../wit-values.ts';
import { P2Network, p2ErrorCode, type P2ErrorCode } from './sockets-errors.ts';

const EMPTY = new Uint8Array(0);
/** Largest chunk peeked to answer a pollable's ready() (read() hands it out later). */
const PEEK_MAX = 1 << 16;

/** An input-stream's source: the connection's receive side, read without waiting. */
class TcpSource implements ByteSource {
  private readonly sock: TcpSocket;
  /** a chunk (or the end: null) taken from the core to answer ready(); undefined: none */
  private peeked: Uint8Array | null | undefined = undefined;
  private waiting: Promise<void> | null = null;
  private closed = false;
  constructor(sock: TcpSocket) {
    this.sock = sock;
    sock.retain();
  }

  private take(max: number): Uint8Array | null | undefined {
    const p = this.peeked;
    if (p === undefined) return this.sock.read(max);
    if (p === null) return null;
    if (p.length > max) { this.peeked = p.subarray(max); return p.subarray(0, max); }
    this.peeked = undefined;
    return p;
  }

  /** The end of the receive side: null after a FIN (or shutdown), the connection's error otherwise. */
  private end(): null {
    const code = this.sock.receiveError();
    if (code !== null) throw new SocketError(code);
    return null;
  }

  readNow(max: number): Uint8Array | null {
    if (this.closed) return null;
    if (max <= 0) return EMPTY;
    const b = this.take(max);
    if (b === undefined) return EMPTY;
    return b === null ? this.end() : b;
  }

  /** Never waits (the stream uses readNow / read). */
  readSync(max: number): Uint8Array | null { return this.readNow(max); }

  ready(): boolean {
    if (this.closed || this.peeked !== undefined) return true;
    const b = this.sock.read(PEEK_MAX);
    if (b === undefined) return false;
    this.peeked = b;
    return true;
  }

  whenReadable(signal?: AbortSignal): Promise<void> {
    if (this.ready()) return Promise.resolve();
    // one core waiter per stream, however many polls time out meanwhile
    this.waiting ??= this.sock.whenReadable().finally(() => { this.waiting = null; });
    return signal ? raceAbort(this.waiting, signal) : this.waiting;
  }

  async read(max: number): Promise<Uint8Array | null> {
    for (;;) {
      const b = this.readNow(max);
      if (b === null || b.length > 0 || max <= 0) return b;
      await this.whenReadable();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.release();
  }
}

/** An output-stream's sink: the connection's send side (what the core's buffer does not take waits in the SinkWriter). */
class TcpSink implements ByteSink {
  private readonly sock: TcpSocket;
  private closed = false;
  constructor(sock: TcpSocket) {
    this.sock = sock;
    sock.retain();
  }
  writeNow(bytes: Uint8Array): number {
    const n = Math.min(this.sock.writeCapacity(), bytes.length);
    // net.Socket.write keeps the bytes until sent, and they may be a view of guest memory (viewsBytes): copy
    if (n > 0) this.sock.writeNow(bytes.slice(0, n));
    return n;
  }
  write(bytes: Uint8Array): Promise<void> { return this.sock.write(bytes.slice()); }
  writeSync(bytes: Uint8Array): void { this.sock.writeNow(bytes.slice()); }
  flushSync(): void {}
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.release();
  }
}

type Started = 'bind' | 'connect' | 'listen' | null;

/** The spec's invalid-argument checks the core makes inside its async connect, made before start-connect returns. */
function checkRemote(sa: IpSocketAddress, family: IpAddressFamily): P2ErrorCode | null {
  if (!isWellFormed(sa) || sa.tag !== family) return 'invalid-argument';
  const ip = ipOf(sa);
  if (isMulticastOrBroadcast(ip) || isIpv4Mapped(ip) || isUnspecified(ip) || sa.val.port === 0) return 'invalid-argument';
  return null;
}

/** A wasi:sockets/tcp@0.2 tcp-socket. */
export class P2TcpSocket {
  readonly core: TcpSocket;
  private started: Started = null;
  private connecting: Promise<void> | null = null;
  private connectError: P2ErrorCode | null = null;
  private connectDone = false;
  /** a connection taken from the core to answer a pollable's ready() */
  private peekedAccept: TcpSocket | null = null;
  private acceptWait: Promise<void> | null = null;
  /** the write queue of the output-stream handed out (shutdown(send) flushes it first) */
  private writer: SinkWriter | null = null;
  private dropped = false;

  constructor(core: TcpSocket) { this.core = core; }

  static create(net: Network, family: IpAddressFamily): P2TcpSocket {
    return new P2TcpSocket(TcpSocket.create(net, family));
  }

  private streams(): [InputStream, OutputStream] {
    const out = new OutputStream(new TcpSink(this.core));
    this.writer = out.writer;
    return [new InputStream(new TcpSource(this.core)), out];
  }

  startBind(network: P2Network, local: IpSocketAddress): Result<undefined, P2ErrorCode> {
    if (!(network instanceof P2Network)) return err('invalid-argument');
    if (this.started !== null) return err('concurrency-conflict');
    return attempt(() => {
      this.core.bind(local);
      this.started = 'bind';
      return undefined;
    });
  }

  finishBind(): Result<undefined, P2ErrorCode> {
    if (this.started !== 'bind') return err('not-in-progress');
    this.started = null;
    return ok(undefined);
  }

  startConnect(network: P2Network, remote: IpSocketAddress): Result<undefined, P2ErrorCode> {
    if (!(network instanceof P2Network)) return err('invalid-argument');
    if (this.started !== null) return err('concurrency-conflict');
    const st = this.core.state;
    if (st !== 'unbound' && st !== 'bound') return err('invalid-state');
    const bad = checkRemote(remote, this.core.family);
    if (bad !== null) return err(bad);
    this.started = 'connect';
    this.connectDone = false;
    this.connectError = null;
    this.connecting = this.core.connect(remote).then(
      () => { this.connectDone = true; },
      (e) => { this.connectDone = true; this.connectError = p2ErrorCode(e); },
    );
    return ok(undefined);
  }

  finishConnect(): Result<[InputStream, OutputStream], P2ErrorCode> {
    if (this.started !== 'connect') return err('not-in-progress');
    if (!this.connectDone) return err('would-block');
    this.started = null;
    this.connecting = null;
    if (this.connectError !== null) return err(this.connectError);
    return ok(this.streams());
  }

  startListen(): Result<undefined, P2ErrorCode> {
    if (this.started !== null) return err('concurrency-conflict');
    // 0.2 has no implicit bind: listen needs an explicit one
    if (this.core.state !== 'bound') return err('invalid-state');
    return attempt(() => {
      this.core.listen();
      this.started = 'listen';
      return undefined;
    });
  }

  finishListen(): Result<undefined, P2ErrorCode> {
    if (this.started !== 'listen') return err('not-in-progress');
    this.started = null;
    return ok(undefined);
  }

  accept(): Result<[P2TcpSocket, InputStream, OutputStream], P2ErrorCode> {
    if (this.core.state !== 'listening') return err('invalid-state');
    let c = this.peekedAccept;
    this.peekedAccept = null;
    if (c === null) {
      try { c = this.core.accept(); } catch (e) { return err(p2ErrorCode(e)); }
    }
    if (c === null) return err('would-block');
    const s = new P2TcpSocket(c);
    const [i, o] = s.streams();
    return ok([s, i, o] as [P2TcpSocket, InputStream, OutputStream]);
  }

  localAddress(): Result<IpSocketAddress, P2ErrorCode> { return attempt(() => this.core.localAddress()); }
  remoteAddress(): Result<IpSocketAddress, P2ErrorCode> { return attempt(() => this.core.remoteAddress()); }
  isListening(): boolean { return this.core.isListening; }
  addressFamily(): IpAddressFamily { return this.core.family; }

  setListenBacklogSize(n: bigint): Result<void, P2ErrorCode> { return attempt(() => this.core.setListenBacklogSize(n)); }

  shutdown(how: 'receive' | 'send' | 'both'): Result<undefined, P2ErrorCode> {
    if (this.core.state !== 'connected') return err('invalid-state');
    if (how !== 'send') this.core.shutdownReceive();
    if (how !== 'receive') {
      // the FIN goes after whatever the output-stream still queues
      const core = this.core;
      const fin = () => { core.shutdownSend().catch(() => { /* reported by the streams */ }); };
      const queued = this.writer?.idle() ?? null;
      if (queued) queued.then(fin); else fin();
    }
    return ok(undefined);
  }

  /** subscribe: ready when a started connect finished, when a listener has a connection to accept; otherwise at once. */
  pollReady(): boolean {
    if (this.started === 'connect') return this.connectDone;
    if (this.core.state === 'listening') {
      if (this.peekedAccept !== null) return true;
      this.peekedAccept = this.core.accept();
      return this.peekedAccept !== null;
    }
    return true;
  }

  pollWait(signal: AbortSignal): Promise<void> {
    if (this.pollReady()) return Promise.resolve();
    if (this.started === 'connect' && this.connecting) return raceAbort(this.connecting, signal);
    this.acceptWait ??= this.core.whenAcceptable().finally(() => { this.acceptWait = null; });
    return raceAbort(this.acceptWait, signal);
  }

  drop(): void {
    if (this.dropped) return;
    this.dropped = true;
    if (this.peekedAccept) { this.peekedAccept.release(); this.peekedAccept = null; }
    this.core.release();
  }
}

export class TcpPollable extends Pollable {
  private readonly s: P2TcpSocket;
  constructor(s: P2TcpSocket) { super(); this.s = s; }
  ready(): boolean { return this.s.pollReady(); }
  whenReady(signal: AbortSignal): Promise<void> { return this.s.pollWait(signal); }
}

/** Run a core call; its SocketError becomes the 0.2 error-code. */
export function attempt<T>(f: () => T): Result<T, P2ErrorCode> {
  try {
    return ok(f());
  } catch (e) {
    return err(p2ErrorCode(e));
  }
}

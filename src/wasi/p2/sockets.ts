// wasi:sockets@0.2 (network, instance-network, tcp, tcp-create-socket, udp,
// udp-create-socket, ip-name-lookup): a face over the sockets core shared with
// 0.3 (src/wasi/core/sockets/), so one policy and one set of sockets serve
// both. Default deny lives in the core's policy: sockets may be created and
// configured, but bind/connect/listen/send and name lookups are access-denied
// (and no OS socket is opened) unless the host grants them.

import { HostResource } from '../../runtime/resources.ts';
import type { IpAddress, Network } from '../core/sockets/index.ts';
import { PromisePollable, ReadyPollable, type IoError, type IoResources, type Pollable } from './io.ts';
import { err, ok, type Result } from '../wit-values.ts';
import { P2Network, p2Code, p2ErrorCode, type P2ErrorCode } from './sockets-errors.ts';
import { attempt, P2TcpSocket, TcpPollable } from './sockets-tcp.ts';
import { IncomingDatagramStream, OutgoingDatagramStream, P2UdpSocket, ReadinessPollable } from './sockets-udp.ts';

type Family = 'ipv4' | 'ipv6';

/**
 * resolve-address-stream: the lookup runs in the background; its failure
 * (name-unresolvable, resolver failures) is reported by resolve-next-address.
 */
class ResolveAddressStream {
  private addresses: IpAddress[] | null = null;
  private error: P2ErrorCode | null = null;
  private next = 0;
  readonly done: Promise<void>;
  constructor(p: Promise<IpAddress[]>) {
    this.done = p.then((a) => { this.addresses = a; }, (e) => { this.error = p2ErrorCode(e); });
  }
  resolveNextAddress(): Result<IpAddress | undefined, P2ErrorCode> {
    if (this.error !== null) return err(this.error);
    if (this.addresses === null) return err('would-block');
    return ok(this.addresses[this.next++]);
  }
}


export function socketsImports(net: Network, io: IoResources, version: string): Record<string, Record<string, unknown>> {
  const network = new HostResource('network');
  const tcpSocket = new HostResource('tcp-socket', { drop: (s: P2TcpSocket) => s.drop() });
  const udpSocket = new HostResource('udp-socket', { drop: (s: P2UdpSocket) => s.drop() });
  const incoming = new HostResource('incoming-datagram-stream', { drop: (s: IncomingDatagramStream) => s.drop() });
  const outgoing = new HostResource('outgoing-datagram-stream', { drop: (s: OutgoingDatagramStream) => s.drop() });
  const resolveStream = new HostResource('resolve-address-stream');
  const theNetwork = new P2Network();
  const T = (m: string) => `[method]tcp-socket.${m}`;
  const U = (m: string) => `[method]udp-socket.${m}`;
  const o = (s: { core: { options: object } }) => s.core.options as Record<string, unknown>;
  return {
    [`wasi:sockets/network@${version}`]: {
      network,
      error: io.error,
      'network-error-code': (e: IoError) => (e.socketCode !== undefined ? p2Code(e.socketCode) : undefined),
    },
    [`wasi:sockets/instance-network@${version}`]: { network, 'instance-network': () => theNetwork },
    [`wasi:sockets/ip-name-lookup@${version}`]: {
      network,
      pollable: io.pollable,
      'resolve-address-stream': resolveStream,
      'resolve-addresses': (nw: P2Network, name: string): Result<ResolveAddressStream, P2ErrorCode> => {
        if (!(nw instanceof P2Network)) return err('invalid-argument');
        // argument and grant errors are immediate in 0.2; the lookup itself runs in the background
        try { net.checkLookup(name); } catch (e) { return err(p2ErrorCode(e)); }
        return ok(new ResolveAddressStream(net.resolveAddresses(name)));
      },
      '[method]resolve-address-stream.resolve-next-address': (s: ResolveAddressStream) => s.resolveNextAddress(),
      '[method]resolve-address-stream.subscribe': (s: ResolveAddressStream): Pollable => new PromisePollable(s.done),
    },
    [`wasi:sockets/tcp-create-socket@${version}`]: {
      network,
      'tcp-socket': tcpSocket,
      'create-tcp-socket': (family: Family) => attempt(() => P2TcpSocket.create(net, family)),
    },
    [`wasi:sockets/tcp@${version}`]: {
      network,
      'tcp-socket': tcpSocket,
      pollable: io.pollable,
      'input-stream': io.inputStream,
      'output-stream': io.outputStream,
      [T('start-bind')]: (s: P2TcpSocket, nw: P2Network, a: never) => s.startBind(nw, a),
      [T('finish-bind')]: (s: P2TcpSocket) => s.finishBind(),
      [T('start-connect')]: (s: P2TcpSocket, nw: P2Network, a: never) => s.startConnect(nw, a),
      [T('finish-connect')]: (s: P2TcpSocket) => s.finishConnect(),
      [T('start-listen')]: (s: P2TcpSocket) => s.startListen(),
      [T('finish-listen')]: (s: P2TcpSocket) => s.finishListen(),
      [T('accept')]: (s: P2TcpSocket) => s.accept(),
      [T('local-address')]: (s: P2TcpSocket) => s.localAddress(),
      [T('remote-address')]: (s: P2TcpSocket) => s.remoteAddress(),
      [T('is-listening')]: (s: P2TcpSocket) => s.isListening(),
      [T('address-family')]: (s: P2TcpSocket) => s.addressFamily(),
      [T('set-listen-backlog-size')]: (s: P2TcpSocket, n: bigint) => s.setListenBacklogSize(n),
      [T('keep-alive-enabled')]: (s: P2TcpSocket) => ok(o(s).keepAliveEnabled),
      [T('set-keep-alive-enabled')]: (s: P2TcpSocket, v: boolean) => attempt(() => s.core.setKeepAliveEnabled(v)),
      [T('keep-alive-idle-time')]: (s: P2TcpSocket) => ok(o(s).keepAliveIdleTime),
      [T('set-keep-alive-idle-time')]: (s: P2TcpSocket, v: bigint) => attempt(() => s.core.setKeepAliveIdleTime(v)),
      [T('keep-alive-interval')]: (s: P2TcpSocket) => ok(o(s).keepAliveInterval),
      [T('set-keep-alive-interval')]: (s: P2TcpSocket, v: bigint) => attempt(() => s.core.setKeepAliveInterval(v)),
      [T('keep-alive-count')]: (s: P2TcpSocket) => ok(o(s).keepAliveCount),
      [T('set-keep-alive-count')]: (s: P2TcpSocket, v: number) => attempt(() => s.core.setKeepAliveCount(v)),
      [T('hop-limit')]: (s: P2TcpSocket) => ok(o(s).hopLimit),
      [T('set-hop-limit')]: (s: P2TcpSocket, v: number) => attempt(() => s.core.setHopLimit(v)),
      [T('receive-buffer-size')]: (s: P2TcpSocket) => ok(o(s).receiveBufferSize),
      [T('set-receive-buffer-size')]: (s: P2TcpSocket, v: bigint) => attempt(() => s.core.setReceiveBufferSize(v)),
      [T('send-buffer-size')]: (s: P2TcpSocket) => ok(o(s).sendBufferSize),
      [T('set-send-buffer-size')]: (s: P2TcpSocket, v: bigint) => attempt(() => s.core.setSendBufferSize(v)),
      [T('subscribe')]: (s: P2TcpSocket): Pollable => new TcpPollable(s),
      [T('shutdown')]: (s: P2TcpSocket, how: 'receive' | 'send' | 'both') => s.shutdown(how),
    },
    [`wasi:sockets/udp-create-socket@${version}`]: {
      network,
      'udp-socket': udpSocket,
      'create-udp-socket': (family: Family) => attempt(() => P2UdpSocket.create(net, family)),
    },
    [`wasi:sockets/udp@${version}`]: {
      network,
      'udp-socket': udpSocket,
      pollable: io.pollable,
      'incoming-datagram-stream': incoming,
      'outgoing-datagram-stream': outgoing,
      [U('start-bind')]: (s: P2UdpSocket, nw: P2Network, a: never) => s.startBind(nw, a),
      [U('finish-bind')]: (s: P2UdpSocket) => s.finishBind(),
      [U('stream')]: (s: P2UdpSocket, remote: never) => s.stream(remote),
      [U('local-address')]: (s: P2UdpSocket) => s.localAddress(),
      [U('remote-address')]: (s: P2UdpSocket) => s.remoteAddress(),
      [U('address-family')]: (s: P2UdpSocket) => s.addressFamily(),
      [U('unicast-hop-limit')]: (s: P2UdpSocket) => ok(o(s).unicastHopLimit),
      [U('set-unicast-hop-limit')]: (s: P2UdpSocket, v: number) => attempt(() => s.core.setUnicastHopLimit(v)),
      [U('receive-buffer-size')]: (s: P2UdpSocket) => ok(o(s).receiveBufferSize),
      [U('set-receive-buffer-size')]: (s: P2UdpSocket, v: bigint) => attempt(() => s.core.setReceiveBufferSize(v)),
      [U('send-buffer-size')]: (s: P2UdpSocket) => ok(o(s).sendBufferSize),
      [U('set-send-buffer-size')]: (s: P2UdpSocket, v: bigint) => attempt(() => s.core.setSendBufferSize(v)),
      [U('subscribe')]: (): Pollable => new ReadyPollable(),
      '[method]incoming-datagram-stream.receive': (s: IncomingDatagramStream, max: bigint) => s.receive(max),
      '[method]incoming-datagram-stream.subscribe': (s: IncomingDatagramStream): Pollable => new ReadinessPollable(s),
      '[method]outgoing-datagram-stream.check-send': (s: OutgoingDatagramStream) => s.checkSend(),
      '[method]outgoing-datagram-stream.send': (s: OutgoingDatagramStream, d: never) => s.send(d),
      '[method]outgoing-datagram-stream.subscribe': (s: OutgoingDatagramStream): Pollable => new ReadinessPollable(s),
    },
  };
}

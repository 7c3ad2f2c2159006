// The sockets core: one implementation of TCP, UDP, name lookup and the
// network policy, faced by wasi:sockets@0.3 (src/wasi/p3/sockets.ts) and
// wasi:sockets@0.2 (src/wasi/p2/sockets*.ts). Faces convert values and
// waiting styles only; every check (arguments, state, policy) is here.
//
// Entry point: `WasiHost.network` (a Network, configured from
// WasiConfig.network). Create sockets with TcpSocket.create(network, family)
// / UdpSocket.create(network, family); errors are thrown as SocketError /
// LookupError carrying only a spec error-code name.

export * from './address.ts';
export * from './errors.ts';
export { Network } from './network.ts';
export { NetRuleError, NetworkPolicy, parseNetRule, type CheckedAddress, type NetworkConfig, type SocketAddrCheck, type SocketAddrUse } from './policy.ts';
export { TcpSocket, type TcpState, READ_AHEAD, WRITE_BUFFER, ACCEPT_QUEUE } from './tcp.ts';
export { UdpSocket, type Datagram, MAX_DATAGRAM, UDP_QUEUE_BYTES, UDP_QUEUE_DATAGRAMS } from './udp.ts';
export { TcpOptions, UdpOptions } from './options.ts';

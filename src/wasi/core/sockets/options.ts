// Socket options as the guest sees them: cached in JS so that every value
// round-trips exactly in every state (including before bind, when there is no
// OS socket yet), clamped to what Linux accepts, and applied to the OS socket
// whenever one exists. Node offers no TCP TTL and no TCP SO_RCVBUF/SNDBUF, so
// for TCP those two are answered from the cache only (documented in WASI.md).

import { readFileSync } from 'node:fs';
import { SocketError } from './errors.ts';

const NS_PER_S = 1_000_000_000n;

function sysctl(path: string, fallback: number, field = 0): number {
  try {
    const v = Number(readFileSync(path, 'utf8').trim().split(/\s+/)[field]);
    return Number.isFinite(v) && v > 0 ? v : fallback;
  } catch {
    return fallback;
  }
}

let defaults: { idle: bigint; interval: bigint; count: number; ttl: number; hop6: number; rcv: bigint; snd: bigint; udpRcv: bigint; udpSnd: bigint } | null = null;

/** The OS defaults a fresh socket reports (read once from /proc/sys; Linux defaults elsewhere). */
export function osDefaults() {
  if (!defaults) {
    defaults = {
      idle: BigInt(sysctl('/proc/sys/net/ipv4/tcp_keepalive_time', 7200)) * NS_PER_S,
      interval: BigInt(sysctl('/proc/sys/net/ipv4/tcp_keepalive_intvl', 75)) * NS_PER_S,
      count: sysctl('/proc/sys/net/ipv4/tcp_keepalive_probes', 9),
      ttl: sysctl('/proc/sys/net/ipv4/ip_default_ttl', 64),
      hop6: sysctl('/proc/sys/net/ipv6/conf/default/hop_limit', 64),
      rcv: BigInt(sysctl('/proc/sys/net/ipv4/tcp_rmem', 131072, 1)),
      snd: BigInt(sysctl('/proc/sys/net/ipv4/tcp_wmem', 16384, 1)),
      udpRcv: BigInt(sysctl('/proc/sys/net/core/rmem_default', 212992)),
      udpSnd: BigInt(sysctl('/proc/sys/net/core/wmem_default', 212992)),
    };
  }
  return defaults;
}

/** Linux bounds: TCP_KEEPIDLE / TCP_KEEPINTVL 1..32767 s, TCP_KEEPCNT 1..127, buffers ≤ INT_MAX. */
const MAX_KEEPALIVE_S = 32767n;
const MAX_KEEPCNT = 127;
export const MAX_BUFFER = 0x7fffffffn;

/** A duration (ns) as Linux keeps it: whole seconds, rounded up, within 1..32767 s. */
export function keepAliveDuration(ns: bigint): bigint {
  if (ns <= 0n) throw new SocketError('invalid-argument');
  let s = (ns + NS_PER_S - 1n) / NS_PER_S;
  if (s > MAX_KEEPALIVE_S) s = MAX_KEEPALIVE_S;
  return s * NS_PER_S;
}

export function keepAliveCount(n: number): number {
  if (!(n > 0)) throw new SocketError('invalid-argument');
  return Math.min(n, MAX_KEEPCNT);
}

export function hopLimit(n: number): number {
  if (!(n > 0) || n > 255) throw new SocketError('invalid-argument');
  return n;
}

export function bufferSize(n: bigint): bigint {
  if (n <= 0n) throw new SocketError('invalid-argument');
  return n > MAX_BUFFER ? MAX_BUFFER : n;
}

/** TCP options (inherited by accepted sockets from their listener). */
export class TcpOptions {
  keepAliveEnabled = false;
  keepAliveIdleTime: bigint;
  keepAliveInterval: bigint;
  keepAliveCount: number;
  hopLimit: number;
  receiveBufferSize: bigint;
  sendBufferSize: bigint;
  /** listen backlog; 128 unless set (clamped to SOMAXCONN-ish 4096) */
  backlog = 128;
  constructor(ipv6: boolean) {
    const d = osDefaults();
    this.keepAliveIdleTime = d.idle;
    this.keepAliveInterval = d.interval;
    this.keepAliveCount = d.count;
    this.hopLimit = ipv6 ? d.hop6 : d.ttl;
    this.receiveBufferSize = d.rcv;
    this.sendBufferSize = d.snd;
  }
  copy(ipv6: boolean): TcpOptions {
    const o = new TcpOptions(ipv6);
    o.keepAliveEnabled = this.keepAliveEnabled;
    o.keepAliveIdleTime = this.keepAliveIdleTime;
    o.keepAliveInterval = this.keepAliveInterval;
    o.keepAliveCount = this.keepAliveCount;
    o.hopLimit = this.hopLimit;
    o.receiveBufferSize = this.receiveBufferSize;
    o.sendBufferSize = this.sendBufferSize;
    return o;
  }
}

/** UDP options. */
export class UdpOptions {
  unicastHopLimit: number;
  receiveBufferSize: bigint;
  sendBufferSize: bigint;
  constructor(ipv6: boolean) {
    const d = osDefaults();
    this.unicastHopLimit = ipv6 ? d.hop6 : d.ttl;
    this.receiveBufferSize = d.udpRcv;
    this.sendBufferSize = d.udpSnd;
  }
}

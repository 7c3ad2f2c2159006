// IP addresses of wasi:sockets, in the JS shape both faces use (the WIT
// variants `ip-address` / `ip-socket-address` are identical in 0.2 and 0.3):
//   ip-address         { tag: 'ipv4', val: [a, b, c, d] } | { tag: 'ipv6', val: [8 × u16] }
//   ip-socket-address  { tag: 'ipv4', val: { port, address } }
//                    | { tag: 'ipv6', val: { port, flowInfo, address, scopeId } }
// plus the conversions to and from Node's strings, the classification the
// spec's argument checks need (unicast, unspecified, IPv4-mapped), and a
// numeric form for CIDR matching.

export type IpAddressFamily = 'ipv4' | 'ipv6';

export type IpAddress =
  | { tag: 'ipv4'; val: ArrayLike<number> }
  | { tag: 'ipv6'; val: ArrayLike<number> };

export interface Ipv4SocketAddress { port: number; address: ArrayLike<number> }
export interface Ipv6SocketAddress { port: number; flowInfo: number; address: ArrayLike<number>; scopeId: number }

export type IpSocketAddress =
  | { tag: 'ipv4'; val: Ipv4SocketAddress }
  | { tag: 'ipv6'; val: Ipv6SocketAddress };

/** The address part of a socket address. */
export function ipOf(sa: IpSocketAddress): IpAddress {
  return sa.tag === 'ipv4' ? { tag: 'ipv4', val: sa.val.address } : { tag: 'ipv6', val: sa.val.address };
}

export function makeSocketAddress(ip: IpAddress, port: number): IpSocketAddress {
  return ip.tag === 'ipv4'
    ? { tag: 'ipv4', val: { port, address: Array.from(ip.val) } }
    : { tag: 'ipv6', val: { port, flowInfo: 0, address: Array.from(ip.val), scopeId: 0 } };
}

/** Node's text form: dotted quad, or RFC 5952 IPv6 (no brackets, no zone). */
export function ipToString(ip: IpAddress): string {
  const a = ip.val;
  if (ip.tag === 'ipv4') return `${a[0]}.${a[1]}.${a[2]}.${a[3]}`;
  // Longest run of two or more zero groups becomes "::".
  let bestAt = -1; let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (a[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && a[j] === 0) j++;
    if (j - i > bestLen) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  const hex = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => a[from + k].toString(16)).join(':');
  if (bestAt < 0) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}

/** `1.2.3.4:80` or `[::1]:80` (for messages and the embedder's callback). */
export function socketAddressToString(sa: IpSocketAddress): string {
  const ip = ipToString(ipOf(sa));
  return sa.tag === 'ipv4' ? `${ip}:${sa.val.port}` : `[${ip}]:${sa.val.port}`;
}

/**
 * Parses a strict numeric IP (what Node reports: dotted quad, or IPv6 text,
 * optionally with an embedded dotted quad; a `%zone` suffix is ignored).
 * No aliases: see parseIpLoose for those.
 */
export function parseIp(text: string): IpAddress | null {
  const v4 = parseDottedQuad(text);
  if (v4) return { tag: 'ipv4', val: v4 };
  const pct = text.indexOf('%');
  const v6 = parseIpv6(pct >= 0 ? text.slice(0, pct) : text);
  return v6 ? { tag: 'ipv6', val: v6 } : null;
}

function parseDottedQuad(text: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? parts : null;
}

function parseIpv6(text: string): number[] | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.length < 2) return null;
  let s = text;
  if (s.indexOf('.') >= 0) {
    // An embedded dotted quad (`::ffff:1.2.3.4`) stands for the last two groups.
    const lastColon = s.lastIndexOf(':');
    const q = parseDottedQuad(s.slice(lastColon + 1));
    if (!q) return null;
    s = `${s.slice(0, lastColon + 1)}${((q[0] << 8) | q[1]).toString(16)}:${((q[2] << 8) | q[3]).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const group = (h: string) => (h === '' ? [] : h.split(':'));
  const head = group(halves[0]);
  const rest = halves.length === 2 ? group(halves[1]) : [];
  const parse = (g: string) => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : NaN);
  const h = head.map(parse); const r = rest.map(parse);
  if ([...h, ...r].some(Number.isNaN)) return null;
  const have = h.length + r.length;
  if (halves.length === 1) return have === 8 ? h : null;
  if (have > 7) return null;
  return [...h, ...new Array<number>(8 - have).fill(0), ...r];
}

/**
 * Parses an IP the way getaddrinfo/inet_aton would, so that a rule or a
 * guest-supplied name such as `2130706433`, `0x7f.1` or `127.1` is recognised
 * as the address it denotes (and faces the address rules) instead of being
 * treated as a hostname. Also accepts `[v6]`.
 */
export function parseIpLoose(text: string): IpAddress | null {
  let t = text.trim();
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1);
  const strict = parseIp(t);
  if (strict) return strict;
  // inet_aton: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x); the last part fills the remaining bytes.
  const parts = t.split('.');
  if (parts.length < 1 || parts.length > 4) return null;
  const nums: number[] = [];
  for (const p of parts) {
    let n: number;
    if (/^0[xX][0-9a-fA-F]*$/.test(p)) n = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
    else if (/^0[0-7]*$/.test(p)) n = parseInt(p, 8);
    else if (/^[1-9][0-9]*$/.test(p)) n = Number(p);
    else return null;
    if (!Number.isFinite(n)) return null;
    nums.push(n);
  }
  const lastMax = 2 ** (8 * (5 - nums.length)) - 1;
  for (let i = 0; i < nums.length - 1; i++) if (nums[i] > 255) return null;
  const last = nums[nums.length - 1];
  if (last > lastMax) return null;
  let v = 0;
  for (let i = 0; i < nums.length - 1; i++) v += nums[i] * 2 ** (8 * (3 - i));
  v += last;
  return { tag: 'ipv4', val: [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255] };
}

/** `::ffff:a.b.c.d` */
export function isIpv4Mapped(ip: IpAddress): boolean {
  const a = ip.val;
  return ip.tag === 'ipv6' && a[0] === 0 && a[1] === 0 && a[2] === 0 && a[3] === 0 && a[4] === 0 && a[5] === 0xffff;
}

/**
 * `::a.b.c.d`, the deprecated IPv4-compatible form (::/96 except `::` and
 * `::1`): refused as an argument, like IPv4-mapped (what wasmtime does too).
 */
export function isIpv4Compatible(ip: IpAddress): boolean {
  const a = ip.val;
  if (ip.tag !== 'ipv6' || a[0] !== 0 || a[1] !== 0 || a[2] !== 0 || a[3] !== 0 || a[4] !== 0 || a[5] !== 0) return false;
  return !(a[6] === 0 && (a[7] === 0 || a[7] === 1));
}

/** The canonical form: an IPv4-mapped IPv6 address becomes the IPv4 address (policy checks and lookup results). */
export function canonicalIp(ip: IpAddress): IpAddress {
  if (!isIpv4Mapped(ip)) return ip;
  const a = ip.val;
  return { tag: 'ipv4', val: [a[6] >> 8, a[6] & 255, a[7] >> 8, a[7] & 255] };
}

export function isUnspecified(ip: IpAddress): boolean {
  for (let i = 0; i < ip.val.length; i++) if (ip.val[i] !== 0) return false;
  return true;
}

/** Multicast or the IPv4 limited broadcast: never a valid bind or connect target. */
export function isMulticastOrBroadcast(ip: IpAddress): boolean {
  const a = ip.val;
  if (ip.tag === 'ipv4') return (a[0] >= 224 && a[0] <= 239) || (a[0] === 255 && a[1] === 255 && a[2] === 255 && a[3] === 255);
  return (a[0] & 0xff00) === 0xff00;
}

/** Value checks of a guest-supplied address (not the policy): numbers in range, right arity. */
export function isWellFormed(sa: IpSocketAddress): boolean {
  if (!sa || (sa.tag !== 'ipv4' && sa.tag !== 'ipv6') || !sa.val) return false;
  const { port, address } = sa.val;
  if (!Number.isInteger(port) || port < 0 || port > 65535) return false;
  const n = sa.tag === 'ipv4' ? 4 : 8;
  const max = sa.tag === 'ipv4' ? 255 : 65535;
  if (!address || address.length !== n) return false;
  for (let i = 0; i < n; i++) if (!Number.isInteger(address[i]) || address[i] < 0 || address[i] > max) return false;
  return true;
}

/** The address as one integer (32-bit for IPv4, 128-bit for IPv6), for prefix matching. */
export function ipToBigInt(ip: IpAddress): bigint {
  let v = 0n;
  const bits = ip.tag === 'ipv4' ? 8n : 16n;
  for (let i = 0; i < ip.val.length; i++) v = (v << bits) | BigInt(ip.val[i]);
  return v;
}

// Scope ids. WIT carries an interface index; Node (libuv on Unix) reads the
// `%zone` of an address as an interface NAME (a numeric zone is silently
// dropped) and reports link-local addresses as `fe80::…%name`. The link-local
// entries of os.networkInterfaces() give each name's index.
let ifCache: { at: number; map: Map<string, number> } | null = null;
function interfaceIndexes(): Map<string, number> {
  // Cached for a second: link-local UDP sources would otherwise ask the OS once per datagram.
  const now = Date.now();
  if (ifCache && now - ifCache.at < 1000) return ifCache.map;
  const out = new Map<string, number>();
  const ifs = (process.getBuiltinModule('node:os') as typeof import('node:os')).networkInterfaces();
  for (const [name, list] of Object.entries(ifs)) {
    for (const e of list ?? []) if (e.family === 'IPv6' && e.scopeid) { out.set(name, e.scopeid); break; }
  }
  ifCache = { at: now, map: out };
  return out;
}

function zoneToIndex(zone: string): number {
  if (/^\d+$/.test(zone)) return Number(zone) >>> 0;
  return interfaceIndexes().get(zone) ?? 0;
}

/** The text Node connects or binds to: the address, plus `%interface` for a non-zero IPv6 scope id. */
export function nodeHost(sa: IpSocketAddress): string {
  const host = ipToString(ipOf(sa));
  if (sa.tag !== 'ipv6' || !sa.val.scopeId) return host;
  for (const [name, index] of interfaceIndexes()) if (index === sa.val.scopeId) return `${host}%${name}`;
  return `${host}%${sa.val.scopeId}`; // no such interface: the OS refuses a link-local address without one
}

/** Node's `{ address, family, port }` (from address(), remoteAddress…) as an ip-socket-address (with its scope id). */
export function fromNode(address: string | undefined, port: number | undefined): IpSocketAddress | null {
  if (address === undefined || port === undefined) return null;
  const ip = parseIp(address);
  if (!ip) return null;
  const sa = makeSocketAddress(ip, port);
  const pct = address.indexOf('%');
  if (sa.tag === 'ipv6' && pct >= 0) sa.val.scopeId = zoneToIndex(address.slice(pct + 1));
  return sa;
}

/** The wildcard address of a family, port 0: what an implicit bind is checked as. */
export function wildcard(family: IpAddressFamily): IpSocketAddress {
  return family === 'ipv4'
    ? { tag: 'ipv4', val: { port: 0, address: [0, 0, 0, 0] } }
    : { tag: 'ipv6', val: { port: 0, flowInfo: 0, address: [0, 0, 0, 0, 0, 0, 0, 0], scopeId: 0 } };
}

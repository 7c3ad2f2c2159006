// The network policy: default deny, explicit grants. Every address a guest
// binds, listens on, connects to, sends to, or receives from (accepted TCP
// peers, UDP sources) is checked here, after canonicalisation (IPv4-mapped
// IPv6 is checked as the IPv4 address). Grants come from:
//   - inheritNetwork: every address, every use (`-S inherit-network`);
//   - rules (`--allow-net KIND=TARGET`, grammar below);
//   - an embedder callback `(address, use) => boolean | Promise<boolean>`.
// A use is allowed when inheritNetwork is set, a rule matches, or the
// callback says true. Name lookups are gated separately (allowIpNameLookup,
// or a hostname named in a rule: that one name may be looked up).
//
// Rule grammar (KIND=TARGET, one rule per --allow-net):
//   KIND    connect  TCP connect to TARGET
//           bind     TCP/UDP bind on TARGET (explicit or implicit) and TCP listen
//           accept   accept TCP connections from peers in TARGET
//           udp      UDP send to / receive from / connect to TARGET
//   TARGET  HOST[:PORTS]
//   HOST    *                      any address, both families
//           a.b.c.d[/LEN]          IPv4 (numeric aliases such as 2130706433 are read as addresses)
//           [v6[/LEN]]             IPv6, in brackets
//           name                   a hostname (connect and udp only): allows exactly the
//                                  addresses of the latest answer Weir's own lookup of that
//                                  name got (each answer replaces the previous one, so a
//                                  rebinding DNS server cannot widen the grant over time;
//                                  the grant still trusts DNS: pin addresses with IP rules)
//   PORTS   *  |  N  |  N-M        default *; 0..65535
// An IPv6 address with a non-zero scope-id (a link-local address on one
// interface) is matched only by a `*` HOST: address, prefix and hostname
// rules name no interface, so they match scope-id 0 only. The callback sees
// the scope-id (CheckedAddress.scopeId).
// An implicit bind (connect or listen without bind, UDP send or connect
// without bind) is checked as a bind of the wildcard address, port 0
// (use tcp-bind / udp-bind). For connect and UDP, a rule (or inheritNetwork)
// that allows the destination also allows that ephemeral bind (it opens no
// listening port); a destination allowed only by the callback needs the
// callback's yes for the wildcard bind too (as wasmtime's socket_addr_check).
// The implicit bind of listen() is an ordinary bind: it needs a bind rule (or
// the callback) for the wildcard address.

import {
  canonicalIp, ipOf, ipToBigInt, ipToString, isIpv4Mapped, isUnspecified, parseIpLoose, wildcard,
  type IpAddress, type IpAddressFamily, type IpSocketAddress,
} from './address.ts';

/** What an address is being used for (one check per use). */
export type SocketAddrUse =
  | 'tcp-bind' | 'tcp-listen' | 'tcp-accept' | 'tcp-connect'
  | 'udp-bind' | 'udp-send' | 'udp-receive';

/** The address as given to an embedder's callback. */
export interface CheckedAddress {
  family: IpAddressFamily;
  /** Canonical text (IPv4-mapped IPv6 is shown as IPv4). */
  address: string;
  port: number;
  /** IPv6 only: the scope-id (interface index; 0 for none). */
  scopeId?: number;
}

export type SocketAddrCheck = (address: CheckedAddress, use: SocketAddrUse) => boolean | Promise<boolean>;

export interface NetworkConfig {
  /** Every address for every use (`-S inherit-network`). Name lookups still need allowIpNameLookup. */
  inheritNetwork?: boolean;
  /** Let the guest resolve any name (`-S allow-ip-name-lookup`). */
  allowIpNameLookup?: boolean;
  /** `--allow-net` rules (grammar at the top of this file). A bad rule throws NetRuleError. */
  allow?: string[];
  /**
   * Asked for every use no rule allows. For bind, listen and UDP connect (synchronous
   * in WIT) it must answer synchronously: a Promise there counts as a denial.
   */
  check?: SocketAddrCheck;
  /**
   * Name resolver (default: the OS resolver via dns.lookup). Returns numeric
   * addresses; used by ip-name-lookup and checked hostname grants.
   */
  resolver?: (name: string) => Promise<string[]>;
}

export class NetRuleError extends Error {
  override name = 'NetRuleError';
  readonly code = 'WEIR_NET_RULE';
}

type Kind = 'connect' | 'bind' | 'accept' | 'udp';
const KIND_USES: Record<Kind, SocketAddrUse[]> = {
  connect: ['tcp-connect'],
  bind: ['tcp-bind', 'tcp-listen', 'udp-bind'],
  accept: ['tcp-accept'],
  udp: ['udp-send', 'udp-receive'],
};

export interface NetRule {
  kind: Kind;
  /** null: any address of either family. */
  net: { family: IpAddressFamily; base: bigint; len: number } | null;
  /** A hostname grant (lower case, no trailing dot); `net` is then null. */
  host: string | null;
  portMin: number;
  portMax: number;
  /** For host rules: canonical text of the addresses of the latest answer of Weir's lookup of `host`. */
  resolved: Set<string>;
}

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

function normalizeName(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

function parsePorts(text: string, rule: string): [number, number] {
  if (text === '*') return [0, 65535];
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) throw new NetRuleError(`--allow-net ${rule}: bad port ${JSON.stringify(text)} (expected N, N-M or *)`);
  const lo = Number(m[1]); const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo > 65535 || hi > 65535 || lo > hi) throw new NetRuleError(`--allow-net ${rule}: port range ${text} out of 0-65535`);
  return [lo, hi];
}

function prefix(ip: IpAddress, lenText: string | undefined, rule: string): NetRule['net'] {
  const bits = ip.tag === 'ipv4' ? 32 : 128;
  let len = bits;
  if (lenText !== undefined) {
    if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > bits) throw new NetRuleError(`--allow-net ${rule}: bad prefix length /${lenText}`);
    len = Number(lenText);
  }
  const v = ipToBigInt(ip);
  const mask = len === 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(bits - len);
  return { family: ip.tag, base: v & mask, len };
}

/** Parses one `--allow-net` rule; throws NetRuleError with a message for the user. */
export function parseNetRule(rule: string): NetRule {
  const eq = rule.indexOf('=');
  const kind = (eq > 0 ? rule.slice(0, eq) : '') as Kind;
  if (!Object.hasOwn(KIND_USES, kind)) {
    throw new NetRuleError(`--allow-net ${rule}: expected KIND=TARGET with KIND one of connect, bind, accept, udp`);
  }
  const target = rule.slice(eq + 1);
  let hostText: string; let portText = '*';
  if (target.startsWith('[')) {
    const close = target.indexOf(']');
    if (close < 0) throw new NetRuleError(`--allow-net ${rule}: missing ']'`);
    hostText = target.slice(1, close);
    const rest = target.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw new NetRuleError(`--allow-net ${rule}: expected :PORTS after ']'`);
      portText = rest.slice(1);
    }
    const [a, len] = hostText.split('/');
    const ip = parseIpLoose(a);
    if (!ip || ip.tag !== 'ipv6') throw new NetRuleError(`--allow-net ${rule}: ${JSON.stringify(a)} is not an IPv6 address`);
    const [lo, hi] = parsePorts(portText, rule);
    // Addresses are matched in canonical form, so an IPv4-mapped rule is an IPv4 rule.
    if (isIpv4Mapped(ip) && (len === undefined || Number(len) >= 96)) {
      const v4len = len === undefined ? undefined : String(Number(len) - 96);
      return { kind, net: prefix(canonicalIp(ip), v4len, rule), host: null, portMin: lo, portMax: hi, resolved: new Set() };
    }
    return { kind, net: prefix(ip, len, rule), host: null, portMin: lo, portMax: hi, resolved: new Set() };
  }
  const colons = target.split(':').length - 1;
  if (colons > 1) throw new NetRuleError(`--allow-net ${rule}: write IPv6 addresses in brackets, e.g. [::1]:8080`);
  const colon = target.indexOf(':');
  hostText = colon >= 0 ? target.slice(0, colon) : target;
  if (colon >= 0) portText = target.slice(colon + 1);
  const [lo, hi] = parsePorts(portText, rule);
  if (hostText === '*') return { kind, net: null, host: null, portMin: lo, portMax: hi, resolved: new Set() };
  const slash = hostText.indexOf('/');
  const addrText = slash >= 0 ? hostText.slice(0, slash) : hostText;
  const ip = parseIpLoose(addrText);
  if (ip) return { kind, net: prefix(canonicalIp(ip), slash >= 0 ? hostText.slice(slash + 1) : undefined, rule), host: null, portMin: lo, portMax: hi, resolved: new Set() };
  if (slash >= 0) throw new NetRuleError(`--allow-net ${rule}: ${JSON.stringify(addrText)} is not an IP address (a prefix length needs one)`);
  const name = normalizeName(hostText);
  if (!HOSTNAME.test(name)) throw new NetRuleError(`--allow-net ${rule}: ${JSON.stringify(hostText)} is neither an address nor a hostname`);
  if (kind !== 'connect' && kind !== 'udp') throw new NetRuleError(`--allow-net ${rule}: hostnames are allowed only in connect and udp rules`);
  return { kind, net: null, host: name, portMin: lo, portMax: hi, resolved: new Set() };
}

function ruleMatches(r: NetRule, ip: IpAddress, port: number, scopeId: number): boolean {
  if (port < r.portMin || port > r.portMax) return false;
  if (r.host === null && r.net === null) return true;
  if (scopeId !== 0) return false; // the rule names no interface
  if (r.host !== null) return r.resolved.has(ipToString(ip));
  if (r.net === null) return false;
  if (r.net.family !== ip.tag) return false;
  const bits = ip.tag === 'ipv4' ? 32 : 128;
  const mask = r.net.len === 0 ? 0n : ((1n << BigInt(r.net.len)) - 1n) << BigInt(bits - r.net.len);
  return (ipToBigInt(ip) & mask) === r.net.base;
}

export class NetworkPolicy {
  readonly rules: NetRule[];
  readonly inheritNetwork: boolean;
  readonly allowIpNameLookup: boolean;
  private readonly callback: SocketAddrCheck | null;
  /** Lookups are numbered as they start, so that an answer to an older query never replaces a newer one. */
  private lookupClock = 0;
  private readonly answeredAt = new Map<string, number>();

  constructor(cfg: NetworkConfig = {}) {
    this.rules = (cfg.allow ?? []).map(parseNetRule);
    this.inheritNetwork = !!cfg.inheritNetwork;
    this.allowIpNameLookup = !!cfg.allowIpNameLookup;
    this.callback = cfg.check ?? null;
  }

  /** True when nothing at all can be granted (no OS socket will ever be opened). */
  get deniesAll(): boolean {
    return !this.inheritNetwork && this.rules.length === 0 && this.callback === null;
  }

  private byRules(sa: IpSocketAddress, use: SocketAddrUse): { ip: IpAddress; port: number; scopeId: number; ok: boolean } {
    const ip = canonicalIp(ipOf(sa));
    const port = sa.val.port;
    const scopeId = ip.tag === 'ipv6' && sa.tag === 'ipv6' ? sa.val.scopeId >>> 0 : 0;
    // The unspecified address is never a destination (Linux routes 0.0.0.0 to this host).
    const destination = use === 'tcp-connect' || use === 'udp-send';
    if (destination && isUnspecified(ip)) return { ip, port, scopeId, ok: false };
    if (this.inheritNetwork) return { ip, port, scopeId, ok: true };
    for (const r of this.rules) if (KIND_USES[r.kind].includes(use) && ruleMatches(r, ip, port, scopeId)) return { ip, port, scopeId, ok: true };
    return { ip, port, scopeId, ok: false };
  }

  /** What the callback is shown (built only when it is asked). */
  private static checked(r: { ip: IpAddress; port: number; scopeId: number }): CheckedAddress {
    const c: CheckedAddress = { family: r.ip.tag, address: ipToString(r.ip), port: r.port };
    if (r.ip.tag === 'ipv6') c.scopeId = r.scopeId;
    return c;
  }

  /**
   * Checks a use that WIT makes synchronous (bind, listen, UDP connect). A
   * callback answering with a Promise counts as a denial here.
   */
  allowsSync(sa: IpSocketAddress, use: SocketAddrUse): boolean {
    const r = this.byRules(sa, use);
    if (r.ok) return true;
    if (!this.callback || ((use === 'tcp-connect' || use === 'udp-send') && isUnspecified(r.ip))) return false;
    let answer: boolean | Promise<boolean>;
    try { answer = this.callback(NetworkPolicy.checked(r), use); } catch { return false; }
    return answer === true;
  }

  /** Checks any use; the callback may answer asynchronously. A throwing or rejecting callback denies. */
  async allows(sa: IpSocketAddress, use: SocketAddrUse): Promise<boolean> {
    const r = this.byRules(sa, use);
    if (r.ok) return true;
    if (!this.callback || ((use === 'tcp-connect' || use === 'udp-send') && isUnspecified(r.ip))) return false;
    try {
      return (await this.callback(NetworkPolicy.checked(r), use)) === true;
    } catch {
      return false;
    }
  }

  /**
   * The implicit bind of an unbound socket about to send to / connect to
   * `dest`: allowed when a rule allows the destination, else checked as a
   * bind of the wildcard address (rules, then the callback).
   */
  async allowsImplicitBind(family: IpAddressFamily, bindUse: SocketAddrUse, dest: IpSocketAddress, destUse: SocketAddrUse): Promise<boolean> {
    if (this.byRules(dest, destUse).ok) return true;
    return this.allows(wildcard(family), bindUse);
  }

  /** allowsImplicitBind for UDP connect (synchronous in WIT). */
  allowsImplicitBindSync(family: IpAddressFamily, bindUse: SocketAddrUse, dest: IpSocketAddress, destUses: SocketAddrUse[]): boolean {
    if (destUses.some((u) => this.byRules(dest, u).ok)) return true;
    return this.allowsSync(wildcard(family), bindUse);
  }

  /** May the guest resolve `name`? (allowIpNameLookup, or a hostname rule naming it.) */
  lookupAllowed(name: string): boolean {
    if (this.allowIpNameLookup) return true;
    const n = normalizeName(name);
    return this.rules.some((r) => r.host === n);
  }

  /** Numbers a lookup as it starts (pass the number to recordLookup). */
  lookupStarted(): number { return ++this.lookupClock; }

  /**
   * Records the answer of Weir's lookup of `name`: hostname rules for it now
   * match exactly these addresses, and no longer those of earlier answers
   * (answers replace, never accumulate). `started` (from lookupStarted) keeps
   * a slow answer to an older query from replacing a newer one. A check
   * already made against the previous answer stands (its connect proceeds).
   */
  recordLookup(name: string, ips: IpAddress[], started: number = this.lookupStarted()): void {
    const n = normalizeName(name);
    if (!this.rules.some((r) => r.host === n)) return;
    if ((this.answeredAt.get(n) ?? 0) > started) return;
    this.answeredAt.set(n, started);
    const answer = new Set(ips.map((ip) => ipToString(canonicalIp(ip))));
    for (const r of this.rules) if (r.host === n) r.resolved = answer;
  }
}

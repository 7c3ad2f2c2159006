// The network of one WASI host: its policy, its name resolver, and every
// socket the guest holds (so that closing the host closes them all).

import { canonicalIp, ipToString, parseIp, parseIpLoose, type IpAddress } from './address.ts';
import { LookupError, lookupErrorCode } from './errors.ts';
import { NetworkPolicy, type NetworkConfig } from './policy.ts';

interface Closable { destroy(force?: boolean): void }

const LABELS = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/;

async function osResolve(name: string): Promise<string[]> {
  // Loaded on first use (a plain `weir run` must not pay for node:dns).
  const { lookup } = process.getBuiltinModule('node:dns/promises') as typeof import('node:dns/promises');
  const r = await lookup(name, { all: true, order: 'verbatim' });
  return r.map((a) => a.address);
}

export class Network {
  readonly policy: NetworkPolicy;
  private readonly resolver: (name: string) => Promise<string[]>;
  private readonly sockets = new Set<Closable>();

  /** Throws NetRuleError for a malformed rule. */
  constructor(cfg: NetworkConfig = {}) {
    this.policy = new NetworkPolicy(cfg);
    this.resolver = cfg.resolver ?? osResolve;
  }

  track(s: Closable): void { this.sockets.add(s); }
  untrack(s: Closable): void { this.sockets.delete(s); }

  /** Number of sockets the guest holds (created, not yet dropped). */
  get socketCount(): number { return this.sockets.size; }

  /** Closes every socket at once (host shutdown: unsent data is dropped). */
  close(): void {
    for (const s of [...this.sockets]) s.destroy(true);
    this.sockets.clear();
  }

  /**
   * The synchronous part of resolveAddresses (for 0.2's resolve-addresses,
   * whose argument and grant errors are immediate): validates the name
   * (invalid-argument) and checks the grant (access-denied). Throws LookupError.
   */
  checkLookup(name: string): { literal: IpAddress | null; ascii: string } {
    if (typeof name !== 'string' || name.length === 0 || name.length > 1024) throw new LookupError('invalid-argument');
    let literal: IpAddress | null = null;
    if (name.startsWith('[') && name.endsWith(']')) {
      literal = parseIp(name.slice(1, -1));
      if (!literal || literal.tag !== 'ipv6') throw new LookupError('invalid-argument');
    } else {
      literal = parseIpLoose(name);
    }
    let ascii = '';
    if (!literal) {
      ascii = (process.getBuiltinModule('node:url') as typeof import('node:url')).domainToASCII(name).toLowerCase();
      if (ascii === '' || !LABELS.test(ascii)) throw new LookupError('invalid-argument');
    }
    if (!this.policy.lookupAllowed(literal ? name : ascii)) throw new LookupError('access-denied');
    return { literal, ascii };
  }

  /**
   * ip-name-lookup.resolve-addresses: validates the name (invalid-argument),
   * checks the grant (access-denied: no query is sent), returns IP literals
   * as they are, IDNA-encodes other names and resolves them. Results are
   * canonical (no IPv4-mapped addresses), de-duplicated, never empty. Throws
   * LookupError.
   */
  async resolveAddresses(name: string): Promise<IpAddress[]> {
    const { literal, ascii } = this.checkLookup(name);
    if (literal) return [canonicalIp(literal)];
    const started = this.policy.lookupStarted();
    let answers: string[];
    try {
      answers = await this.resolver(ascii);
    } catch (e) {
      throw new LookupError(lookupErrorCode(e));
    }
    const seen = new Set<string>();
    const out: IpAddress[] = [];
    for (const a of answers) {
      const ip = parseIp(a);
      if (!ip) continue;
      const c = canonicalIp(ip);
      const key = ipToString(c);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(c);
    }
    if (out.length === 0) throw new LookupError('name-unresolvable');
    this.policy.recordLookup(ascii, out, started);
    return out;
  }
}

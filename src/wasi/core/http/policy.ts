// Outbound HTTP policy: default deny. A request leaves only when its
// destination matches one of the granted patterns (`--allow-outbound`).
//
// Pattern grammar (one per flag, repeatable):
//   PATTERN := HOST [ ":" PORT ]
//   HOST    := `*`                 any host
//            | `*.` NAME           any subdomain of NAME: one or more whole labels
//                                  before it (`*.example.com` matches `a.example.com`
//                                  and `a.b.example.com`, not `example.com`)
//            | NAME                exactly that hostname
//            | IPv4 | `[` IPv6 `]` exactly that address
//              Compared case-insensitively, as written in the request's
//              authority (before DNS).
//   PORT    := a decimal port, or `*` (any port). Omitted: any port.
// `*` appears nowhere else: not inside a label (`api.*`, `a*.b`), and not in
// an IP address (`10.0.0.*` would otherwise also match the hostname
// `10.0.0.7.attacker.example`); such patterns are refused.
// The single pattern `*` allows every destination (as `-S http` does).

export interface OutboundRule {
  /** `any`: every host; `exact`: `host` only; `subdomain`: names ending in `.host`. */
  match: 'any' | 'exact' | 'subdomain';
  /** Lower case; IPv6 without brackets. Empty for `any`. */
  host: string;
  port: number | null;
  source: string;
}

/** One or more DNS labels (what `*.` may stand for). */
const LABELS = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

function ruleMatches(r: OutboundRule, h: string): boolean {
  if (r.match === 'any') return true;
  if (r.match === 'exact') return h === r.host;
  return h.length > r.host.length + 1 && h.endsWith('.' + r.host) && LABELS.test(h.slice(0, h.length - r.host.length - 1));
}

export class OutboundPolicy {
  private readonly rules: OutboundRule[];
  readonly allowAll: boolean;
  constructor(patterns: readonly string[] = [], allowAll = false) {
    this.rules = patterns.map(parseOutboundPattern);
    this.allowAll = allowAll || patterns.some((p) => p.trim() === '*');
  }
  static denyAll(): OutboundPolicy { return new OutboundPolicy([]); }
  static allowEverything(): OutboundPolicy { return new OutboundPolicy([], true); }
  /** Whether a request to `host:port` may leave. `host` is as in the URI (IPv6 without brackets). */
  allows(_scheme: string, host: string, port: number): boolean {
    if (this.allowAll) return true;
    const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
    return this.rules.some((r) => (r.port === null || r.port === port) && ruleMatches(r, h));
  }
  get patterns(): string[] { return this.rules.map((r) => r.source); }
}

/** Parse one pattern; throws an Error with a user-facing message when malformed. */
export function parseOutboundPattern(pattern: string): OutboundRule {
  const p = pattern.trim();
  if (p === '') throw new Error('--allow-outbound: empty pattern');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) {
    throw new Error(`--allow-outbound ${pattern}: give HOST[:PORT] without a scheme`);
  }
  let host: string;
  let portText: string | null = null;
  if (p.startsWith('[')) {
    const end = p.indexOf(']');
    if (end < 0) throw new Error(`--allow-outbound ${pattern}: unclosed '['`);
    host = p.slice(1, end);
    const rest = p.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw new Error(`--allow-outbound ${pattern}: expected ':PORT' after ']'`);
      portText = rest.slice(1);
    }
  } else {
    const colon = p.lastIndexOf(':');
    if (colon >= 0 && p.indexOf(':') !== colon) {
      throw new Error(`--allow-outbound ${pattern}: put an IPv6 address in brackets, e.g. [::1]:8080`);
    }
    host = colon >= 0 ? p.slice(0, colon) : p;
    portText = colon >= 0 ? p.slice(colon + 1) : null;
  }
  if (host === '') throw new Error(`--allow-outbound ${pattern}: missing host`);
  if (!/^[A-Za-z0-9*._:%-]+$/.test(host)) throw new Error(`--allow-outbound ${pattern}: invalid host`);
  let port: number | null = null;
  if (portText !== null && portText !== '*') {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
      throw new Error(`--allow-outbound ${pattern}: invalid port '${portText}'`);
    }
    port = Number(portText);
  }
  const h = host.toLowerCase();
  if (h === '*') return { match: 'any', host: '', port, source: p };
  const wild = h.startsWith('*.');
  const name = wild ? h.slice(2) : h;
  // An IPv6 literal, or a name that reads as an IPv4 address (its last label,
  // or every label but a `*`, numeric): no wildcard may widen it.
  const numeric = (l: string) => /^(\d+|0x[0-9a-f]*)$/.test(l);
  const labels = h.split('.');
  const ipLiteral = p.startsWith('[') || numeric(labels[labels.length - 1]) || labels.every((l) => l === '*' || numeric(l));
  if (name.includes('*') || (wild && ipLiteral)) {
    throw new Error(`--allow-outbound ${pattern}: '*' may only be the whole host ('*'), the whole first label of a hostname ('*.example.com') or the whole port ('HOST:*')${ipLiteral ? '; an IP address takes no wildcard (grant each address)' : ''}`);
  }
  if (name === '' || name.startsWith('.')) throw new Error(`--allow-outbound ${pattern}: invalid host`);
  return { match: wild ? 'subdomain' : 'exact', host: name, port, source: p };
}

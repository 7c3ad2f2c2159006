// Outbound HTTP policy: default deny. A request leaves only when its
// destination matches one of the granted patterns (`--allow-outbound`).
//
// Pattern grammar (one per flag, repeatable):
//   PATTERN := HOST [ ":" PORT ]
//   HOST    := a hostname or IP address, `*` matching any run of characters
//              (so `*.example.com` matches `a.b.example.com` but not
//              `example.com`); an IPv6 address goes in brackets: `[::1]`.
//              Compared case-insensitively.
//   PORT    := a decimal port, or `*` (any port). Omitted: any port.
// The single pattern `*` allows every destination (as `-S http` does).

export interface OutboundRule { host: RegExp; port: number | null; source: string }

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
    return this.rules.some((r) => (r.port === null || r.port === port) && r.host.test(h));
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
  const re = new RegExp('^' + host.toLowerCase().split('*').map(escapeRe).join('.*') + '$');
  return { host: re, port, source: p };
}

function escapeRe(s: string): string { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

// Import/export name grammar (Explainer.md "Import and Export Definitions"):
// kebab-case labels, annotated plain names, interface names, strong uniqueness,
// and semver matching of interface versions.

const FIRST = /^(?:[a-z][0-9a-z]*|[A-Z][0-9A-Z]*)$/;
const FRAG = /^(?:[0-9a-z]+|[0-9A-Z]+)$/;

export function isLabel(s: string): boolean {
  if (s.length === 0) return false;
  const parts = s.split('-');
  if (!FIRST.test(parts[0])) return false;
  for (let i = 1; i < parts.length; i++) if (!FRAG.test(parts[i])) return false;
  return true;
}

function isWords(s: string): boolean {
  const parts = s.split('-');
  if (!/^[a-z][0-9a-z]*$/.test(parts[0])) return false;
  for (let i = 1; i < parts.length; i++) if (!/^[0-9a-z]+$/.test(parts[i])) return false;
  return true;
}

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;
const CANONVERSION = /^(?:[1-9]\d*|0\.[1-9]\d*|0\.0\.[1-9]\d*|0\.0\.0)$/;

export interface ParsedName {
  kind: 'label' | 'constructor' | 'method' | 'static' | 'interface';
  resource?: string;
  label?: string;
  /** interface names: `ns:pkg/iface` without version */
  base?: string;
  version?: string;
}

/** Parse an extern name; returns null when it is not in the grammar. */
export function parseExternName(name: string): ParsedName | null {
  if (name.startsWith('[constructor]')) {
    const l = name.slice(13);
    return isLabel(l) ? { kind: 'constructor', resource: l } : null;
  }
  for (const kind of ['method', 'static'] as const) {
    const p = `[${kind}]`;
    if (name.startsWith(p)) {
      const rest = name.slice(p.length);
      const dot = rest.indexOf('.');
      if (dot < 0) return null;
      const r = rest.slice(0, dot), l = rest.slice(dot + 1);
      return isLabel(r) && isLabel(l) ? { kind, resource: r, label: l } : null;
    }
  }
  if (name.includes(':')) return parseInterfaceName(name);
  return isLabel(name) ? { kind: 'label', label: name } : null;
}

export function parseInterfaceName(name: string): ParsedName | null {
  let base = name, version: string | undefined;
  const at = name.indexOf('@');
  if (at >= 0) {
    base = name.slice(0, at);
    version = name.slice(at + 1);
    if (!SEMVER.test(version) && !CANONVERSION.test(version)) return null;
  }
  const colon = base.indexOf(':');
  const slash = base.indexOf('/', colon);
  if (colon <= 0 || slash < 0) return null;
  const ns = base.slice(0, colon);
  const pkg = base.slice(colon + 1, slash);
  const iface = base.slice(slash + 1);
  if (!isWords(ns) || !isWords(pkg) || !isLabel(iface)) return null;
  return { kind: 'interface', base, version };
}

/** Canonical form used to test strong uniqueness. */
export function uniquenessKey(name: string): string {
  let n = name.toLowerCase();
  const m = /^\[(method|static)\]([^.]*)\.(.*)$/.exec(n);
  if (m && m[2] === m[3]) return m[2];
  if (n.startsWith('[method]')) n = n.slice(8);
  else if (n.startsWith('[static]')) n = n.slice(8);
  return n;
}

interface Semver { major: number; minor: number; patch: number; pre: string }
function parseSemver(v: string): Semver | null {
  const m = /^(\d+)\.(\d+)\.(\d+)(?:-([^+]*))?/.exec(v);
  return m ? { major: +m[1], minor: +m[2], patch: +m[3], pre: m[4] ?? '' } : null;
}

/**
 * Whether a provided version satisfies a requested one under semver
 * compatibility: same major (or same minor when major is 0, same patch when
 * 0.0), and provided >= requested is not required — any compatible release
 * serves, since WASI minor releases are additive for the importer's use.
 */
export function versionsCompatible(requested: string, provided: string): boolean {
  if (requested === provided) return true;
  const a = parseSemver(requested), b = parseSemver(provided);
  if (!a || !b || a.pre || b.pre) return false;
  if (a.major !== b.major) return false;
  if (a.major > 0) return true;
  if (a.minor !== b.minor) return false;
  if (a.minor > 0) return true;
  return a.patch === b.patch;
}

/** Find a key in `available` that satisfies import `name` (exact first, then semver-compatible, highest version). */
export function matchName<T>(name: string, available: Map<string, T> | Record<string, T>): string | undefined {
  const has = available instanceof Map ? (k: string) => available.has(k) : (k: string) => Object.prototype.hasOwnProperty.call(available, k);
  if (has(name)) return name;
  const at = name.indexOf('@');
  if (at < 0) return undefined;
  const base = name.slice(0, at), want = name.slice(at + 1);
  let best: string | undefined, bestV: Semver | null = null;
  const keys = available instanceof Map ? available.keys() : Object.keys(available);
  for (const k of keys) {
    const kat = k.indexOf('@');
    if (kat < 0 || k.slice(0, kat) !== base) continue;
    const v = k.slice(kat + 1);
    if (!versionsCompatible(want, v)) continue;
    const sv = parseSemver(v);
    if (!bestV || (sv && (sv.minor > bestV.minor || (sv.minor === bestV.minor && sv.patch > bestV.patch)))) { best = k; bestV = sv; }
  }
  return best;
}

export function toLowerCamel(label: string): string {
  const parts = label.split('-');
  let out = parts[0] === parts[0].toUpperCase() ? parts[0].toLowerCase() : parts[0];
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i];
    out += p === p.toUpperCase() ? p : p[0].toUpperCase() + p.slice(1);
  }
  return out;
}

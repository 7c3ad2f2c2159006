// wasi:http@0.2 `fields`: the 0.2 names (`entries` instead of `copy-all`, no
// `get-and-delete`) and the 0.2 header-error (invalid-syntax | forbidden |
// immutable).
//
// TODO(H4/H3): the contract puts the face-neutral Fields in
// core/http/fields.ts (H3). It had not landed when this was written, so a
// minimal Fields with the same method names lives here; replace it with an
// import of the core one.

import type { HostResource } from '../../runtime/resources.ts';
import type { FieldEntries } from '../core/http/client.ts';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Names a guest may not set: hop-by-hop and connection-management fields the host owns. */
const FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization',
  'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);

class FieldError extends Error {
  override name = 'HeaderError';
  readonly code: HeaderError['tag'];
  constructor(code: HeaderError['tag']) { super(code); this.code = code; }
}

/** RFC 9110 field-value: visible ASCII, obs-text, SP and HTAB inside, no CR, LF or NUL; no leading/trailing SP/HTAB. */
function validValue(v: Uint8Array): boolean {
  for (let i = 0; i < v.length; i++) {
    const b = v[i];
    if (b === 0x7f || (b < 0x20 && b !== 0x09)) return false;
  }
  return v.length === 0 || (v[0] !== 0x20 && v[0] !== 0x09 && v[v.length - 1] !== 0x20 && v[v.length - 1] !== 0x09);
}

/** Ordered header entries (name as given, value bytes). */
export class Fields {
  immutable = false;
  private list: [string, Uint8Array][] = [];
  static fromList(entries: FieldEntries): Fields {
    const f = new Fields();
    for (const [n, v] of entries) f.append(n, v);
    return f;
  }
  private checkName(name: string): void {
    if (!TOKEN.test(name)) throw new FieldError('invalid-syntax');
    if (FORBIDDEN.has(name.toLowerCase())) throw new FieldError('forbidden');
  }
  private mutable(): void { if (this.immutable) throw new FieldError('immutable'); }
  get(name: string): Uint8Array[] {
    const l = name.toLowerCase();
    return this.list.filter(([k]) => k.toLowerCase() === l).map(([, v]) => v.slice());
  }
  has(name: string): boolean {
    const l = name.toLowerCase();
    return this.list.some(([k]) => k.toLowerCase() === l);
  }
  set(name: string, values: Uint8Array[]): void {
    this.mutable();
    this.checkName(name);
    for (const v of values) if (!validValue(v)) throw new FieldError('invalid-syntax');
    const l = name.toLowerCase();
    this.list = this.list.filter(([k]) => k.toLowerCase() !== l);
    for (const v of values) this.list.push([name, v.slice()]);
  }
  delete(name: string): void {
    this.mutable();
    this.checkName(name);
    const l = name.toLowerCase();
    this.list = this.list.filter(([k]) => k.toLowerCase() !== l);
  }
  append(name: string, value: Uint8Array): void {
    this.mutable();
    this.checkName(name);
    if (!validValue(value)) throw new FieldError('invalid-syntax');
    this.list.push([name, value.slice()]);
  }
  copyAll(): FieldEntries { return this.list.map(([k, v]) => [k, v.slice()]); }
  clone(): Fields {
    const f = new Fields();
    f.list = this.copyAll();
    return f;
  }
}

export type HeaderError = { tag: 'invalid-syntax' | 'forbidden' | 'immutable' };

/** A `fields` resource value: the core Fields (sealed when it became a message's headers). */
export class FieldsBox {
  readonly fields: Fields;
  constructor(fields: Fields) { this.fields = fields; }
  /** Headers moved into a message become immutable (the guest sees them only as a child). */
  seal(): FieldsBox {
    this.fields.immutable = true;
    return this;
  }
}

/** Fields of a message that came from the network: the host-owned (forbidden) names are left out. */
export function fieldsFromEntries(entries: FieldEntries, immutable: boolean): FieldsBox {
  const f = new Fields();
  for (const [n, v] of entries) {
    try { f.append(n, v); } catch { /* forbidden or malformed: not the guest's to see */ }
  }
  if (immutable) f.immutable = true;
  return new FieldsBox(f);
}

/** The core's header error (any shape it throws) as the 0.2 case. */
function headerError(e: unknown): { tag: 'err'; val: HeaderError } {
  const c = (e as { code?: unknown; tag?: unknown } | null);
  const tag = typeof c?.code === 'string' ? c.code : typeof c?.tag === 'string' ? c.tag
    : typeof (c?.code as { tag?: unknown } | undefined)?.tag === 'string' ? (c!.code as { tag: string }).tag : '';
  if (tag === 'forbidden' || tag === 'immutable') return { tag: 'err', val: { tag } };
  return { tag: 'err', val: { tag: 'invalid-syntax' } };
}

function attempt(f: () => void): { tag: 'ok' } | { tag: 'err'; val: HeaderError } {
  try {
    f();
    return { tag: 'ok' };
  } catch (e) {
    if (e instanceof Error && !('code' in e) && e.name !== 'HeaderError') throw e;
    return headerError(e);
  }
}

export function fieldsImports(resource: HostResource): Record<string, unknown> {
  return {
    fields: resource,
    '[constructor]fields': () => new FieldsBox(new Fields()),
    '[static]fields.from-list': (entries: [string, Uint8Array][]) => {
      let f: Fields | null = null;
      const r = attempt(() => { f = Fields.fromList(entries); });
      return r.tag === 'ok' ? { tag: 'ok', val: new FieldsBox(f!) } : r;
    },
    '[method]fields.get': (b: FieldsBox, name: string) => b.fields.get(name),
    '[method]fields.has': (b: FieldsBox, name: string) => b.fields.has(name),
    '[method]fields.set': (b: FieldsBox, name: string, values: Uint8Array[]) => attempt(() => b.fields.set(name, values)),
    '[method]fields.delete': (b: FieldsBox, name: string) => attempt(() => b.fields.delete(name)),
    '[method]fields.append': (b: FieldsBox, name: string, value: Uint8Array) => attempt(() => b.fields.append(name, value)),
    '[method]fields.entries': (b: FieldsBox) => b.fields.copyAll(),
    '[method]fields.clone': (b: FieldsBox) => new FieldsBox(b.fields.clone()),
  };
}

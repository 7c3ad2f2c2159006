// The face-neutral wasi:http `fields` (headers and trailers), shared by the
// 0.3 and 0.2 faces and the serve machinery.
//
// Entries keep their order and the name as first given (a later append of
// the same name in another case adopts the existing spelling, so one name
// has one spelling on the wire); names compare case-insensitively; repeated
// names stay separate entries. Validation follows RFC 9110 §5.1/§5.5:
// name = token, value = any bytes but CTLs other than HTAB (and DEL).
// The 9 forbidden names are connection-management fields the host owns.
// A Fields passed into a request/response (or received from the host) is
// immutable: every mutation fails with `immutable`.

/** Header or trailer entries: name as given, value bytes; order and repeats kept. */
export type FieldEntries = [string, Uint8Array][];

/** wasi:http `header-error` cases (0.3; 0.2 uses the first three). */
export type HeaderErrorTag = 'invalid-syntax' | 'forbidden' | 'immutable' | 'size-exceeded' | 'other';

export class HeaderError extends Error {
  override name = 'HeaderError';
  readonly tag: HeaderErrorTag;
  constructor(tag: HeaderErrorTag) { super(tag); this.tag = tag; }
}

export const FORBIDDEN_FIELDS: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization',
  'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings',
]);

/** Default limit on the bytes (names + values) one Fields may hold, as wasmtime's 128 KiB. */
export const DEFAULT_FIELDS_SIZE_LIMIT = 128 * 1024;

// tchar lookup for bytes 0..127
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) { TCHAR[c] = 1; TCHAR[c + 32] = 1; }

/** RFC 9110 token. */
export function isValidFieldName(name: string): boolean {
  const n = name.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** RFC 9110 field-value bytes: no CTL except HTAB, no DEL (obs-text allowed). */
export function isValidFieldValue(v: Uint8Array): boolean {
  for (let i = 0; i < v.length; i++) {
    const b = v[i];
    if ((b < 0x20 && b !== 0x09) || b === 0x7f) return false;
  }
  return true;
}

export function isForbiddenField(name: string): boolean {
  return FORBIDDEN_FIELDS.has(name.toLowerCase());
}

export class Fields {
  /** Mutations fail with `immutable` once set. */
  immutable = false;
  /** Byte limit (names + values); exceeding it gives `size-exceeded`. Always finite (Infinity means the default). */
  readonly limit: number;
  private entriesNow: FieldEntries;
  private size = 0;
  /** fromRawTrusted: name, value, name, value… (latin1 strings), turned into entries on first use */
  private raw: readonly string[] | null = null;

  constructor(limit: number = DEFAULT_FIELDS_SIZE_LIMIT) {
    this.limit = Number.isFinite(limit) && limit >= 0 ? limit : DEFAULT_FIELDS_SIZE_LIMIT;
    this.entriesNow = [];
  }

  private get list(): FieldEntries {
    if (this.raw !== null) this.materialize();
    return this.entriesNow;
  }

  private set list(l: FieldEntries) {
    this.raw = null;
    this.entriesNow = l;
  }

  private materialize(): void {
    const raw = this.raw!;
    this.raw = null;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (FORBIDDEN_FIELDS.has(raw[i].toLowerCase())) continue;
      this.push(raw[i], Buffer.from(raw[i + 1], 'latin1'));
    }
  }

  /**
   * fromTrusted over node's `rawHeaders` shape (name, value, … as latin1
   * strings), copied into entries only when first read: a server whose guest
   * never looks at the headers never pays for them. Immutable result.
   */
  static fromRawTrusted(raw: readonly string[], limit: number = DEFAULT_FIELDS_SIZE_LIMIT): Fields {
    const f = new Fields(limit);
    f.immutable = true;
    if (raw.length > 0) f.raw = raw;
    return f;
  }

  /** Validated construction (the WIT `from-list`): throws HeaderError. */
  static fromList(entries: FieldEntries, limit?: number): Fields {
    const f = new Fields(limit);
    for (const [n, v] of entries) f.append(n, v);
    return f;
  }

  /**
   * Entries the host received (e.g. from node:http), trusted as already
   * syntactically valid; forbidden names are dropped. Immutable result.
   * The entries are taken whatever their size (the host's own limits, such
   * as serve's --max-header-size, bounded them), but the limit stays finite:
   * a mutable copy (clone, or immutable = false) is held to it like any
   * guest-built Fields, so a guest cannot grow it without bound.
   */
  static fromTrusted(entries: FieldEntries, immutable = true, limit: number = DEFAULT_FIELDS_SIZE_LIMIT): Fields {
    const f = new Fields(limit);
    for (const e of entries) {
      if (FORBIDDEN_FIELDS.has(e[0].toLowerCase())) continue;
      f.push(e[0], e[1]);
    }
    f.immutable = immutable;
    return f;
  }

  get length(): number { return this.list.length; }

  private push(name: string, value: Uint8Array): void {
    const l = name.toLowerCase();
    const list = this.entriesNow;
    for (const e of list) {
      if (e[0].length === name.length && e[0].toLowerCase() === l) { name = e[0]; break; }
    }
    list.push([name, value]);
    this.size += name.length + value.length;
  }

  private checkName(name: string): void {
    if (!isValidFieldName(name)) throw new HeaderError('invalid-syntax');
    if (FORBIDDEN_FIELDS.has(name.toLowerCase())) throw new HeaderError('forbidden');
  }

  private mutable(): void {
    if (this.immutable) throw new HeaderError('immutable');
    if (this.raw !== null) this.materialize(); // (size is read before the list by some mutations)
  }

  get(name: string): Uint8Array[] {
    const l = name.toLowerCase();
    const out: Uint8Array[] = [];
    for (const [k, v] of this.list) if (k.length === l.length && k.toLowerCase() === l) out.push(v.slice());
    return out;
  }

  has(name: string): boolean {
    const l = name.toLowerCase();
    for (const [k] of this.list) if (k.length === l.length && k.toLowerCase() === l) return true;
    return false;
  }

  set(name: string, values: Uint8Array[]): void {
    this.mutable();
    this.checkName(name);
    let add = 0;
    for (const v of values) {
      if (!isValidFieldValue(v)) throw new HeaderError('invalid-syntax');
      add += name.length + v.length;
    }
    const removed = this.removed(name);
    if (this.size - removed + add > this.limit) throw new HeaderError('size-exceeded');
    this.remove(name);
    for (const v of values) this.push(name, v.slice());
  }

  delete(name: string): void {
    this.mutable();
    if (!isValidFieldName(name)) throw new HeaderError('invalid-syntax');
    this.remove(name);
  }

  getAndDelete(name: string): Uint8Array[] {
    this.mutable();
    if (!isValidFieldName(name)) throw new HeaderError('invalid-syntax');
    const values = this.get(name);
    this.remove(name);
    return values;
  }

  append(name: string, value: Uint8Array): void {
    this.mutable();
    this.checkName(name);
    if (!isValidFieldValue(value)) throw new HeaderError('invalid-syntax');
    if (this.size + name.length + value.length > this.limit) throw new HeaderError('size-exceeded');
    this.push(name, value.slice());
  }

  /** All entries in order (copies of the values). */
  copyAll(): FieldEntries {
    return this.list.map(([k, v]) => [k, v.slice()]);
  }

  /** All entries without copying, for the host (do not mutate). */
  entries(): readonly (readonly [string, Uint8Array])[] { return this.list; }

  /** A mutable deep copy, held to the same (finite) limit: it may start above it, but then only shrinks. */
  clone(): Fields {
    const f = new Fields(this.limit);
    f.list = this.copyAll();
    f.size = this.size;
    return f;
  }

  private removed(name: string): number {
    const l = name.toLowerCase();
    let n = 0;
    for (const [k, v] of this.list) if (k.toLowerCase() === l) n += k.length + v.length;
    return n;
  }

  private remove(name: string): void {
    const l = name.toLowerCase();
    if (!this.has(l)) return;
    const kept: FieldEntries = [];
    let size = 0;
    for (const e of this.list) {
      if (e[0].toLowerCase() === l) continue;
      kept.push(e);
      size += e[0].length + e[1].length;
    }
    this.list = kept;
    this.size = size;
  }
}

// JS value mapping helpers (docs/CONTRACTS.md "JS value mapping").

/**
 * kebab-case WIT name → lowerCamelCase JS key. Acronym words (all caps) stay
 * upper-case after the first word: `get-HTTP-method` → `getHTTPMethod`,
 * `HTTP-method` → `httpMethod`.
 */
export function lowerCamelCase(name: string): string {
  const words = name.split('-');
  let out = '';
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === '') continue;
    if (out === '') out = isAllUpper(w) ? w.toLowerCase() : w[0]!.toLowerCase() + w.slice(1);
    else out += isAllUpper(w) ? w : w[0]!.toUpperCase() + w.slice(1);
  }
  return out;
}

/** kebab-case → UpperCamelCase (for type names in messages / generated bindings). */
export function upperCamelCase(name: string): string {
  const l = lowerCamelCase(name);
  return l.length ? l[0]!.toUpperCase() + l.slice(1) : l;
}

function isAllUpper(w: string): boolean {
  return w.length > 1 && w === w.toUpperCase() && w !== w.toLowerCase();
}

/** Short description of a JS value for TypeError messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'undefined': return 'undefined';
    case 'string': return v.length > 40 ? `string "${v.slice(0, 37)}..."` : `string ${JSON.stringify(v)}`;
    case 'number': return `number ${v}`;
    case 'bigint': return `bigint ${v}n`;
    case 'boolean': return `boolean ${v}`;
    case 'symbol': return 'a symbol';
    case 'function': return 'a function';
  }
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  const ctor = (v as object).constructor;
  return ctor && ctor !== Object && typeof ctor.name === 'string' && ctor.name ? `a ${ctor.name}` : 'an object';
}

export function typeError(expected: string, v: unknown): TypeError {
  return new TypeError(`expected ${expected}, got ${describe(v)}`);
}

/** Prefix a lowering error with where it happened (record field, list index, argument...). */
export function withPath(e: unknown, where: string): unknown {
  if (e instanceof TypeError || e instanceof RangeError) {
    e.message = `${where}: ${e.message}`;
  }
  return e;
}

// ---- float bit reinterpretation (shared scratch) ----
const scratch = new ArrayBuffer(8);
const f32s = new Float32Array(scratch);
const u32s = new Uint32Array(scratch);
const f64s = new Float64Array(scratch);
const i64s = new BigInt64Array(scratch);

/** i32.reinterpret_f32 (as an unsigned number) */
export function f32ToBits(f: number): number {
  f32s[0] = f;
  return u32s[0]!;
}
/** f32.reinterpret_i32, with NaNs canonicalized (decode_i32_as_float) */
export function bitsToF32(i: number): number {
  u32s[0] = i;
  return f32s[0]!;
}
/** i64.reinterpret_f64 (signed bigint) */
export function f64ToBits(f: number): bigint {
  f64s[0] = f;
  return i64s[0]!;
}
/** f64.reinterpret_i64 */
export function bitsToF64(i: bigint): number {
  i64s[0] = BigInt.asIntN(64, i);
  return f64s[0]!;
}

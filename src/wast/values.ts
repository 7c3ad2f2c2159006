// Component-level constant values in .wast files (`(u32.const 1)`,
// `(record.const (field "x" ...))`, ...): parsing, conversion to the JS value
// mapping of docs/CONTRACTS.md, and structural matching of call results.
//
// The runner does not know the function types, so conversion is driven by the
// value syntax alone: 64-bit integers become bigint, other numbers number,
// record field and flag names are lowerCamelCased.

import { type SExpr, isAtom, isString, stringText, WastSyntaxError } from './sexpr.ts';

export type IntType = 'u8' | 's8' | 'u16' | 's16' | 'u32' | 's32' | 'u64' | 's64';
export type FloatType = 'f32' | 'f64';

export type WastValue =
  | { t: 'bool'; v: boolean }
  | { t: 'int'; ty: IntType; v: bigint }
  | { t: 'float'; ty: FloatType; v: number; nan: 'canonical' | 'arithmetic' | 'any' | null }
  | { t: 'char'; v: string }
  | { t: 'string'; v: string }
  | { t: 'list'; items: WastValue[] }
  | { t: 'record'; fields: { name: string; v: WastValue }[] }
  | { t: 'tuple'; items: WastValue[] }
  | { t: 'variant'; tag: string; payload: WastValue | null }
  | { t: 'enum'; tag: string }
  | { t: 'flags'; names: string[] }
  | { t: 'option'; some: WastValue | null }
  | { t: 'result'; ok: boolean; payload: WastValue | null };

const INT_BITS: Record<IntType, number> = { u8: 8, s8: 8, u16: 16, s16: 16, u32: 32, s32: 32, u64: 64, s64: 64 };

function fail(msg: string, e: SExpr | undefined): never {
  throw new WastSyntaxError(msg, e?.start ?? 0);
}

// ---------------------------------------------------------------- parsing

/** Parses one parenthesised value form, e.g. `(u32.const 1)`. */
export function parseValue(e: SExpr): WastValue {
  if (e.kind !== 'list' || !isAtom(e.items[0])) fail('expected a value form like (u32.const 1)', e);
  return parseValueParts(e.items[0].text, e.items.slice(1), e);
}

/**
 * A value written either as one parenthesised form or inline as a keyword and
 * its arguments: `(field "k" str.const "a")` is the same as `(field "k" (str.const "a"))`.
 */
function parseInlineValue(items: SExpr[], at: SExpr): WastValue {
  if (items.length === 1 && items[0]!.kind === 'list') return parseValue(items[0]!);
  const head = items[0];
  if (!isAtom(head)) fail('expected a value', at);
  return parseValueParts(head.text, items.slice(1), at);
}

function oneString(args: SExpr[], at: SExpr, what: string): string {
  const s = args[0];
  if (args.length !== 1 || !isString(s)) fail(`${what} expects one string`, at);
  return stringText(s);
}

function optionalPayload(args: SExpr[], at: SExpr): WastValue | null {
  if (args.length === 0) return null;
  return parseInlineValue(args, at);
}

export function parseValueParts(head: string, args: SExpr[], at: SExpr): WastValue {
  const dot = head.indexOf('.');
  const prefix = dot < 0 ? head : head.slice(0, dot);
  if (head.endsWith('.const') && prefix in INT_BITS) {
    const tok = args[0];
    if (args.length !== 1 || !isAtom(tok)) fail(`${head} expects one number`, at);
    return { t: 'int', ty: prefix as IntType, v: parseInt(tok.text, prefix as IntType, tok) };
  }
  switch (head) {
    case 'f32.const':
    case 'f64.const': {
      const tok = args[0];
      if (args.length !== 1 || !isAtom(tok)) fail(`${head} expects one number`, at);
      const ty = prefix as FloatType;
      const { v, nan } = parseFloatLit(tok.text, tok);
      return { t: 'float', ty, v: ty === 'f32' ? Math.fround(v) : v, nan };
    }
    case 'bool.const': {
      const tok = args[0];
      if (args.length !== 1 || !isAtom(tok) || (tok.text !== 'true' && tok.text !== 'false')) {
        fail('bool.const expects true or false', at);
      }
      return { t: 'bool', v: tok.text === 'true' };
    }
    case 'char.const': {
      const s = oneString(args, at, head);
      if ([...s].length !== 1) fail('char.const expects exactly one character', at);
      return { t: 'char', v: s };
    }
    case 'str.const':
    case 'string.const':
      return { t: 'string', v: oneString(args, at, head) };
    case 'list.const':
      return { t: 'list', items: args.map(parseValue) };
    case 'tuple.const':
      return { t: 'tuple', items: args.map(parseValue) };
    case 'record.const':
      return {
        t: 'record',
        fields: args.map((f) => {
          if (f.kind !== 'list' || !isAtom(f.items[0], 'field') || !isString(f.items[1])) {
            fail('record.const expects (field "name" value) items', f);
          }
          return { name: stringText(f.items[1]), v: parseInlineValue(f.items.slice(2), f) };
        }),
      };
    case 'variant.const': {
      const tag = args[0];
      if (!isString(tag)) fail('variant.const expects a case name', at);
      return { t: 'variant', tag: stringText(tag), payload: optionalPayload(args.slice(1), at) };
    }
    case 'enum.const':
      return { t: 'enum', tag: oneString(args, at, head) };
    case 'flags.const':
      return {
        t: 'flags',
        names: args.map((a) => {
          if (!isString(a)) fail('flags.const expects strings', a);
          return stringText(a);
        }),
      };
    case 'option.none':
      if (args.length !== 0) fail('option.none takes no payload', at);
      return { t: 'option', some: null };
    case 'option.some':
      return { t: 'option', some: parseInlineValue(args, at) };
    case 'result.ok':
      return { t: 'result', ok: true, payload: optionalPayload(args, at) };
    case 'result.err':
      return { t: 'result', ok: false, payload: optionalPayload(args, at) };
  }
  fail(`unknown value form \`${head}\``, at);
}

function parseInt(text: string, ty: IntType, at: SExpr): bigint {
  const m = /^([+-]?)(0x[0-9a-fA-F_]+|[0-9_]+)$/.exec(text);
  if (!m || m[2]!.includes('__') || m[2]!.endsWith('_')) fail(`malformed integer \`${text}\``, at);
  let v = BigInt(m[2]!.replace(/_/g, ''));
  if (m[1] === '-') v = -v;
  const bits = INT_BITS[ty];
  const mod = 1n << BigInt(bits);
  const signed = ty.startsWith('s');
  // Accept both the signed and unsigned spelling of a bit pattern, like the
  // core `iN.const`, and normalise into the type's range.
  if (v < -(mod >> 1n) || v >= mod) fail(`integer \`${text}\` out of range for ${ty}`, at);
  if (v < 0n) v += mod;
  if (signed && v >= mod >> 1n) v -= mod;
  return v;
}

/** Parses a WebAssembly float literal (decimal, hex float, inf, nan forms). */
export function parseFloatLit(text: string, at?: SExpr): { v: number; nan: 'canonical' | 'arithmetic' | 'any' | null } {
  let s = text.replace(/_/g, '');
  let sign = 1;
  if (s.startsWith('-')) {
    sign = -1;
    s = s.slice(1);
  } else if (s.startsWith('+')) {
    s = s.slice(1);
  }
  if (s === 'inf') return { v: sign * Infinity, nan: null };
  if (s === 'nan') return { v: NaN, nan: 'any' };
  if (s === 'nan:canonical') return { v: NaN, nan: 'canonical' };
  if (s === 'nan:arithmetic') return { v: NaN, nan: 'arithmetic' };
  if (/^nan:0x[0-9a-fA-F]+$/.test(s)) return { v: NaN, nan: 'any' };
  if (/^0x/i.test(s)) {
    const m = /^0x([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?[0-9]+))?$/.exec(s);
    if (!m || (m[1] === '' && (m[2] ?? '') === '')) fail(`malformed float \`${text}\``, at);
    return { v: sign * hexFloat(m[1]!, m[2] ?? '', m[3] ? Number(m[3]) : 0), nan: null };
  }
  if (!/^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(s)) fail(`malformed float \`${text}\``, at);
  return { v: sign * Number(s), nan: null };
}

function hexFloat(intPart: string, fracPart: string, exp: number): number {
  let mant = BigInt('0x' + ((intPart + fracPart) || '0'));
  let e = exp - 4 * fracPart.length;
  if (mant === 0n) return 0;
  // Keep at most 64 significant bits, folding dropped bits into a sticky bit
  // so that the final rounding to double is still correct.
  const bitLen = mant.toString(2).length;
  if (bitLen > 64) {
    const drop = BigInt(bitLen - 64);
    const sticky = (mant & ((1n << drop) - 1n)) !== 0n ? 1n : 0n;
    mant = (mant >> drop) | sticky;
    e += Number(drop);
  }
  // Number(mant) rounds to 53 bits; scaling by a power of two is exact unless
  // the result is subnormal or overflows.
  let v = Number(mant);
  while (e > 0) {
    const step = Math.min(e, 1000);
    v *= 2 ** step;
    e -= step;
  }
  while (e < 0) {
    const step = Math.min(-e, 1000);
    v /= 2 ** step;
    e += step;
  }
  return v;
}

// ---------------------------------------------------------------- to JS

/** lowerCamelCase of a kebab-case name (`foo-bar` -> `fooBar`, `a-URL` -> `aURL`). */
export function camelCase(name: string): string {
  const parts = name.split('-');
  return parts
    .map((p, i) => {
      if (i === 0) return p === p.toUpperCase() ? p.toLowerCase() : p;
      return p.length ? p[0]!.toUpperCase() + p.slice(1) : p;
    })
    .join('');
}

function isOptionLike(v: WastValue): boolean {
  return v.t === 'option';
}

/** Converts a parsed value into the JS value passed as an argument. */
export function toJs(v: WastValue): unknown {
  switch (v.t) {
    case 'bool':
      return v.v;
    case 'int':
      return INT_BITS[v.ty] === 64 ? v.v : Number(v.v);
    case 'float':
      return v.v;
    case 'char':
    case 'string':
      return v.v;
    case 'list':
    case 'tuple':
      return v.items.map(toJs);
    case 'record': {
      const o: Record<string, unknown> = {};
      for (const f of v.fields) o[camelCase(f.name)] = toJs(f.v);
      return o;
    }
    case 'variant':
      return v.payload === null ? { tag: v.tag } : { tag: v.tag, val: toJs(v.payload) };
    case 'enum':
      return v.tag;
    case 'flags': {
      const o: Record<string, boolean> = {};
      for (const n of v.names) o[camelCase(n)] = true;
      return o;
    }
    case 'option':
      if (v.some === null) return undefined;
      // option<option<T>> uses the tagged form for the outer option.
      if (isOptionLike(v.some)) return { tag: 'some', val: toJs(v.some) };
      return toJs(v.some);
    case 'result': {
      const tag = v.ok ? 'ok' : 'err';
      return v.payload === null ? { tag } : { tag, val: toJs(v.payload) };
    }
  }
}

// ---------------------------------------------------------------- matching

/** Renders a value in .wast syntax for messages. */
export function showValue(v: WastValue): string {
  switch (v.t) {
    case 'bool':
      return `(bool.const ${v.v})`;
    case 'int':
      return `(${v.ty}.const ${v.v})`;
    case 'float':
      return `(${v.ty}.const ${v.nan ? 'nan' + (v.nan === 'any' ? '' : ':' + v.nan) : Object.is(v.v, -0) ? '-0' : String(v.v)})`;
    case 'char':
      return `(char.const ${JSON.stringify(v.v)})`;
    case 'string':
      return `(str.const ${JSON.stringify(v.v)})`;
    case 'list':
      return `(list.const${v.items.map((i) => ' ' + showValue(i)).join('')})`;
    case 'tuple':
      return `(tuple.const${v.items.map((i) => ' ' + showValue(i)).join('')})`;
    case 'record':
      return `(record.const${v.fields.map((f) => ` (field ${JSON.stringify(f.name)} ${showValue(f.v)})`).join('')})`;
    case 'variant':
      return `(variant.const ${JSON.stringify(v.tag)}${v.payload ? ' ' + showValue(v.payload) : ''})`;
    case 'enum':
      return `(enum.const ${JSON.stringify(v.tag)})`;
    case 'flags':
      return `(flags.const${v.names.map((n) => ' ' + JSON.stringify(n)).join('')})`;
    case 'option':
      return v.some ? `(option.some ${showValue(v.some)})` : '(option.none)';
    case 'result':
      return `(result.${v.ok ? 'ok' : 'err'}${v.payload ? ' ' + showValue(v.payload) : ''})`;
  }
}

/** Renders an actual JS result for messages. */
export function showJs(x: unknown): string {
  const seen = new Set<unknown>();
  const go = (y: unknown): string => {
    if (typeof y === 'bigint') return `${y}n`;
    if (typeof y === 'number') return Object.is(y, -0) ? '-0' : String(y);
    if (typeof y === 'string') return JSON.stringify(y);
    if (y === undefined) return 'undefined';
    if (y === null || typeof y !== 'object') return String(y);
    if (seen.has(y)) return '<cycle>';
    seen.add(y);
    if (ArrayBuffer.isView(y) && !(y instanceof DataView)) {
      return `${y.constructor.name}[${Array.from(y as unknown as ArrayLike<unknown>, go).join(', ')}]`;
    }
    if (Array.isArray(y)) return `[${y.map(go).join(', ')}]`;
    if (y instanceof Map) return `Map{${[...y].map(([k, v]) => `${go(k)} => ${go(v)}`).join(', ')}}`;
    const name = y.constructor && y.constructor !== Object ? y.constructor.name + ' ' : '';
    return `${name}{${Object.entries(y).map(([k, v]) => `${k}: ${go(v)}`).join(', ')}}`;
  };
  return go(x);
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !ArrayBuffer.isView(x);
}

function asArray(x: unknown): unknown[] | null {
  if (Array.isArray(x)) return x;
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) return Array.from(x as unknown as ArrayLike<unknown>);
  return null;
}

/**
 * Checks an actual JS value against an expected parsed value. Returns null on
 * a match, otherwise a description of the first mismatch (with a path).
 */
export function matchValue(expected: WastValue, actual: unknown, path = 'result'): string | null {
  const mismatch = () => `${path}: expected ${showValue(expected)}, got ${showJs(actual)}`;
  switch (expected.t) {
    case 'bool':
      return actual === expected.v ? null : mismatch();
    case 'int': {
      if (typeof actual === 'bigint') return actual === expected.v ? null : mismatch();
      if (typeof actual === 'number') return Number.isInteger(actual) && BigInt(actual) === expected.v ? null : mismatch();
      return mismatch();
    }
    case 'float': {
      if (typeof actual !== 'number') return mismatch();
      if (expected.nan) return Number.isNaN(actual) ? null : mismatch();
      // NaN equals NaN; -0 and +0 are distinct.
      return Object.is(actual, expected.v) ? null : mismatch();
    }
    case 'char':
    case 'string':
      return actual === expected.v ? null : mismatch();
    case 'list':
    case 'tuple': {
      const arr = asArray(actual);
      if (!arr) return mismatch();
      if (arr.length !== expected.items.length) return `${path}: expected ${expected.items.length} elements, got ${arr.length}: ${showJs(actual)}`;
      for (let i = 0; i < arr.length; i++) {
        const r = matchValue(expected.items[i]!, arr[i], `${path}[${i}]`);
        if (r) return r;
      }
      return null;
    }
    case 'record': {
      if (!isPlainObject(actual)) return mismatch();
      const names = new Set<string>();
      for (const f of expected.fields) {
        const key = camelCase(f.name);
        names.add(key);
        if (!(key in actual)) return `${path}: missing record field \`${key}\` in ${showJs(actual)}`;
        const r = matchValue(f.v, actual[key], `${path}.${key}`);
        if (r) return r;
      }
      for (const [k, v] of Object.entries(actual)) {
        if (!names.has(k) && v !== undefined) return `${path}: unexpected record field \`${k}\``;
      }
      return null;
    }
    case 'variant':
    case 'result': {
      const tag = expected.t === 'variant' ? expected.tag : expected.ok ? 'ok' : 'err';
      if (!isPlainObject(actual) || actual.tag !== tag) return mismatch();
      if (expected.payload === null) {
        return actual.val === undefined ? null : `${path}: expected no payload for case \`${tag}\`, got ${showJs(actual.val)}`;
      }
      return matchValue(expected.payload, actual.val, `${path}<${tag}>`);
    }
    case 'enum':
      return actual === expected.tag ? null : mismatch();
    case 'flags': {
      if (!isPlainObject(actual)) return mismatch();
      const want = new Set(expected.names.map(camelCase));
      for (const n of want) if (actual[n] !== true) return mismatch();
      for (const [k, v] of Object.entries(actual)) if (v === true && !want.has(k)) return mismatch();
      return null;
    }
    case 'option': {
      if (expected.some === null) {
        if (actual === undefined) return null;
        if (isPlainObject(actual) && actual.tag === 'none' && Object.keys(actual).length === 1) return null;
        return mismatch();
      }
      const direct = matchValue(expected.some, actual, path);
      if (direct === null) return null;
      if (isPlainObject(actual) && actual.tag === 'some' && 'val' in actual) {
        return matchValue(expected.some, actual.val, `${path}<some>`);
      }
      return direct;
    }
  }
}

/** Matches a call's JS return value against the expected result list. */
export function matchResults(expected: WastValue[], actual: unknown): string | null {
  if (expected.length === 0) {
    return actual === undefined ? null : `expected no result, got ${showJs(actual)}`;
  }
  if (expected.length === 1) return matchValue(expected[0]!, actual);
  const arr = asArray(actual);
  if (!arr || arr.length !== expected.length) return `expected ${expected.length} results, got ${showJs(actual)}`;
  for (let i = 0; i < arr.length; i++) {
    const r = matchValue(expected[i]!, arr[i], `result[${i}]`);
    if (r) return r;
  }
  return null;
}

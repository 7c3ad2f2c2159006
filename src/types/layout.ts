// Canonical ABI layout: despecialize, alignment, elem_size, flatten_type
// (CanonicalABI.md "Despecialization", "Alignment", "Element Size", "Flattening").
// Facts about types, so they live with the types: validation checks core
// signatures with them and abi/ plans lift/lower from them. Everything here is
// computed at plan time, never per call.

import type { CoreValType, FuncType, ValType } from './types.ts';

export type PtrType = 'i32' | 'i64';
export type FlatType = 'i32' | 'i64' | 'f32' | 'f64';

export const MAX_FLAT_PARAMS = 16;
export const MAX_FLAT_ASYNC_PARAMS = 4;
export const MAX_FLAT_RESULTS = 1;
export const MAX_STRING_BYTE_LENGTH = (1 << 28) - 1;
export const MAX_LIST_BYTE_LENGTH = (1 << 28) - 1;
export const REALLOC_I32_MAX = 2 ** 32 - 1;

export function ptrSize(pt: PtrType): number {
  return pt === 'i32' ? 4 : 8;
}

/** Variant case after despecialization (`type` null = no payload). */
export interface DCase { name: string; type: ValType | null }

/** Despecialized view of a type: only the core shapes the ABI lays out. */
export type Despecialized =
  | { kind: 'prim'; t: ValType }
  | { kind: 'list'; elem: ValType; length: number | null }
  | { kind: 'record'; fields: ValType[] }
  | { kind: 'variant'; cases: DCase[] }
  | { kind: 'flags'; count: number }
  | { kind: 'handle'; t: ValType };

export function despecialize(t: ValType): Despecialized {
  switch (t.kind) {
    case 'tuple': return { kind: 'record', fields: t.types };
    case 'record': return { kind: 'record', fields: t.fields.map((f) => f.type) };
    case 'enum': return { kind: 'variant', cases: t.names.map((n) => ({ name: n, type: null })) };
    case 'option': return { kind: 'variant', cases: [{ name: 'none', type: null }, { name: 'some', type: t.type }] };
    case 'result': return { kind: 'variant', cases: [{ name: 'ok', type: t.ok }, { name: 'error', type: t.err }] };
    case 'variant': return { kind: 'variant', cases: t.cases.map((c) => ({ name: c.name, type: c.type })) };
    case 'map': return { kind: 'list', elem: { kind: 'tuple', types: [t.key, t.value] }, length: null };
    case 'list': return { kind: 'list', elem: t.elem, length: t.length };
    case 'flags': return { kind: 'flags', count: t.names.length };
    case 'own': case 'borrow': case 'stream': case 'future': return { kind: 'handle', t };
    default: return { kind: 'prim', t };
  }
}

export function alignTo(ptr: number, alignment: number): number {
  return Math.ceil(ptr / alignment) * alignment;
}

/** discriminant_type: the uN type holding a case index, as a byte size (1, 2 or 4). */
export function discriminantSize(caseCount: number): 1 | 2 | 4 {
  if (caseCount <= 0) throw new RangeError('variant must have at least one case');
  if (caseCount <= 0x100) return 1;
  if (caseCount <= 0x10000) return 2;
  return 4;
}

export function flagsSize(count: number): 0 | 1 | 2 | 4 {
  if (count === 0) return 0;
  if (count <= 8) return 1;
  if (count <= 16) return 2;
  if (count <= 32) return 4;
  throw new RangeError(`flags with ${count} labels exceed the 32-label maximum`);
}

function primAlign(kind: string, pt: PtrType): number {
  switch (kind) {
    case 'bool': case 's8': case 'u8': return 1;
    case 's16': case 'u16': return 2;
    case 's32': case 'u32': case 'f32': case 'char': case 'error-context': return 4;
    case 's64': case 'u64': case 'f64': return 8;
    case 'string': return ptrSize(pt);
  }
  throw new TypeError(`unknown primitive type ${kind}`);
}

function primSize(kind: string, pt: PtrType): number {
  return kind === 'string' ? 2 * ptrSize(pt) : primAlign(kind, pt);
}

export function maxCaseAlignment(cases: DCase[], pt: PtrType): number {
  let a = 1;
  for (const c of cases) if (c.type) a = Math.max(a, alignment(c.type, pt));
  return a;
}

// Sizes and alignments are memoized per type object: validation asks for the size
// of every defined type, and nested types would otherwise be walked again and again.
const alignCache = { i32: new WeakMap<ValType, number>(), i64: new WeakMap<ValType, number>() };
const sizeCache = { i32: new WeakMap<ValType, number>(), i64: new WeakMap<ValType, number>() };

export function alignment(t: ValType, pt: PtrType): number {
  let a = alignCache[pt].get(t);
  if (a === undefined) alignCache[pt].set(t, (a = computeAlignment(t, pt)));
  return a;
}

export function elemSize(t: ValType, pt: PtrType): number {
  let s = sizeCache[pt].get(t);
  if (s === undefined) sizeCache[pt].set(t, (s = computeElemSize(t, pt)));
  return s;
}

function computeAlignment(t: ValType, pt: PtrType): number {
  const d = despecialize(t);
  switch (d.kind) {
    case 'prim': return primAlign(d.t.kind, pt);
    case 'list': return d.length !== null ? alignment(d.elem, pt) : ptrSize(pt);
    case 'record': {
      let a = 1;
      for (const f of d.fields) a = Math.max(a, alignment(f, pt));
      return a;
    }
    case 'variant': return Math.max(discriminantSize(d.cases.length), maxCaseAlignment(d.cases, pt));
    case 'flags': return Math.max(1, flagsSize(d.count));
    case 'handle': return 4;
  }
}

function computeElemSize(t: ValType, pt: PtrType): number {
  const d = despecialize(t);
  switch (d.kind) {
    case 'prim': return primSize(d.t.kind, pt);
    case 'list': return d.length !== null ? d.length * elemSize(d.elem, pt) : 2 * ptrSize(pt);
    case 'record': {
      let s = 0;
      for (const f of d.fields) {
        s = alignTo(s, alignment(f, pt));
        s += elemSize(f, pt);
      }
      return alignTo(s, alignment(t, pt));
    }
    case 'variant': {
      let s: number = discriminantSize(d.cases.length);
      s = alignTo(s, maxCaseAlignment(d.cases, pt));
      let cs = 0;
      for (const c of d.cases) if (c.type) cs = Math.max(cs, elemSize(c.type, pt));
      s += cs;
      return alignTo(s, alignment(t, pt));
    }
    case 'flags': return flagsSize(d.count);
    case 'handle': return 4;
  }
}

/** Byte offsets of a record's fields (in order). */
export function fieldOffsets(fields: ValType[], pt: PtrType): number[] {
  const out: number[] = [];
  let s = 0;
  for (const f of fields) {
    s = alignTo(s, alignment(f, pt));
    out.push(s);
    s += elemSize(f, pt);
  }
  return out;
}

export function join(a: FlatType, b: FlatType): FlatType {
  if (a === b) return a;
  if ((a === 'i32' && b === 'f32') || (a === 'f32' && b === 'i32')) return 'i32';
  return 'i64';
}

export function flattenVariant(cases: DCase[], pt: PtrType): FlatType[] {
  const flat: FlatType[] = [];
  for (const c of cases) {
    if (!c.type) continue;
    const ft = flattenType(c.type, pt);
    for (let i = 0; i < ft.length; i++) {
      if (i < flat.length) flat[i] = join(flat[i]!, ft[i]!);
      else flat.push(ft[i]!);
    }
  }
  return ['i32', ...flat];
}

export function flattenType(t: ValType, pt: PtrType): FlatType[] {
  const d = despecialize(t);
  switch (d.kind) {
    case 'prim':
      switch (d.t.kind) {
        case 's64': case 'u64': return ['i64'];
        case 'f32': return ['f32'];
        case 'f64': return ['f64'];
        case 'string': return [pt, pt];
        default: return ['i32'];
      }
    case 'list': {
      if (d.length === null) return [pt, pt];
      const e = flattenType(d.elem, pt);
      const out: FlatType[] = [];
      for (let i = 0; i < d.length; i++) out.push(...e);
      return out;
    }
    case 'record': {
      const out: FlatType[] = [];
      for (const f of d.fields) out.push(...flattenType(f, pt));
      return out;
    }
    case 'variant': return flattenVariant(d.cases, pt);
    case 'flags': return d.count === 0 ? [] : ['i32'];
    case 'handle': return ['i32'];
  }
}

export function flattenTypes(ts: ValType[], pt: PtrType): FlatType[] {
  const out: FlatType[] = [];
  for (const t of ts) out.push(...flattenType(t, pt));
  return out;
}

export interface CoreSig { params: CoreValType[]; results: CoreValType[] }

/**
 * flatten_functype. `async` selects the async ABI (lift: `callback` decides whether
 * the callee returns an i32 callback code).
 */
export function flattenFuncType(
  ft: FuncType,
  context: 'lift' | 'lower',
  opts: { memory64?: boolean; async?: boolean; callback?: boolean } = {},
): CoreSig {
  const pt: PtrType = opts.memory64 ? 'i64' : 'i32';
  let params: CoreValType[] = flattenTypes(ft.params.map((p) => p.type), pt);
  let results: CoreValType[] = ft.result ? flattenType(ft.result, pt) : [];
  if (!opts.async) {
    if (params.length > MAX_FLAT_PARAMS) params = [pt];
    if (results.length > MAX_FLAT_RESULTS) {
      if (context === 'lift') results = [pt];
      else { params = [...params, pt]; results = []; }
    }
    return { params, results };
  }
  if (context === 'lift') {
    if (params.length > MAX_FLAT_PARAMS) params = [pt];
    results = opts.callback ? ['i32'] : [];
  } else {
    if (params.length > MAX_FLAT_ASYNC_PARAMS) params = [pt];
    if (results.length > 0) params = [...params, pt];
    results = ['i32'];
  }
  return { params, results };
}

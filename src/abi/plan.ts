// Per-type compiled lift/lower plans (CanonicalABI.md "Loading", "Storing",
// "Flat Lifting", "Flat Lowering"). planValue(t) walks the type once and returns
// closures specialised for it; no type inspection happens per call.
//
// Conventions:
//  - pointers inside plans are JS numbers; core pointer values are numbers (i32)
//    or bigints (i64, memory64) and are converted at the flat boundary.
//  - load/store assume the range was already validated (as in the spec, where
//    load/store assert and the callers trap): use checkRange before a top-level load.
//  - core i32 values arriving from wasm are signed JS numbers, i64 are signed bigints;
//    lifting normalises them. Lowered i32 values may be signed or unsigned numbers
//    (ToInt32 wraps when passed to wasm), i64 values are bigints.

import type { FlagsType, FutureType, ResourceType, StreamType, ValType } from '../types/types.ts';
import { trap } from '../errors.ts';
import { allocate, checkRange, spendFuel, toPtr, type LiftLowerContext } from './context.ts';
import {
  alignment, discriminantSize, elemSize, fieldOffsets, flagsSize, flattenType, flattenVariant,
  MAX_LIST_BYTE_LENGTH, alignTo, maxCaseAlignment, REALLOC_I32_MAX,
  type DCase, type FlatType, type PtrType,
} from '../types/layout.ts';
import { loadStringFromRange, storeStringIntoRange } from './strings.ts';
import { bitsToF32, bitsToF64, describe, f32ToBits, f64ToBits, lowerCamelCase, typeError, withPath } from './values.ts';

/** CoreValueIter */
export interface FlatIter { vals: ArrayLike<unknown>; i: number }

export interface ValuePlan {
  readonly type: ValType;
  /** elem_size */
  readonly size: number;
  /** alignment */
  readonly align: number;
  /** flatten_type */
  readonly flat: FlatType[];
  /** load(cx, ptr, t): ptr must be aligned and in bounds (checked by the caller). */
  load(cx: LiftLowerContext, ptr: number): unknown;
  /** store(cx, v, t, ptr): validates v, may call realloc. */
  store(cx: LiftLowerContext, v: unknown, ptr: number): void;
  /** lift_flat */
  liftFlat(cx: LiftLowerContext, it: FlatIter): unknown;
  /** lower_flat: pushes the flat core values onto `out`. */
  lowerFlat(cx: LiftLowerContext, v: unknown, out: unknown[]): void;
  /** Present when flat.length === 1: lift/lower one core value without an iterator. */
  lift1?: (cx: LiftLowerContext, x: unknown) => unknown;
  lower1?: (cx: LiftLowerContext, v: unknown) => number | bigint;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const cache32 = new WeakMap<ValType, ValuePlan>();
const cache64 = new WeakMap<ValType, ValuePlan>();

/** Compile (once, cached per type object and pointer type) the lift/lower plan for a value type. */
export function planValue(t: ValType, memory64 = false): ValuePlan {
  const cache = memory64 ? cache64 : cache32;
  let p = cache.get(t);
  if (!p) {
    p = build(t, memory64 ? 'i64' : 'i32');
    cache.set(t, p);
  }
  return p;
}

function build(t: ValType, pt: PtrType): ValuePlan {
  switch (t.kind) {
    case 'bool': case 's8': case 'u8': case 's16': case 'u16': case 's32': case 'u32':
    case 's64': case 'u64': case 'f32': case 'f64': case 'char':
      return planScalar(t, t.kind);
    case 'string': return planString(t, pt);
    case 'error-context': return planHandle(t, (cx, i) => cx.handles.liftErrorContext(i), (cx, v) => cx.handles.lowerErrorContext(v));
    case 'own': {
      const rt: ResourceType = t.resource;
      return planHandle(t, (cx, i) => cx.handles.liftOwn(rt, i), (cx, v) => cx.handles.lowerOwn(rt, v));
    }
    case 'borrow': {
      const rt: ResourceType = t.resource;
      return planHandle(t, (cx, i) => cx.handles.liftBorrow(rt, i), (cx, v) => cx.handles.lowerBorrow(rt, v));
    }
    case 'stream': {
      const st: StreamType = t;
      return planHandle(t, (cx, i) => cx.handles.liftStream(st, i), (cx, v) => cx.handles.lowerStream(st, v));
    }
    case 'future': {
      const ft: FutureType = t;
      return planHandle(t, (cx, i) => cx.handles.liftFuture(ft, i), (cx, v) => cx.handles.lowerFuture(ft, v));
    }
    case 'record': return planRecord(t, t.fields.map((f) => f.type), t.fields.map((f) => lowerCamelCase(f.name)), pt);
    case 'tuple': return planRecord(t, t.types, null, pt);
    case 'flags': return planFlags(t, pt);
    case 'list': return planList(t, t.elem, t.length, pt);
    case 'map': return planMap(t, pt);
    case 'variant': {
      const names = t.cases.map((c) => c.name);
      const byName = new Map(names.map((n, i) => [n, i]));
      const hasPayload = t.cases.map((c) => c.type !== null);
      return planVariant(t, pt, {
        make: (i, val) => (hasPayload[i] ? { tag: names[i], val } : { tag: names[i] }),
        match: (v) => {
          if (typeof v !== 'object' || v === null) throw typeError(`a variant {tag, val} with tag ${names.map((n) => `'${n}'`).join(' | ')}`, v);
          const tag = (v as { tag?: unknown }).tag;
          const i = typeof tag === 'string' ? byName.get(tag) : undefined;
          if (i === undefined) throw new TypeError(`invalid variant tag ${describe(tag)}; expected one of ${names.map((n) => `'${n}'`).join(', ')}`);
          return i;
        },
        payload: (v) => (v as { val?: unknown }).val,
      });
    }
    case 'enum': {
      const names = t.names;
      const byName = new Map(names.map((n, i) => [n, i]));
      return planVariant(t, pt, {
        make: (i) => names[i],
        match: (v) => {
          const i = typeof v === 'string' ? byName.get(v) : undefined;
          if (i === undefined) throw typeError(`an enum value (${names.map((n) => `'${n}'`).join(' | ')})`, v);
          return i;
        },
        payload: () => undefined,
      });
    }
    case 'option': {
      if (t.type.kind === 'option') {
        // Nested option: the inner value may itself be undefined, so use the tagged form.
        return planVariant(t, pt, {
          make: (i, val) => (i === 0 ? { tag: 'none' } : { tag: 'some', val }),
          match: (v) => {
            if (v === undefined || v === null) return 0;
            const tag = typeof v === 'object' ? (v as { tag?: unknown }).tag : undefined;
            if (tag === 'none') return 0;
            if (tag === 'some') return 1;
            throw typeError(`a nested option ({tag: 'some', val} | {tag: 'none'})`, v);
          },
          payload: (v) => (v as { val?: unknown }).val,
        });
      }
      return planVariant(t, pt, {
        make: (i, val) => (i === 0 ? undefined : val),
        match: (v) => (v === undefined || v === null ? 0 : 1),
        payload: (v) => v,
      });
    }
    case 'result': {
      const hasOk = t.ok !== null, hasErr = t.err !== null;
      return planVariant(t, pt, {
        make: (i, val) => (i === 0 ? (hasOk ? { tag: 'ok', val } : { tag: 'ok' }) : (hasErr ? { tag: 'err', val } : { tag: 'err' })),
        match: (v) => {
          const tag = typeof v === 'object' && v !== null ? (v as { tag?: unknown }).tag : undefined;
          if (tag === 'ok') return 0;
          if (tag === 'err' || tag === 'error') return 1;
          throw typeError(`a result ({tag: 'ok', val} | {tag: 'err', val})`, v);
        },
        payload: (v) => (v as { val?: unknown }).val,
      });
    }
  }
  throw new TypeError(`cannot plan unknown value type ${(t as { kind: string }).kind}`);
}

// ------------------------------------------------------------------ scalars

type ScalarKind = 'bool' | 's8' | 'u8' | 's16' | 'u16' | 's32' | 'u32' | 's64' | 'u64' | 'f32' | 'f64' | 'char';

function intRangeError(name: string, lo: number | bigint, hi: number | bigint, v: unknown): never {
  if (typeof v !== 'number' && typeof v !== 'bigint') throw typeError(name, v);
  if (typeof v === 'number' && !Number.isInteger(v)) throw new TypeError(`expected ${name} (an integer), got ${describe(v)}`);
  throw new RangeError(`${describe(v)} is out of range for ${name} [${lo}, ${hi}]`);
}

function toBigInt64(v: unknown, name: string, lo: bigint, hi: bigint): bigint {
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
  else intRangeError(name, lo, hi, v);
  if (b < lo || b > hi) intRangeError(name, lo, hi, v);
  return b;
}
const S64_MIN = -(1n << 63n), S64_MAX = (1n << 63n) - 1n, U64_MAX = (1n << 64n) - 1n;

// Validators returning the JS number/bigint to lower; each names its type on failure.
const vBool = (v: unknown): number => {
  if (v === true) return 1;
  if (v === false) return 0;
  throw typeError('bool', v);
};
const vU8 = (v: unknown): number => { if (((v as number) & 0xff) !== v) intRangeError('u8', 0, 0xff, v); return v as number; };
const vS8 = (v: unknown): number => { if ((((v as number) << 24) >> 24) !== v) intRangeError('s8', -0x80, 0x7f, v); return v as number; };
const vU16 = (v: unknown): number => { if (((v as number) & 0xffff) !== v) intRangeError('u16', 0, 0xffff, v); return v as number; };
const vS16 = (v: unknown): number => { if ((((v as number) << 16) >> 16) !== v) intRangeError('s16', -0x8000, 0x7fff, v); return v as number; };
const vU32 = (v: unknown): number => { if (((v as number) >>> 0) !== v) intRangeError('u32', 0, 0xffffffff, v); return v as number; };
const vS32 = (v: unknown): number => { if (((v as number) | 0) !== v) intRangeError('s32', -0x80000000, 0x7fffffff, v); return v as number; };
const vS64 = (v: unknown): bigint => (typeof v === 'bigint' && BigInt.asIntN(64, v) === v ? v : toBigInt64(v, 's64', S64_MIN, S64_MAX));
const vU64 = (v: unknown): bigint => (typeof v === 'bigint' && BigInt.asUintN(64, v) === v ? v : toBigInt64(v, 'u64', 0n, U64_MAX));
const vF32 = (v: unknown): number => { if (typeof v !== 'number') throw typeError('f32 (a number)', v); return v; };
const vF64 = (v: unknown): number => { if (typeof v !== 'number') throw typeError('f64 (a number)', v); return v; };
/** char_to_i32 */
const vChar = (v: unknown): number => {
  if (typeof v === 'string' && v.length > 0 && v.length <= 2) {
    const cp = v.codePointAt(0)!;
    if ((cp > 0xffff ? 2 : 1) === v.length && !(cp >= 0xd800 && cp <= 0xdfff)) return cp;
  }
  throw typeError('char (a string of exactly one Unicode scalar value)', v);
};
/** convert_i32_to_char */
function convertI32ToChar(i: number): string {
  if (i >= 0x110000) trap('char-out-of-range', i);
  if (i >= 0xd800 && i <= 0xdfff) trap('char-surrogate', i);
  return String.fromCodePoint(i);
}

function planScalar(t: ValType, k: ScalarKind): ValuePlan {
  let size: number;
  let flat: FlatType;
  let load: (cx: LiftLowerContext, p: number) => unknown;
  let store: (cx: LiftLowerContext, v: unknown, p: number) => void;
  let lift1: (cx: LiftLowerContext, x: unknown) => unknown;
  let lower1: (cx: LiftLowerContext, v: unknown) => number | bigint;
  switch (k) {
    case 'bool':
      size = 1; flat = 'i32';
      load = (cx, p) => cx.u8[p] !== 0;
      store = (cx, v, p) => { cx.u8[p] = vBool(v); };
      lift1 = (_cx, x) => (x as number) !== 0;
      lower1 = (_cx, v) => vBool(v);
      break;
    case 'u8':
      size = 1; flat = 'i32';
      load = (cx, p) => cx.u8[p];
      store = (cx, v, p) => { cx.u8[p] = vU8(v); };
      lift1 = (_cx, x) => (x as number) & 0xff;
      lower1 = (_cx, v) => vU8(v);
      break;
    case 's8':
      size = 1; flat = 'i32';
      load = (cx, p) => cx.dv.getInt8(p);
      store = (cx, v, p) => { cx.dv.setInt8(p, vS8(v)); };
      lift1 = (_cx, x) => ((x as number) << 24) >> 24;
      lower1 = (_cx, v) => vS8(v);
      break;
    case 'u16':
      size = 2; flat = 'i32';
      load = (cx, p) => cx.dv.getUint16(p, true);
      store = (cx, v, p) => { cx.dv.setUint16(p, vU16(v), true); };
      lift1 = (_cx, x) => (x as number) & 0xffff;
      lower1 = (_cx, v) => vU16(v);
      break;
    case 's16':
      size = 2; flat = 'i32';
      load = (cx, p) => cx.dv.getInt16(p, true);
      store = (cx, v, p) => { cx.dv.setInt16(p, vS16(v), true); };
      lift1 = (_cx, x) => ((x as number) << 16) >> 16;
      lower1 = (_cx, v) => vS16(v);
      break;
    case 'u32':
      size = 4; flat = 'i32';
      load = (cx, p) => cx.dv.getUint32(p, true);
      store = (cx, v, p) => { cx.dv.setUint32(p, vU32(v), true); };
      lift1 = (_cx, x) => (x as number) >>> 0;
      lower1 = (_cx, v) => vU32(v);
      break;
    case 's32':
      size = 4; flat = 'i32';
      load = (cx, p) => cx.dv.getInt32(p, true);
      store = (cx, v, p) => { cx.dv.setInt32(p, vS32(v), true); };
      lift1 = (_cx, x) => (x as number) | 0;
      lower1 = (_cx, v) => vS32(v);
      break;
    case 'u64':
      size = 8; flat = 'i64';
      load = (cx, p) => cx.dv.getBigUint64(p, true);
      store = (cx, v, p) => { cx.dv.setBigUint64(p, vU64(v), true); };
      lift1 = (_cx, x) => BigInt.asUintN(64, x as bigint);
      lower1 = (_cx, v) => vU64(v);
      break;
    case 's64':
      size = 8; flat = 'i64';
      load = (cx, p) => cx.dv.getBigInt64(p, true);
      store = (cx, v, p) => { cx.dv.setBigInt64(p, vS64(v), true); };
      lift1 = (_cx, x) => BigInt.asIntN(64, x as bigint);
      lower1 = (_cx, v) => vS64(v);
      break;
    case 'f32':
      // JS has a single NaN value, so lifted NaNs are canonical by construction.
      size = 4; flat = 'f32';
      load = (cx, p) => cx.dv.getFloat32(p, true);
      store = (cx, v, p) => { cx.dv.setFloat32(p, vF32(v), true); };
      lift1 = (_cx, x) => x as number;
      lower1 = (_cx, v) => vF32(v);
      break;
    case 'f64':
      size = 8; flat = 'f64';
      load = (cx, p) => cx.dv.getFloat64(p, true);
      store = (cx, v, p) => { cx.dv.setFloat64(p, vF64(v), true); };
      lift1 = (_cx, x) => x as number;
      lower1 = (_cx, v) => vF64(v);
      break;
    case 'char':
      size = 4; flat = 'i32';
      load = (cx, p) => convertI32ToChar(cx.dv.getUint32(p, true));
      store = (cx, v, p) => { cx.dv.setUint32(p, vChar(v), true); };
      lift1 = (_cx, x) => convertI32ToChar((x as number) >>> 0);
      lower1 = (_cx, v) => vChar(v);
      break;
  }
  return {
    type: t, size, align: size, flat: [flat],
    load, store, lift1, lower1,
    liftFlat: (cx, it) => lift1(cx, it.vals[it.i++]),
    lowerFlat: (cx, v, out) => { out.push(lower1(cx, v)); },
  };
}

// ------------------------------------------------------------------ handles

function planHandle(
  t: ValType,
  lift: (cx: LiftLowerContext, i: number) => unknown,
  lower: (cx: LiftLowerContext, v: unknown) => number,
): ValuePlan {
  const lift1 = (cx: LiftLowerContext, x: unknown) => lift(cx, (x as number) >>> 0);
  const lower1 = (cx: LiftLowerContext, v: unknown) => lower(cx, v);
  return {
    type: t, size: 4, align: 4, flat: ['i32'],
    load: (cx, p) => lift(cx, cx.dv.getUint32(p, true)),
    store: (cx, v, p) => { const i = lower(cx, v); cx.dv.setUint32(p, i, true); },
    lift1, lower1,
    liftFlat: (cx, it) => lift1(cx, it.vals[it.i++]),
    lowerFlat: (cx, v, out) => { out.push(lower(cx, v)); },
  };
}

// ------------------------------------------------------------------ strings

function planString(t: ValType, pt: PtrType): ValuePlan {
  if (pt === 'i32') {
    return {
      type: t, size: 8, align: 4, flat: ['i32', 'i32'],
      load: (cx, p) => {
        const dv = cx.dv;
        return loadStringFromRange(cx, dv.getUint32(p, true), dv.getUint32(p + 4, true));
      },
      store: (cx, v, p) => {
        if (typeof v !== 'string') throw typeError('string', v);
        const ptr = storeStringIntoRange(cx, v);
        const dv = cx.dv;
        dv.setUint32(p, ptr, true);
        dv.setUint32(p + 4, cx.strUtf16 ? (cx.strUnits | 0x80000000) >>> 0 : cx.strUnits, true);
      },
      liftFlat: (cx, it) => {
        const ptr = (it.vals[it.i++] as number) >>> 0;
        return loadStringFromRange(cx, ptr, (it.vals[it.i++] as number) >>> 0);
      },
      lowerFlat: (cx, v, out) => {
        if (typeof v !== 'string') throw typeError('string', v);
        const ptr = storeStringIntoRange(cx, v);
        out.push(ptr, cx.strUtf16 ? (cx.strUnits | 0x80000000) >>> 0 : cx.strUnits);
      },
    };
  }
  return {
    type: t, size: 16, align: 8, flat: ['i64', 'i64'],
    load: (cx, p) => {
      const dv = cx.dv;
      return loadStringFromRange(cx, Number(dv.getBigUint64(p, true)), dv.getBigUint64(p + 8, true));
    },
    store: (cx, v, p) => {
      if (typeof v !== 'string') throw typeError('string', v);
      const ptr = storeStringIntoRange(cx, v);
      const dv = cx.dv;
      dv.setBigUint64(p, BigInt(ptr), true);
      dv.setBigUint64(p + 8, BigInt(cx.strUnits) | (cx.strUtf16 ? 1n << 63n : 0n), true);
    },
    liftFlat: (cx, it) => {
      const ptr = toPtr(it.vals[it.i++]);
      return loadStringFromRange(cx, ptr, BigInt.asUintN(64, it.vals[it.i++] as bigint));
    },
    lowerFlat: (cx, v, out) => {
      if (typeof v !== 'string') throw typeError('string', v);
      const ptr = storeStringIntoRange(cx, v);
      out.push(BigInt(ptr), BigInt(cx.strUnits) | (cx.strUtf16 ? 1n << 63n : 0n));
    },
  };
}

// ------------------------------------------------------------------ records / tuples

function planRecord(t: ValType, types: ValType[], keys: string[] | null, pt: PtrType): ValuePlan {
  const plans = types.map((ty) => planValue(ty, pt === 'i64'));
  const offs = fieldOffsets(types, pt);
  const n = plans.length;
  const label = (i: number) => (keys ? `field '${keys[i]}'` : `tuple element ${i}`);
  const size = elemSize(t, pt), align = alignment(t, pt);
  const flat = plans.flatMap((p) => p.flat);
  const get = keys
    ? (v: unknown, i: number) => (v as Record<string, unknown>)[keys[i]!]
    : (v: unknown, i: number) => (v as ArrayLike<unknown>)[i];
  const check = keys
    ? (v: unknown) => { if (typeof v !== 'object' || v === null) throw typeError(`a record {${keys.join(', ')}}`, v); }
    : (v: unknown) => {
      if (typeof v !== 'object' || v === null || typeof (v as ArrayLike<unknown>).length !== 'number' || (v as ArrayLike<unknown>).length < n) {
        throw typeError(`a tuple (array) of ${n} elements`, v);
      }
    };
  const make: () => Record<string, unknown> | unknown[] = keys ? () => ({}) : () => new Array(n);
  const set = keys
    ? (o: unknown, i: number, x: unknown) => { (o as Record<string, unknown>)[keys[i]!] = x; }
    : (o: unknown, i: number, x: unknown) => { (o as unknown[])[i] = x; };
  const plan: ValuePlan = {
    type: t, size, align, flat,
    load: (cx, p) => {
      const o = make();
      for (let i = 0; i < n; i++) set(o, i, plans[i]!.load(cx, p + offs[i]!));
      return o;
    },
    store: (cx, v, p) => {
      check(v);
      let i = 0;
      try {
        for (; i < n; i++) plans[i]!.store(cx, get(v, i), p + offs[i]!);
      } catch (e) { throw withPath(e, label(i)); }
    },
    liftFlat: (cx, it) => {
      const o = make();
      for (let i = 0; i < n; i++) set(o, i, plans[i]!.liftFlat(cx, it));
      return o;
    },
    lowerFlat: (cx, v, out) => {
      check(v);
      let i = 0;
      try {
        for (; i < n; i++) plans[i]!.lowerFlat(cx, get(v, i), out);
      } catch (e) { throw withPath(e, label(i)); }
    },
  };
  if (flat.length === 1) {
    plan.lift1 = (cx, x) => plan.liftFlat(cx, { vals: [x], i: 0 });
    plan.lower1 = (cx, v) => { const out: unknown[] = []; plan.lowerFlat(cx, v, out); return out[0] as number | bigint; };
  }
  return plan;
}

// ------------------------------------------------------------------ flags

function planFlags(t: FlagsType, _pt: PtrType): ValuePlan {
  const keys = t.names.map(lowerCamelCase);
  const n = keys.length;
  const size = flagsSize(n);
  const unpack = (i: number) => {
    const o: Record<string, boolean> = {};
    for (let k = 0; k < n; k++) o[keys[k]!] = ((i >>> k) & 1) !== 0;
    return o;
  };
  const pack = (v: unknown): number => {
    if (typeof v !== 'object' || v === null) throw typeError(`flags {${keys.join(', ')}}`, v);
    let i = 0;
    for (let k = 0; k < n; k++) if ((v as Record<string, unknown>)[keys[k]!]) i |= 1 << k;
    return i >>> 0;
  };
  let load: (cx: LiftLowerContext, p: number) => unknown;
  let store: (cx: LiftLowerContext, v: unknown, p: number) => void;
  switch (size) {
    case 0: load = () => unpack(0); store = (_cx, v) => { pack(v); }; break;
    case 1: load = (cx, p) => unpack(cx.u8[p]!); store = (cx, v, p) => { cx.u8[p] = pack(v); }; break;
    case 2: load = (cx, p) => unpack(cx.dv.getUint16(p, true)); store = (cx, v, p) => { cx.dv.setUint16(p, pack(v), true); }; break;
    default: load = (cx, p) => unpack(cx.dv.getUint32(p, true)); store = (cx, v, p) => { cx.dv.setUint32(p, pack(v), true); }; break;
  }
  if (n === 0) {
    return {
      type: t, size: 0, align: 1, flat: [], load, store,
      liftFlat: () => unpack(0),
      lowerFlat: (_cx, v) => { pack(v); },
    };
  }
  const lift1 = (_cx: LiftLowerContext, x: unknown) => unpack(x as number);
  const lower1 = (_cx: LiftLowerContext, v: unknown) => pack(v);
  return {
    type: t, size, align: size, flat: ['i32'], load, store, lift1, lower1,
    liftFlat: (_cx, it) => unpack(it.vals[it.i++] as number),
    lowerFlat: (_cx, v, out) => { out.push(pack(v)); },
  };
}

// ------------------------------------------------------------------ lists

type TypedArrayCtor =
  | Uint8ArrayConstructor | Int8ArrayConstructor | Uint16ArrayConstructor | Int16ArrayConstructor
  | Uint32ArrayConstructor | Int32ArrayConstructor | BigUint64ArrayConstructor | BigInt64ArrayConstructor
  | Float32ArrayConstructor | Float64ArrayConstructor;

const TYPED: Record<string, TypedArrayCtor> = {
  u8: Uint8Array, s8: Int8Array, u16: Uint16Array, s16: Int16Array, u32: Uint32Array, s32: Int32Array,
  u64: BigUint64Array, s64: BigInt64Array, f32: Float32Array, f64: Float64Array,
};

type AnyTyped = InstanceType<TypedArrayCtor>;

/** canonicalize_nan32/64 over a freshly copied float array (in place). */
function canonicalizeNaNs(a: AnyTyped, kind: string): void {
  if (kind === 'f32') {
    const f = a as Float32Array;
    let has = false;
    for (let i = 0; i < f.length; i++) if (f[i] !== f[i]) { has = true; break; }
    if (!has) return;
    const u = new Uint32Array(f.buffer, f.byteOffset, f.length);
    for (let i = 0; i < u.length; i++) if ((u[i]! & 0x7fffffff) > 0x7f800000) u[i] = 0x7fc00000;
  } else if (kind === 'f64') {
    const f = a as Float64Array;
    let has = false;
    for (let i = 0; i < f.length; i++) if (f[i] !== f[i]) { has = true; break; }
    if (!has) return;
    const u = new Uint32Array(f.buffer, f.byteOffset, f.length * 2);
    for (let i = 0; i < f.length; i++) {
      if (f[i] !== f[i]) { u[2 * i] = 0; u[2 * i + 1] = 0x7ff80000; }
    }
  }
}

function isArrayLike(v: unknown): v is ArrayLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as ArrayLike<unknown>).length === 'number';
}

function listTrap(len: number, esize: number): never {
  trap('list-too-long', len * esize);
}

interface ListCore {
  /** load_list_from_valid_range */
  loadRange(cx: LiftLowerContext, ptr: number, n: number): unknown;
  /** number of elements of a JS list value (validating its shape) */
  lengthOf(v: unknown): number;
  /** store_list_into_valid_range */
  storeRange(cx: LiftLowerContext, v: unknown, ptr: number, n: number): void;
}

/** Buffers of linear memories that lifted byte lists are views of (see LiftLowerContext.viewLists). */
const memoryBuffers = new WeakSet<ArrayBuffer>();
let scratch = new Uint8Array(0);
function scratchFor(n: number): Uint8Array {
  if (scratch.length < n) scratch = new Uint8Array(Math.max(n, scratch.length * 2));
  return scratch.subarray(0, n);
}

function listCore(elem: ValType, pt: PtrType, what: string): ListCore {
  const ep = planValue(elem, pt === 'i64');
  const es = ep.size;
  const Typed = TYPED[elem.kind];
  if (Typed) {
    const kind = elem.kind;
    return {
      loadRange: (cx, ptr, n) => {
        if (kind === 'u8') {
          if (!cx.viewLists) return cx.u8.slice(ptr, ptr + n);
          memoryBuffers.add(cx.buf);
          return cx.u8.subarray(ptr, ptr + n);
        }
        if (LITTLE_ENDIAN) {
          const a = new Typed(cx.buf.slice(ptr, ptr + n * es));
          canonicalizeNaNs(a, kind);
          return a;
        }
        const a = new Typed(n);
        for (let i = 0; i < n; i++) (a as unknown as unknown[])[i] = ep.load(cx, ptr + i * es);
        return a;
      },
      lengthOf: (v) => {
        if (!isArrayLike(v)) {
          if (v instanceof ArrayBuffer && kind === 'u8') return v.byteLength;
          throw typeError(`${what} (${Typed.name} or array)`, v);
        }
        return v.length;
      },
      storeRange: (cx, v, ptr, n) => {
        if (v instanceof ArrayBuffer) v = new Uint8Array(v);
        if (v instanceof Typed && LITTLE_ENDIAN) {
          const ta = v as AnyTyped;
          const src = new Uint8Array(ta.buffer, ta.byteOffset, n * es);
          if (memoryBuffers.has(ta.buffer as ArrayBuffer) && src.length >= 1024) {
            // V8 copies between two wasm memories byte by byte (~1 GB/s); two copies through a
            // plain buffer run at memcpy speed
            const tmp = scratchFor(src.length);
            tmp.set(src);
            cx.u8.set(tmp, ptr);
          } else cx.u8.set(src, ptr);
          return;
        }
        const a = v as ArrayLike<unknown>;
        let i = 0;
        try {
          for (; i < n; i++) ep.store(cx, a[i], ptr + i * es);
        } catch (e) { throw withPath(e, `list element ${i}`); }
      },
    };
  }
  return {
    loadRange: (cx, ptr, n) => {
      const a = new Array(n);
      for (let i = 0; i < n; i++) a[i] = ep.load(cx, ptr + i * es);
      return a;
    },
    lengthOf: (v) => {
      if (!isArrayLike(v)) throw typeError(`${what} (an array)`, v);
      return v.length;
    },
    storeRange: (cx, v, ptr, n) => {
      const a = v as ArrayLike<unknown>;
      let i = 0;
      try {
        for (; i < n; i++) ep.store(cx, a[i], ptr + i * es);
      } catch (e) { throw withPath(e, `list element ${i}`); }
    },
  };
}

/** Build a variable-length list plan from load/store-range primitives. */
function planVarList(t: ValType, pt: PtrType, ealign: number, esize: number, core: ListCore): ValuePlan {
  /** load_list_from_range */
  const loadFromRange = (cx: LiftLowerContext, ptr: number, n: number) => {
    const bytes = n * esize;
    if (bytes > MAX_LIST_BYTE_LENGTH) listTrap(n, esize);
    spendFuel(cx, bytes);
    checkRange(cx, ptr, ealign, bytes);
    return core.loadRange(cx, ptr, n);
  };
  /** store_list_into_range: returns the pointer; length is core.lengthOf(v) */
  const storeIntoRange = (cx: LiftLowerContext, v: unknown, n: number) => {
    const bytes = n * esize;
    if (bytes > REALLOC_I32_MAX) trap('list-realloc-limit', bytes);
    const ptr = allocate(cx, ealign, bytes);
    checkRange(cx, ptr, ealign, bytes);
    core.storeRange(cx, v, ptr, n);
    return ptr;
  };
  if (pt === 'i32') {
    return {
      type: t, size: 8, align: 4, flat: ['i32', 'i32'],
      load: (cx, p) => loadFromRange(cx, cx.dv.getUint32(p, true), cx.dv.getUint32(p + 4, true)),
      store: (cx, v, p) => {
        const n = core.lengthOf(v);
        const ptr = storeIntoRange(cx, v, n);
        cx.dv.setUint32(p, ptr, true);
        cx.dv.setUint32(p + 4, n, true);
      },
      liftFlat: (cx, it) => {
        const ptr = (it.vals[it.i++] as number) >>> 0;
        return loadFromRange(cx, ptr, (it.vals[it.i++] as number) >>> 0);
      },
      lowerFlat: (cx, v, out) => {
        const n = core.lengthOf(v);
        out.push(storeIntoRange(cx, v, n), n);
      },
    };
  }
  return {
    type: t, size: 16, align: 8, flat: ['i64', 'i64'],
    load: (cx, p) => loadFromRange(cx, Number(cx.dv.getBigUint64(p, true)), Number(cx.dv.getBigUint64(p + 8, true))),
    store: (cx, v, p) => {
      const n = core.lengthOf(v);
      const ptr = storeIntoRange(cx, v, n);
      cx.dv.setBigUint64(p, BigInt(ptr), true);
      cx.dv.setBigUint64(p + 8, BigInt(n), true);
    },
    liftFlat: (cx, it) => {
      const ptr = toPtr(it.vals[it.i++]);
      return loadFromRange(cx, ptr, toPtr(it.vals[it.i++]));
    },
    lowerFlat: (cx, v, out) => {
      const n = core.lengthOf(v);
      out.push(BigInt(storeIntoRange(cx, v, n)), BigInt(n));
    },
  };
}

function planList(t: ValType, elem: ValType, length: number | null, pt: PtrType): ValuePlan {
  const core = listCore(elem, pt, length === null ? `list<${elem.kind}>` : `list<${elem.kind}, ${length}>`);
  const ep = planValue(elem, pt === 'i64');
  if (length === null) return planVarList(t, pt, ep.align, ep.size, core);

  // Fixed-length list: laid out and flattened inline.
  const L = length;
  const Typed = TYPED[elem.kind];
  const checkLen = (v: unknown) => {
    const n = core.lengthOf(v);
    if (n !== L) throw new TypeError(`expected a list of exactly ${L} elements, got ${describe(v)}`);
  };
  const flat: FlatType[] = [];
  for (let i = 0; i < L; i++) flat.push(...ep.flat);
  const plan: ValuePlan = {
    type: t, size: L * ep.size, align: ep.align, flat,
    load: (cx, p) => core.loadRange(cx, p, L),
    store: (cx, v, p) => { checkLen(v); core.storeRange(cx, v, p, L); },
    liftFlat: (cx, it) => {
      const a: unknown[] | AnyTyped = Typed ? new Typed(L) : new Array(L);
      for (let i = 0; i < L; i++) (a as unknown[])[i] = ep.liftFlat(cx, it);
      return a;
    },
    lowerFlat: (cx, v, out) => {
      checkLen(v);
      if (v instanceof ArrayBuffer) v = new Uint8Array(v);
      const a = v as ArrayLike<unknown>;
      let i = 0;
      try {
        for (; i < L; i++) ep.lowerFlat(cx, a[i], out);
      } catch (e) { throw withPath(e, `list element ${i}`); }
    },
  };
  if (flat.length === 1) {
    plan.lift1 = (cx, x) => plan.liftFlat(cx, { vals: [x], i: 0 });
    plan.lower1 = (cx, v) => { const out: unknown[] = []; plan.lowerFlat(cx, v, out); return out[0] as number | bigint; };
  }
  return plan;
}

function planMap(t: ValType & { kind: 'map' }, pt: PtrType): ValuePlan {
  const m64 = pt === 'i64';
  const kp = planValue(t.key, m64), vp = planValue(t.value, m64);
  const tupleT: ValType = { kind: 'tuple', types: [t.key, t.value] };
  const [ko, vo] = fieldOffsets([t.key, t.value], pt) as [number, number];
  const es = elemSize(tupleT, pt), ea = alignment(tupleT, pt);
  const entriesOf = (v: unknown): ArrayLike<readonly [unknown, unknown]> => {
    if (v instanceof Map) return Array.from(v.entries());
    if (Array.isArray(v)) return v as [unknown, unknown][];
    throw typeError('a Map', v);
  };
  const core: ListCore = {
    // Lifted as an array of [key, value] entries, not a Map: the canonical ABI
    // keeps duplicate keys and their order, and a Map would silently drop them.
    loadRange: (cx, ptr, n) => {
      const m: [unknown, unknown][] = new Array(n);
      for (let i = 0; i < n; i++) {
        const p = ptr + i * es;
        m[i] = [kp.load(cx, p + ko), vp.load(cx, p + vo)];
      }
      return m;
    },
    lengthOf: (v) => {
      if (v instanceof Map) return v.size;
      if (Array.isArray(v)) return v.length;
      throw typeError('a Map', v);
    },
    storeRange: (cx, v, ptr, n) => {
      const es2 = entriesOf(v);
      for (let i = 0; i < n; i++) {
        const e = es2[i];
        if (!isArrayLike(e) || e.length < 2) throw withPath(typeError('a [key, value] entry', e), `map entry ${i}`);
        const p = ptr + i * es;
        try {
          kp.store(cx, e[0], p + ko);
          vp.store(cx, e[1], p + vo);
        } catch (err) { throw withPath(err, `map entry ${i}`); }
      }
    },
  };
  return planVarList(t, pt, ea, es, core);
}

// ------------------------------------------------------------------ variants

interface VariantJS {
  /** Build the JS value for case i with lifted payload. */
  make(i: number, payload: unknown): unknown;
  /** Case index of a JS value (throws TypeError). */
  match(v: unknown): number;
  /** Payload of a JS value already matched. */
  payload(v: unknown): unknown;
}

// Coercion codes between a case's flat type and the joined variant flat type.
const C_NONE = 0, C_I32_F32 = 1, C_I64_I32 = 2, C_I64_F32 = 3, C_I64_F64 = 4;

function coercion(have: FlatType, want: FlatType): number {
  // have = the joined (variant) slot type; want = the case's own flat type.
  if (have === want) return C_NONE;
  if (have === 'i32' && want === 'f32') return C_I32_F32;
  if (have === 'i64' && want === 'i32') return C_I64_I32;
  if (have === 'i64' && want === 'f32') return C_I64_F32;
  if (have === 'i64' && want === 'f64') return C_I64_F64;
  throw new Error(`internal: no coercion from ${have} to ${want}`);
}

/** lift direction: joined slot value → case value */
function coerceLift(code: number, x: unknown): unknown {
  switch (code) {
    case C_I32_F32: return bitsToF32(x as number);
    case C_I64_I32: return Number(BigInt.asUintN(32, x as bigint));
    case C_I64_F32: return bitsToF32(Number(BigInt.asUintN(32, x as bigint)));
    case C_I64_F64: return bitsToF64(x as bigint);
  }
  return x;
}

/** lower direction: case value → joined slot value */
function coerceLower(code: number, x: unknown): unknown {
  switch (code) {
    case C_I32_F32: return f32ToBits(x as number);
    case C_I64_I32: return BigInt((x as number) >>> 0);
    case C_I64_F32: return BigInt(f32ToBits(x as number));
    case C_I64_F64: return f64ToBits(x as number);
  }
  return x;
}

function zeroOf(ft: FlatType): number | bigint {
  return ft === 'i64' ? 0n : 0;
}

function dcases(t: ValType): DCase[] {
  switch (t.kind) {
    case 'variant': return t.cases.map((c) => ({ name: c.name, type: c.type }));
    case 'enum': return t.names.map((n) => ({ name: n, type: null }));
    case 'option': return [{ name: 'none', type: null }, { name: 'some', type: t.type }];
    case 'result': return [{ name: 'ok', type: t.ok }, { name: 'error', type: t.err }];
  }
  throw new Error(`internal: ${t.kind} is not a variant`);
}

function planVariant(t: ValType, pt: PtrType, js: VariantJS): ValuePlan {
  const cases = dcases(t);
  const n = cases.length;
  const m64 = pt === 'i64';
  const plans = cases.map((c) => (c.type ? planValue(c.type, m64) : null));
  const dsize = discriminantSize(n);
  const payOff = alignTo(dsize, maxCaseAlignment(cases, pt));
  const size = elemSize(t, pt), align = alignment(t, pt);
  const flat = flattenVariant(cases, pt);
  const width = flat.length - 1;
  const joined = flat.slice(1);
  // Per case: coercion codes per payload slot; null when none are needed.
  const coerce: (number[] | null)[] = cases.map((c) => {
    if (!c.type) return null;
    const ft = flattenType(c.type, pt);
    const codes = ft.map((want, i) => coercion(joined[i]!, want));
    return codes.some((x) => x !== C_NONE) ? codes : null;
  });
  const caseWidth = plans.map((p) => (p ? p.flat.length : 0));

  const badCase = (i: number): never => {
    trap('invalid-discriminant', i, n);
  };
  const readDisc = dsize === 1
    ? (cx: LiftLowerContext, p: number) => cx.u8[p]!
    : dsize === 2
      ? (cx: LiftLowerContext, p: number) => cx.dv.getUint16(p, true)
      : (cx: LiftLowerContext, p: number) => cx.dv.getUint32(p, true);
  const writeDisc = dsize === 1
    ? (cx: LiftLowerContext, p: number, i: number) => { cx.u8[p] = i; }
    : dsize === 2
      ? (cx: LiftLowerContext, p: number, i: number) => { cx.dv.setUint16(p, i, true); }
      : (cx: LiftLowerContext, p: number, i: number) => { cx.dv.setUint32(p, i, true); };
  const caseLabel = (i: number) => `case '${cases[i]!.name}'`;

  const plan: ValuePlan = {
    type: t, size, align, flat,
    load: (cx, p) => {
      const i = readDisc(cx, p);
      if (i >= n) badCase(i);
      const cp = plans[i];
      return js.make(i, cp ? cp.load(cx, p + payOff) : undefined);
    },
    store: (cx, v, p) => {
      const i = js.match(v);
      writeDisc(cx, p, i);
      const cp = plans[i];
      if (cp) {
        try { cp.store(cx, js.payload(v), p + payOff); } catch (e) { throw withPath(e, caseLabel(i)); }
      }
    },
    liftFlat: (cx, it) => {
      const i = (it.vals[it.i++] as number) >>> 0;
      if (i >= n) badCase(i);
      const start = it.i;
      const cp = plans[i];
      let val: unknown;
      if (cp) {
        const codes = coerce[i];
        if (codes === null) {
          val = cp.liftFlat(cx, it);
        } else {
          const cw = caseWidth[i]!;
          const tmp = new Array(cw);
          for (let k = 0; k < cw; k++) tmp[k] = coerceLift(codes[k]!, it.vals[start + k]);
          val = cp.liftFlat(cx, { vals: tmp, i: 0 });
        }
      }
      it.i = start + width;
      return js.make(i, val);
    },
    lowerFlat: (cx, v, out) => {
      const i = js.match(v);
      out.push(i);
      const start = out.length;
      const cp = plans[i];
      if (cp) {
        try { cp.lowerFlat(cx, js.payload(v), out); } catch (e) { throw withPath(e, caseLabel(i)); }
        const codes = coerce[i];
        if (codes !== null) {
          for (let k = 0; k < codes.length; k++) out[start + k] = coerceLower(codes[k]!, out[start + k]);
        }
      }
      for (let k = out.length - start; k < width; k++) out.push(zeroOf(joined[k]!));
    },
  };
  if (width === 0) {
    plan.lift1 = (_cx, x) => {
      const i = (x as number) >>> 0;
      if (i >= n) badCase(i);
      return js.make(i, undefined);
    };
    plan.lower1 = (_cx, v) => js.match(v);
  }
  return plan;
}

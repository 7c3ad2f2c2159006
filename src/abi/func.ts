// Function adapters (CanonicalABI.md "Lifting and Lowering Values", flatten_functype,
// canon lift / canon lower / task.return). planFunc compiles a FuncType once into
// closures that move a call's arguments and result across the boundary.

import type { FuncType, ValType } from '../types/types.ts';
import { allocate, checkRange, ensureViews, toPtr, type LiftLowerContext } from './context.ts';
import {
  alignment, elemSize, fieldOffsets, flattenFuncType, MAX_FLAT_ASYNC_PARAMS, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS,
  type CoreSig, type FlatType,
} from '../types/layout.ts';
import { planValue, type FlatIter, type ValuePlan } from './plan.ts';
import { withPath } from './values.ts';

export type CoreValue = number | bigint;

export interface FuncAdapter {
  readonly type: FuncType;
  readonly memory64: boolean;
  readonly paramPlans: readonly ValuePlan[];
  readonly resultPlan: ValuePlan | null;
  /** flatten_functype(ft, 'lift'): the core signature of the callee of `canon lift`. */
  readonly liftCoreType: CoreSig;
  /** flatten_functype(ft, 'lower'): the core signature of the func made by `canon lower`. */
  readonly lowerCoreType: CoreSig;
  /** Calling into a lifted guest func: JS args → core args (spilled through realloc when > MAX_FLAT_PARAMS). */
  lowerArgs(cx: LiftLowerContext, args: ArrayLike<unknown>): CoreValue[];
  /** The lifted guest func's core result(s) → JS value (read through the returned pointer when > MAX_FLAT_RESULTS). */
  liftResult(cx: LiftLowerContext, coreResult: unknown): unknown;
  /** A guest calling a lowered import: core args → JS args (through a pointer when > MAX_FLAT_PARAMS). */
  liftArgs(cx: LiftLowerContext, coreArgs: ArrayLike<unknown>): unknown[];
  /** JS result → the core return value, or stored through the retptr (the last core arg) when > MAX_FLAT_RESULTS. */
  lowerResult(cx: LiftLowerContext, value: unknown, coreArgs: ArrayLike<unknown>): CoreValue | undefined;
}

/** Precomputed facts about a sequence of values (the params, or the result as a 0/1-tuple). */
interface ValuesPlan {
  plans: ValuePlan[];
  names: string[];
  flat: FlatType[];
  /** layout of the tuple of all the values, for spilling */
  align: number;
  size: number;
  offsets: number[];
}

function planValues(types: ValType[], names: string[], memory64: boolean): ValuesPlan {
  const pt = memory64 ? 'i64' : 'i32';
  const plans = types.map((t) => planValue(t, memory64));
  const tuple: ValType = { kind: 'tuple', types };
  return {
    plans,
    names,
    flat: plans.flatMap((p) => p.flat),
    align: types.length ? alignment(tuple, pt) : 1,
    size: types.length ? elemSize(tuple, pt) : 0,
    offsets: fieldOffsets(types, pt),
  };
}

/** lift_flat_values(cx, max_flat, vi, ts) compiled for one sequence of types. */
function compileLiftValues(vp: ValuesPlan, maxFlat: number): (cx: LiftLowerContext, vals: ArrayLike<unknown>) => unknown[] {
  const { plans, offsets } = vp;
  const n = plans.length;
  if (vp.flat.length > maxFlat) {
    const { align, size } = vp;
    return (cx, vals) => {
      const ptr = toPtr(vals[0]);
      checkRange(cx, ptr, align, size);
      const out = new Array(n);
      for (let i = 0; i < n; i++) out[i] = plans[i]!.load(cx, ptr + offsets[i]!);
      return out;
    };
  }
  if (plans.every((p) => p.lift1 && p.flat.length === 1)) {
    const lifts = plans.map((p) => p.lift1!);
    return (cx, vals) => {
      const out = new Array(n);
      for (let i = 0; i < n; i++) out[i] = lifts[i]!(cx, vals[i]);
      return out;
    };
  }
  return (cx, vals) => {
    const it: FlatIter = { vals, i: 0 };
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = plans[i]!.liftFlat(cx, it);
    return out;
  };
}

/**
 * lower_flat_values(cx, max_flat, vs, ts) without out_param: flat values, or a
 * single pointer to a freshly allocated tuple when there are too many.
 */
function compileLowerValues(vp: ValuesPlan, maxFlat: number, memory64: boolean): (cx: LiftLowerContext, vs: ArrayLike<unknown>) => CoreValue[] {
  const { plans, offsets, names } = vp;
  const n = plans.length;
  const where = (i: number) => `argument ${i + 1}${names[i] ? ` '${names[i]}'` : ''}`;
  if (vp.flat.length > maxFlat) {
    const { align, size } = vp;
    return (cx, vs) => {
      const ptr = allocate(cx, align, size);
      checkRange(cx, ptr, align, size);
      let i = 0;
      try {
        for (; i < n; i++) plans[i]!.store(cx, vs[i], ptr + offsets[i]!);
      } catch (e) { throw withPath(e, where(i)); }
      return [memory64 ? BigInt(ptr) : ptr];
    };
  }
  if (plans.every((p) => p.lower1 && p.flat.length === 1)) {
    const lowers = plans.map((p) => p.lower1!);
    return (cx, vs) => {
      const out = new Array<CoreValue>(n);
      let i = 0;
      try {
        for (; i < n; i++) out[i] = lowers[i]!(cx, vs[i]);
      } catch (e) { throw withPath(e, where(i)); }
      return out;
    };
  }
  return (cx, vs) => {
    const out: unknown[] = [];
    let i = 0;
    try {
      for (; i < n; i++) plans[i]!.lowerFlat(cx, vs[i], out);
    } catch (e) { throw withPath(e, where(i)); }
    return out as CoreValue[];
  };
}

const fnCache32 = new WeakMap<FuncType, FuncAdapter>();
const fnCache64 = new WeakMap<FuncType, FuncAdapter>();

/** Compile the synchronous-ABI adapter for a function type (cached per FuncType object). */
export function planFunc(ft: FuncType, memory64 = false): FuncAdapter {
  const cache = memory64 ? fnCache64 : fnCache32;
  let a = cache.get(ft);
  if (!a) {
    a = buildFunc(ft, memory64);
    cache.set(ft, a);
  }
  return a;
}

function buildFunc(ft: FuncType, memory64: boolean): FuncAdapter {
  const params = planValues(ft.params.map((p) => p.type), ft.params.map((p) => p.name), memory64);
  const rp = ft.result ? planValue(ft.result, memory64) : null;
  const liftParams = compileLiftValues(params, MAX_FLAT_PARAMS);
  const lowerParams = compileLowerValues(params, MAX_FLAT_PARAMS, memory64);

  let liftResult: FuncAdapter['liftResult'];
  let lowerResult: FuncAdapter['lowerResult'];
  if (rp === null) {
    liftResult = () => undefined;
    lowerResult = () => undefined;
  } else if (rp.flat.length > MAX_FLAT_RESULTS) {
    const { align, size } = rp;
    liftResult = (cx, r) => {
      ensureViews(cx);
      const ptr = toPtr(r);
      checkRange(cx, ptr, align, size);
      return rp.load(cx, ptr);
    };
    lowerResult = (cx, v, coreArgs) => {
      ensureViews(cx);
      const ptr = toPtr(coreArgs[coreArgs.length - 1]);
      checkRange(cx, ptr, align, size);
      try { rp.store(cx, v, ptr); } catch (e) { throw withPath(e, 'result'); }
      return undefined;
    };
  } else if (rp.flat.length === 1) {
    const lift1 = rp.lift1 ?? ((cx: LiftLowerContext, x: unknown) => rp.liftFlat(cx, { vals: [x], i: 0 }));
    const lower1 = rp.lower1 ?? ((cx: LiftLowerContext, v: unknown) => {
      const out: unknown[] = [];
      rp.lowerFlat(cx, v, out);
      return out[0] as CoreValue;
    });
    liftResult = (cx, r) => { ensureViews(cx); return lift1(cx, r); };
    lowerResult = (cx, v) => {
      ensureViews(cx);
      try { return lower1(cx, v); } catch (e) { throw withPath(e, 'result'); }
    };
  } else {
    // A result type with no flat values (e.g. empty flags).
    liftResult = (cx) => rp.liftFlat(cx, { vals: [], i: 0 });
    lowerResult = (cx, v) => {
      try { rp.lowerFlat(cx, v, []); } catch (e) { throw withPath(e, 'result'); }
      return undefined;
    };
  }

  return {
    type: ft,
    memory64,
    paramPlans: params.plans,
    resultPlan: rp,
    liftCoreType: flattenFuncType(ft, 'lift', { memory64 }),
    lowerCoreType: flattenFuncType(ft, 'lower', { memory64 }),
    lowerArgs: (cx, args) => { ensureViews(cx); return lowerParams(cx, args); },
    liftResult,
    liftArgs: (cx, coreArgs) => { ensureViews(cx); cx.fuel = cx.fuelLimit; return liftParams(cx, coreArgs); },
    lowerResult,
  };
}

// ---------------------------------------------------------------- async ABI

export interface AsyncLiftAdapter {
  readonly type: FuncType;
  /** flatten_functype(async, 'lift'): params as for sync (≤ MAX_FLAT_PARAMS), results [i32] with a callback else []. */
  readonly coreType: CoreSig;
  /** Core signature of this function's `task.return`: the result flattened with MAX_FLAT_PARAMS. */
  readonly taskReturnType: CoreSig;
  /** JS args → core args for the async callee (same rules as sync lowerArgs). */
  lowerArgs(cx: LiftLowerContext, args: ArrayLike<unknown>): CoreValue[];
  /** `task.return` core args → the JS result value (undefined when the function has no result). */
  liftTaskReturn(cx: LiftLowerContext, coreArgs: ArrayLike<unknown>): unknown;
}

export interface AsyncLowerAdapter {
  readonly type: FuncType;
  /** flatten_functype(async, 'lower'): params ≤ MAX_FLAT_ASYNC_PARAMS else [ptr], + [ptr] when there is a result; results [i32]. */
  readonly coreType: CoreSig;
  /** Core args → JS args (through a pointer when > MAX_FLAT_ASYNC_PARAMS flat params). */
  liftArgs(cx: LiftLowerContext, coreArgs: ArrayLike<unknown>): unknown[];
  /** Store the JS result through the retptr (the last core arg). No-op for functions without a result. */
  lowerResult(cx: LiftLowerContext, value: unknown, coreArgs: ArrayLike<unknown>): void;
}

const asyncLiftCache = [new WeakMap<FuncType, AsyncLiftAdapter>(), new WeakMap<FuncType, AsyncLiftAdapter>(),
  new WeakMap<FuncType, AsyncLiftAdapter>(), new WeakMap<FuncType, AsyncLiftAdapter>()];
const asyncLowerCache = [new WeakMap<FuncType, AsyncLowerAdapter>(), new WeakMap<FuncType, AsyncLowerAdapter>()];

/** Adapter for `canon lift ... async` (with or without a callback). */
export function planAsyncLift(ft: FuncType, memory64 = false, callback = true): AsyncLiftAdapter {
  const cache = asyncLiftCache[(memory64 ? 2 : 0) + (callback ? 1 : 0)]!;
  let a = cache.get(ft);
  if (a) return a;
  const params = planValues(ft.params.map((p) => p.type), ft.params.map((p) => p.name), memory64);
  const results = planValues(ft.result ? [ft.result] : [], ['result'], memory64);
  const lowerParams = compileLowerValues(params, MAX_FLAT_PARAMS, memory64);
  const liftResults = compileLiftValues(results, MAX_FLAT_PARAMS);
  const pt = memory64 ? 'i64' : 'i32';
  a = {
    type: ft,
    coreType: flattenFuncType(ft, 'lift', { memory64, async: true, callback }),
    taskReturnType: { params: results.flat.length > MAX_FLAT_PARAMS ? [pt] : results.flat, results: [] },
    lowerArgs: (cx, args) => { ensureViews(cx); return lowerParams(cx, args); },
    liftTaskReturn: (cx, coreArgs) => {
      ensureViews(cx);
      const r = liftResults(cx, coreArgs);
      return r[0];
    },
  };
  cache.set(ft, a);
  return a;
}

/** Adapter for `canon lower ... async`. */
export function planAsyncLower(ft: FuncType, memory64 = false): AsyncLowerAdapter {
  const cache = asyncLowerCache[memory64 ? 1 : 0]!;
  let a = cache.get(ft);
  if (a) return a;
  const params = planValues(ft.params.map((p) => p.type), ft.params.map((p) => p.name), memory64);
  const liftParams = compileLiftValues(params, MAX_FLAT_ASYNC_PARAMS);
  const rp = ft.result ? planValue(ft.result, memory64) : null;
  a = {
    type: ft,
    coreType: flattenFuncType(ft, 'lower', { memory64, async: true }),
    liftArgs: (cx, coreArgs) => { ensureViews(cx); cx.fuel = cx.fuelLimit; return liftParams(cx, coreArgs); },
    lowerResult: (cx, v, coreArgs) => {
      if (rp === null) return;
      ensureViews(cx);
      const ptr = toPtr(coreArgs[coreArgs.length - 1]);
      checkRange(cx, ptr, rp.align, rp.size);
      try { rp.store(cx, v, ptr); } catch (e) { throw withPath(e, 'result'); }
    },
  };
  cache.set(ft, a);
  return a;
}

/**
 * Helpers for stream/future buffers and other callers: lift/lower `count` values of one
 * type at `ptr` after the spec's range checks (load_list_from_range / store into a guest buffer).
 */
export function loadValues(cx: LiftLowerContext, t: ValType, ptr: number, count: number): unknown[] {
  ensureViews(cx);
  const p = planValue(t, cx.opts.memory64);
  checkRange(cx, ptr, p.align, count * p.size);
  const out = new Array(count);
  for (let i = 0; i < count; i++) out[i] = p.load(cx, ptr + i * p.size);
  return out;
}

export function storeValues(cx: LiftLowerContext, t: ValType, vs: ArrayLike<unknown>, ptr: number): void {
  ensureViews(cx);
  const p = planValue(t, cx.opts.memory64);
  checkRange(cx, ptr, p.align, vs.length * p.size);
  for (let i = 0; i < vs.length; i++) p.store(cx, vs[i], ptr + i * p.size);
}

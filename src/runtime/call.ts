// Calls across the component boundary: `canon lift` turns a core function
// into a component function, `canon lower` turns a component function into a
// core function (CanonicalABI.md "canon lift", "canon lower").

import { createContext, type CanonOptions, type LiftLowerContext } from '../abi/context.ts';
import { planFunc } from '../abi/func.ts';
import { Trap, trapIf } from '../errors.ts';
import type { FuncType } from '../types/types.ts';
import { CallScope } from './resources.ts';
import type { ComponentInstanceState } from './instance.ts';

/**
 * A component-level function value. `call` takes and returns JS values (see
 * the value mapping in the README); `caller` is the component instance making
 * the call, or null for the host.
 */
export abstract class ComponentFunc {
  type: FuncType;
  constructor(type: FuncType) { this.type = type; }
  abstract call(args: unknown[], caller: ComponentInstanceState | null): unknown;
}

/** A function implemented by the host in JavaScript. */
export class HostFunc extends ComponentFunc {
  fn: (...args: any[]) => unknown;
  constructor(type: FuncType, fn: (...args: any[]) => unknown) {
    super(type);
    this.fn = fn;
  }
  call(args: unknown[]): unknown {
    return this.fn(...args);
  }
}

/** Convert anything a core call can throw into a Trap (keeping host errors' identity as the cause). */
export function toTrap(e: unknown): unknown {
  if (e instanceof Trap) return e;
  if (e instanceof WebAssembly.RuntimeError) return new Trap(e.message, { cause: e });
  if (e instanceof RangeError && /call stack/i.test(e.message)) return new Trap('call stack exhausted', { cause: e });
  return e;
}

/** canon lift (synchronous): a core function becomes a component function of `inst`. */
export class LiftedFunc extends ComponentFunc {
  inst: ComponentInstanceState;
  core: Function;
  opts: CanonOptions;
  cx: LiftLowerContext;
  private adapter: ReturnType<typeof planFunc>;
  constructor(type: FuncType, inst: ComponentInstanceState, core: Function, opts: CanonOptions) {
    super(type);
    this.inst = inst;
    this.core = core;
    this.opts = opts;
    this.cx = createContext(opts, inst.handleOps);
    this.adapter = planFunc(type, opts.memory64);
  }

  call(args: unknown[], caller: ComponentInstanceState | null): unknown {
    const inst = this.inst;
    if (!inst.mayEnterFrom(caller)) throw new Trap(inst.poisoned ? 'cannot enter component instance: it trapped earlier' : 'cannot enter component instance');
    inst.enterFrom(caller);
    const outerScope = inst.scope;
    const scope = new CallScope();
    inst.scope = scope;
    try {
      const flat = this.adapter.lowerArgs(this.cx, args);
      const raw = this.core(...flat);
      const result = this.adapter.liftResult(this.cx, raw);
      const pr = this.opts.postReturn;
      if (pr) {
        inst.mayLeave = false;
        try { raw === undefined ? pr() : pr(raw); } finally { inst.mayLeave = true; }
      }
      trapIf(scope.numBorrows > 0, 'borrow handles still remain at the end of the call');
      return result;
    } catch (e) {
      const t = toTrap(e);
      if (t instanceof Trap || !(e instanceof TypeError)) inst.poison();
      throw t;
    } finally {
      inst.scope = outerScope;
      inst.leaveTo(caller);
    }
  }
}

/** canon lower (synchronous): returns the core function that calls `callee` from `inst`. */
export function lowerSync(callee: ComponentFunc, type: FuncType, inst: ComponentInstanceState, opts: CanonOptions): Function {
  const adapter = planFunc(type, opts.memory64);
  const cx = createContext(opts, inst.handleOps);
  return function lowered(...coreArgs: unknown[]) {
    trapIf(!inst.mayLeave, 'cannot leave component instance');
    const outer = inst.lowerScope;
    const scope = new CallScope();
    inst.lowerScope = scope;
    try {
      const args = adapter.liftArgs(cx, coreArgs);
      const result = callee.call(args, inst);
      return adapter.lowerResult(cx, result, coreArgs);
    } catch (e) {
      throw toTrap(e);
    } finally {
      inst.lowerScope = outer;
      if (scope.lenders) for (const h of scope.lenders) h.numLends--;
    }
  };
}

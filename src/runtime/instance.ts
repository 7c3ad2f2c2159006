// A component instance's run-time state (CanonicalABI.md "Component
// Instances"): entry/leave flags, the handle table, and the map from the
// validator's static resource types to this instance's runtime resources.

import { trap, trapIf } from '../errors.ts';
import type { HandleOps } from '../abi/context.ts';
import type { FutureType, ResourceType, StreamType } from '../types/types.ts';
import type { Thread } from './task.ts';
import {
  CallScope, HandleTable, ResourceHandle, ResourceHandleEntry, RuntimeResource, runDestructor,
} from './resources.ts';
import { CopyState, ReadableFutureEnd, ReadableStreamEnd, sameType } from './streams.ts';
import { hostToSharedFuture, hostToSharedStream } from './host-streams.ts';
import { ErrorContext } from './error-context.ts';

export class ComponentInstanceState {
  parent: ComponentInstanceState | null;
  mayEnter = true;
  mayLeave = true;
  poisoned = false;
  handles = new HandleTable();
  /** bytes one host call from this instance may copy out of it (-S hostcall-fuel; src/runtime/limits.ts) */
  hostcallFuel = Infinity;
  /** static resource type (from validation) → runtime resource */
  resources = new Map<ResourceType, RuntimeResource>();
  /** the call currently running in this instance (sync calls cannot interleave within one instance) */
  scope: CallScope | null = null;
  /** the outgoing (lowered) call in progress: handles this instance lent to it */
  lowerScope: CallScope | null = null;
  // ---- async state (CanonicalABI.md "Component Instances"; task.ts) ----
  backpressure = 0;
  numWaitingToEnter = 0;
  exclusiveThread: Thread | null = null;
  /** the instance's thread table (thread.index) */
  threads = new HandleTable();
  /** core code of this instance may block, so it is entered through JSPI (task.ts) */
  jspi = false;
  exclusiveWaiters: Thread[] = [];
  backpressureWaiters: Thread[] = [];
  /** the trap that poisoned this instance, when it happened outside a synchronous caller */
  trapError: unknown = undefined;
  readonly handleOps: HandleOps;

  constructor(parent: ComponentInstanceState | null) {
    this.parent = parent;
    this.handleOps = makeHandleOps(this);
  }

  selfAndAncestors(): ComponentInstanceState[] {
    const out: ComponentInstanceState[] = [];
    for (let i: ComponentInstanceState | null = this; i; i = i.parent) out.push(i);
    return out;
  }

  isAncestorOf(other: ComponentInstanceState): boolean {
    for (let i = other.parent; i; i = i.parent) if (i === this) return true;
    return false;
  }

  private enteringSet(caller: ComponentInstanceState | null): ComponentInstanceState[] {
    const mine = this.selfAndAncestors();
    if (!caller) return mine;
    const theirs = new Set(caller.selfAndAncestors());
    return mine.filter((i) => !theirs.has(i));
  }

  mayEnterFrom(caller: ComponentInstanceState | null): boolean {
    if (this.poisoned) return false;
    if (!caller && !this.parent) return this.mayEnter;
    // A component instance may not call into its ancestors or its descendants (the reference
    // and wasmtime async tests trap-on-reenter.wast / reentrance.wast expect "cannot enter").
    if (caller && caller !== this && (caller.isAncestorOf(this) || this.isAncestorOf(caller))) return false;
    for (const i of this.enteringSet(caller)) if (!i.mayEnter || i.poisoned) return false;
    return true;
  }

  enterFrom(caller: ComponentInstanceState | null): void {
    if (!caller && !this.parent) { this.mayEnter = false; return; }
    for (const i of this.enteringSet(caller)) i.mayEnter = false;
  }

  leaveTo(caller: ComponentInstanceState | null): void {
    if (!caller && !this.parent) { this.mayEnter = true; return; }
    for (const i of this.enteringSet(caller)) i.mayEnter = true;
  }

  /** After a trap, the instance (and the instances enclosing it) can no longer be entered. */
  poison(): void {
    for (const i of this.selfAndAncestors()) i.poisoned = true;
  }

  resource(rt: ResourceType): RuntimeResource {
    const r = this.resources.get(rt.root);
    if (!r) throw new Error(`internal: resource type ${rt.name || rt.id} is not bound in this instance`);
    return r;
  }
}

function makeHandleOps(inst: ComponentInstanceState): HandleOps {
  return {
    liftOwn(rt, i) {
      const R = inst.resource(rt);
      const e = resourceEntry(inst, R, i);
      trapIf(e.numLends !== 0, 'move-lent-handle', i);
      trapIf(!e.own, 'handle-not-own', i);
      inst.handles.remove(i);
      return R.impl === null ? e.rep : new ResourceHandle(R, e.rep, true);
    },
    lowerOwn(rt, v) {
      const R = inst.resource(rt);
      let rep: unknown;
      if (v instanceof ResourceHandle) {
        if (v.resource !== R) throw new TypeError(`expected a handle of resource ${R.name || '(anonymous)'}, got one of ${v.resource.name || '(anonymous)'}`);
        if (!v.owned) throw new TypeError('expected an owned handle, got a borrow');
        v.take();
        rep = v.rep;
      } else if (R.impl === null) {
        if (v === undefined || v === null) throw new TypeError(`expected a ${R.name || 'resource'} value, got ${v}`);
        rep = v;
      } else throw new TypeError(`expected a resource handle of ${R.name || 'resource'}`);
      return inst.handles.add(new ResourceHandleEntry(R, rep, true, null));
    },
    liftBorrow(rt, i) {
      const R = inst.resource(rt);
      const e = resourceEntry(inst, R, i);
      const scope = inst.lowerScope;
      if (scope) {
        e.numLends++;
        (scope.lenders ??= []).push(e);
      }
      return R.impl === null ? e.rep : new ResourceHandle(R, e.rep, false);
    },
    lowerBorrow(rt, v) {
      const R = inst.resource(rt);
      let rep: unknown;
      if (v instanceof ResourceHandle) {
        if (v.resource !== R) throw new TypeError(`expected a handle of resource ${R.name || '(anonymous)'}, got one of ${v.resource.name || '(anonymous)'}`);
        if (v.dropped) throw new TypeError('resource handle was already dropped');
        rep = v.rep;
      } else if (R.impl === null) rep = v;
      else throw new TypeError(`expected a resource handle of ${R.name || 'resource'}`);
      if (R.impl === inst) return rep as number;
      const scope = inst.scope;
      const e = new ResourceHandleEntry(R, rep, false, scope);
      if (scope) scope.numBorrows++;
      return inst.handles.add(e);
    },
    liftStream(t: StreamType, i: number): unknown {
      const e = inst.handles.remove(i);
      trapIf(!(e instanceof ReadableStreamEnd), 'handle-not-stream-end', i, 'readable');
      const end = e as ReadableStreamEnd;
      trapIf(!sameType(end.shared.t, t.elem), 'stream-type-mismatch');
      trapIf(end.state === CopyState.DONE, 'lift-stream-after-drop');
      trapIf(end.state !== CopyState.IDLE, 'lift-stream-while-reading');
      trapIf(end.inWaitableSet(), 'lift-stream-in-waitable-set');
      return end.shared;
    },
    lowerStream(t: StreamType, v: unknown): number {
      return inst.handles.add(new ReadableStreamEnd(hostToSharedStream(t.elem, v)));
    },
    liftFuture(t: FutureType, i: number): unknown {
      const e = inst.handles.remove(i);
      trapIf(!(e instanceof ReadableFutureEnd), 'handle-not-future-end', i, 'readable');
      const end = e as ReadableFutureEnd;
      trapIf(!sameType(end.shared.t, t.elem), 'future-type-mismatch');
      trapIf(end.state === CopyState.DONE, 'lift-future-after-read');
      trapIf(end.state !== CopyState.IDLE, 'lift-future-while-reading');
      trapIf(end.inWaitableSet(), 'lift-future-in-waitable-set');
      return end.shared;
    },
    lowerFuture(t: FutureType, v: unknown): number {
      return inst.handles.add(new ReadableFutureEnd(hostToSharedFuture(t.elem, v)));
    },
    liftErrorContext(i: number): unknown {
      const e = inst.handles.get(i);
      trapIf(!(e instanceof ErrorContext), 'handle-not-error-context', i);
      return e;
    },
    lowerErrorContext(v: unknown): number {
      if (!(v instanceof ErrorContext)) throw new TypeError('expected an ErrorContext');
      return inst.handles.add(v);
    },
  };
}

/** The handle-table entry at `i`, which must be a handle of resource `R` (lift_own/lift_borrow, resource.drop/rep). */
function resourceEntry(inst: ComponentInstanceState, R: RuntimeResource, i: number): ResourceHandleEntry {
  const h = inst.handles.get(i);
  trapIf(!(h instanceof ResourceHandleEntry), 'handle-not-resource', i);
  const e = h as ResourceHandleEntry;
  trapIf(e.rt !== R, 'handle-wrong-resource-type', i);
  return e;
}

/** canon resource.drop */
export function resourceDrop(inst: ComponentInstanceState, R: RuntimeResource, i: number): void {
  trapIf(!inst.mayLeave, 'cannot-leave-component');
  const e = resourceEntry(inst, R, i);
  trapIf(e.numLends !== 0, 'drop-lent-handle', i);
  inst.handles.remove(i);
  if (e.own) runDestructor(R, e.rep, inst);
  else if (e.borrowScope) e.borrowScope.numBorrows--;
}

export function resourceNew(inst: ComponentInstanceState, R: RuntimeResource, rep: number): number {
  trapIf(!inst.mayLeave, 'cannot-leave-component');
  return inst.handles.add(new ResourceHandleEntry(R, rep, true, null));
}

export function resourceRep(inst: ComponentInstanceState, R: RuntimeResource, i: number): number {
  return resourceEntry(inst, R, i).rep;
}

export { trap };

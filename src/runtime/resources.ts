// Runtime resource types, handles and the per-instance handle table
// (CanonicalABI.md "Table State", "Resource State").

import { trap, trapIf } from '../errors.ts';
import type { ComponentInstanceState } from './instance.ts';

/**
 * A resource type at run time: one per defining component instance (or one
 * per host-defined resource). Handles of different runtime resources never
 * mix, even when they come from the same static definition.
 */
export class RuntimeResource {
  name: string;
  /** the component instance that implements it; null for resources defined by the host */
  impl: ComponentInstanceState | null;
  /** destructor: for guest resources the core dtor, for host resources the host's drop callback */
  dtor: ((rep: any) => void) | null;
  constructor(name: string, impl: ComponentInstanceState | null, dtor: ((rep: any) => void) | null) {
    this.name = name;
    this.impl = impl;
    this.dtor = dtor;
  }
}

/** A resource type defined by the embedder. Values of it are the host's own JS objects. */
export class HostResource extends RuntimeResource {
  constructor(name: string, options: { drop?: (rep: any) => void } = {}) {
    super(name, null, options.drop ?? null);
  }
}

/** An entry of a handle table that refers to a resource. */
export class ResourceHandleEntry {
  rt: RuntimeResource;
  rep: any;
  own: boolean;
  /** for borrows lowered into a call: the call that must drop them */
  borrowScope: CallScope | null;
  numLends = 0;
  constructor(rt: RuntimeResource, rep: any, own: boolean, borrowScope: CallScope | null) {
    this.rt = rt;
    this.rep = rep;
    this.own = own;
    this.borrowScope = borrowScope;
  }
}

/** Bookkeeping for one synchronous call into an instance: borrows it received, handles it lent. */
export class CallScope {
  numBorrows = 0;
  lenders: ResourceHandleEntry[] | null = null;
}

/**
 * A handle crossing to the host: an owned or borrowed guest resource. The
 * host passes it back to calls unchanged; `drop()` releases an owned one.
 */
export class ResourceHandle {
  readonly resource: RuntimeResource;
  readonly rep: any;
  readonly owned: boolean;
  #dropped = false;
  constructor(resource: RuntimeResource, rep: any, owned: boolean) {
    this.resource = resource;
    this.rep = rep;
    this.owned = owned;
  }
  get dropped(): boolean { return this.#dropped; }
  /** Consume the handle (it moves into a call); throws if already consumed. */
  take(): void {
    if (this.#dropped) throw new TypeError(`resource handle of ${this.resource.name || 'resource'} was already moved or dropped`);
    this.#dropped = true;
  }
  /** Drop an owned handle, running the resource's destructor. */
  drop(): void {
    if (!this.owned) throw new TypeError('cannot drop a borrowed handle');
    this.take();
    runDestructor(this.resource, this.rep, null);
  }
  [Symbol.dispose](): void {
    if (this.owned && !this.#dropped) this.drop();
  }
}

export function runDestructor(rt: RuntimeResource, rep: any, caller: ComponentInstanceState | null): void {
  if (!rt.dtor) return;
  const impl = rt.impl;
  if (impl) {
    trapIf(!impl.mayEnterFrom(caller), 'cannot-enter-component');
    impl.enterFrom(caller);
    try { rt.dtor(rep); } catch (e) { impl.poison(); throw e; } finally { impl.leaveTo(caller); }
  } else rt.dtor(rep);
}

const MAX_LENGTH = 2 ** 28 - 1;

/** A component instance's table of handles: indices from 1, freed slots reused LIFO. */
export class HandleTable {
  array: unknown[] = [undefined];
  free: number[] = [];
  /** the most live handles (the spec's 2^28-1 unless a limit lowers it: -S max-resources) */
  maxLength = MAX_LENGTH;
  /** names the limit in the trap when it is not the spec's */
  limitName: string | null = null;

  setMaxLength(n: number, name: string): void {
    this.maxLength = Math.min(n, MAX_LENGTH);
    this.limitName = name;
  }

  get(i: number): unknown {
    const e = i > 0 && i < this.array.length ? this.array[i] : undefined;
    if (e === undefined) trap('unknown-handle', i);
    return e;
  }

  add(e: unknown): number {
    if (this.free.length > 0) {
      const i = this.free.pop()!;
      this.array[i] = e;
      return i;
    }
    const i = this.array.length;
    if (i > this.maxLength) {
      if (this.limitName === null) trap('handle-table-full');
      trap('handle-table-limit', this.limitName);
    }
    this.array.push(e);
    return i;
  }

  remove(i: number): unknown {
    const e = this.get(i);
    this.array[i] = undefined;
    this.free.push(i);
    return e;
  }
}

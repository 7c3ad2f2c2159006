// Resource limits of an instantiation (wasmtime's `-W max-instances` /
// `max-memories` / `max-tables`, `-S max-resources`, `-S hostcall-fuel`).
// Counts of core instances, memories and tables are bookkeeping per top-level
// instantiation (a wasmtime Store); handles and host-call copies are checked by
// the handle table and by the ABI's list/string lifting. Memory and table
// sizes are compile-time limits: src/binary/limits.ts.

import { LinkError, trap } from '../errors.ts';
import { moduleLimitInfo } from '../binary/limits.ts';
import type { ComponentInstanceState } from './instance.ts';

export type { CompileLimits } from '../binary/limits.ts';

/** Limits of one instantiation (a wasmtime Store): the component and every component nested in it. */
export interface InstanceLimits {
  /** core instances created by the instantiation (wasmtime's default 10,000) */
  maxInstances?: number;
  /** linear memories defined by those core instances (wasmtime's default 10,000) */
  maxMemories?: number;
  /** tables defined by those core instances (wasmtime's default 10,000) */
  maxTables?: number;
  /** handles (resources, streams, futures, subtasks, ...) each component instance may hold */
  maxResources?: number;
  /** bytes one call of a host import may copy out of the guest (its string and list arguments) */
  hostcallFuel?: number;
}

/** wasmtime's defaults (what `weir run` applies when a flag is not given). */
export const WASMTIME_LIMIT_DEFAULTS: Required<InstanceLimits> = {
  maxInstances: 10_000,
  maxMemories: 10_000,
  maxTables: 10_000,
  maxResources: 1_000_000,
  hostcallFuel: 128 * 2 ** 20,
};

// ---------------------------------------------------------------- instantiation

/** Counts of one top-level instantiation. */
class StoreCounts {
  limits: InstanceLimits;
  instances = 0;
  memories = 0;
  tables = 0;
  constructor(limits: InstanceLimits) { this.limits = limits; }
}

let active: StoreCounts | null = null;

/** Run one top-level instantiation under `limits` (instantiation is synchronous). */
export function withInstanceLimits<T>(limits: InstanceLimits | undefined, f: () => T): T {
  const outer = active;
  active = limits ? new StoreCounts(limits) : null;
  try { return f(); } finally { active = outer; }
}

function countTooHigh(what: string, n: number, limit: number, flag: string): never {
  trap('resource-limit', what, n, flag, limit);
}

/** Called before each core instantiation: refuses a module the compile limits ruled out, and counts. */
export function chargeCoreInstance(m: WebAssembly.Module): void {
  const info = moduleLimitInfo(m);
  if (info?.error) throw new LinkError(info.error);
  const c = active;
  if (c === null) return;
  const l = c.limits;
  c.instances++;
  if (l.maxInstances !== undefined && c.instances > l.maxInstances) countTooHigh('instance', c.instances, l.maxInstances, 'max-instances');
  if (!info) return;
  c.memories += info.memories;
  if (l.maxMemories !== undefined && c.memories > l.maxMemories) countTooHigh('memory', c.memories, l.maxMemories, 'max-memories');
  c.tables += info.tables;
  if (l.maxTables !== undefined && c.tables > l.maxTables) countTooHigh('table', c.tables, l.maxTables, 'max-tables');
}

/** Apply the per-instance limits of the current instantiation to a new component instance. */
export function applyInstanceLimits(state: ComponentInstanceState): void {
  const l = active?.limits;
  if (!l) return;
  if (l.maxResources !== undefined) state.handles.setMaxLength(l.maxResources, `max-resources ${l.maxResources}`);
  if (l.hostcallFuel !== undefined) state.hostcallFuel = l.hostcallFuel;
}

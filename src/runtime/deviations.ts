// Known deviations of shipped toolchains from the Component Model spec, and
// the narrow fixes Weir applies for them.
//
// Weir follows the current spec. Some toolchains that people actually used
// emit call sequences the current spec traps on, although their authors meant
// something well defined (and a later release of the toolchain does that).
// A component whose core modules (or the component itself) carry such a
// toolchain in their `producers` section get the behaviour the authors meant,
// and nothing else changes: every other component, and every component under
// `deviations: 'strict'` (`weir run --strict`), is held to the spec. In strict
// mode the trap names the likely cause and the fix.
//
// Each fix is applied where the rule is checked (src/runtime/canon.ts asks
// `deviationHooks(inst)` when it builds the built-ins of an instance), so a
// component without a listed producer pays nothing.

import { Trap } from '../errors.ts';
import { TrapReason } from '../trap-reasons.ts';
import { componentProducers, coreModuleProducers, type Producer } from '../binary/producers.ts';
import type { ComponentDef } from '../types/validate.ts';
import type { ComponentInstanceState } from './instance.ts';

export type DeviationId = 'sync-cancel-in-waitable-set' | 'stream-count-too-large';

export interface DeviationEntry {
  id: DeviationId;
  /** `processed-by` name in the producers section */
  producer: string;
  /** first affected version (inclusive) */
  from: string;
  /** first version without the deviation */
  fixedIn: string;
  /** what the toolchain does, and which spec rule that breaks */
  cause: string;
  /** what Weir does for it instead of trapping */
  fix: string;
}

/** The table. Sources: the toolchain's published code at the named tags, and the spec's definitions.py. */
export const DEVIATIONS: readonly DeviationEntry[] = [
  {
    // wit-bindgen crates/guest-rust/src/rt/async_support/inter_task_wakeup.rs,
    // cancel_inter_task_stream_read: 0.49.0–0.58.x call `stream.cancel-read`
    // (synchronous) on the inter-task wakeup `stream` (no payload) and only then
    // `waitable.join(h, 0)`; 0.59.0 (PR #1638) swapped the two calls. Since
    // component-model PR #647 (May 2026) `cancel_copy` has
    // `trap_if(e.in_waitable_set() and not async_)`.
    id: 'sync-cancel-in-waitable-set',
    producer: 'wit-bindgen-rust',
    from: '0.49.0',
    fixedIn: '0.59.0',
    cause: 'cancels its inter-task wakeup stream read synchronously while the stream is still in a waitable set',
    fix: 'the stream end leaves its waitable set before the synchronous stream.cancel-read, as wit-bindgen-rust 0.59 does',
  },
  {
    // wit-bindgen stream_support.rs, StreamReadOp::start: before 0.56.0 the
    // count passed to `stream.read` is `buf.spare_capacity_mut().len()`. For a
    // `stream` without payload the buffer is a Vec<()>, whose capacity is
    // usize::MAX, so the count is 2^32-1 on wasm32. The spec's
    // BufferGuestImpl has `trap_if(length > Buffer.MAX_LENGTH)` with
    // MAX_LENGTH = 2^28-1. 0.56.0 (PR #1588) passes min(count, 2^28-1) to
    // both stream.read and stream.write.
    id: 'stream-count-too-large',
    producer: 'wit-bindgen-rust',
    from: '0.0.0',
    fixedIn: '0.56.0',
    cause: 'passes counts above 2^28-1 to stream.read/stream.write (2^32-1 for a stream without payload)',
    fix: 'the count is clamped to 2^28-1, as wit-bindgen-rust 0.56 does',
  },
];

/** A table entry matched by a producer of the component. */
export interface MatchedDeviation {
  entry: DeviationEntry;
  /** the producer as written in the section */
  producer: Producer;
}

/** What `onDeviation` receives the first time a fix takes effect for a compiled component. */
export interface AppliedDeviation {
  id: DeviationId;
  producer: string;
  version: string;
  cause: string;
  fix: string;
  fixedIn: string;
}

export type DeviationMode = 'apply' | 'strict';

export interface DeviationOptions {
  /** 'apply' (default): fix known deviations of listed toolchains; 'strict': hold every component to the spec */
  deviations?: DeviationMode;
  /** called once per compiled component and deviation, when its fix first takes effect */
  onDeviation?: (d: AppliedDeviation) => void;
}

/** The leading x.y.z of a version string ("0.58.0", "1.90.0 (1159e78c4 2025-09-14)"), or null. */
function parseVersion(v: string): [number, number, number] | null {
  const m = /^\s*v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(v);
  return m ? [+m[1]!, +m[2]!, +(m[3] ?? 0)] : null;
}

function cmp(a: [number, number, number], b: [number, number, number]): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** The table entries that apply to these producers. */
export function matchDeviations(producers: readonly Producer[]): MatchedDeviation[] {
  const out: MatchedDeviation[] = [];
  for (const entry of DEVIATIONS) {
    for (const p of producers) {
      if (p.field !== 'processed-by' || p.name !== entry.producer) continue;
      const v = parseVersion(p.version);
      if (v && cmp(v, parseVersion(entry.from)!) >= 0 && cmp(v, parseVersion(entry.fixedIn)!) < 0) {
        out.push({ entry, producer: p });
        break;
      }
    }
  }
  return out;
}

/** Producers of a component definition: its own section and those of the core modules it defines directly. */
export function producersOf(def: ComponentDef, input: Uint8Array): Producer[] {
  const out = componentProducers(def.ast, input);
  for (const d of def.ast.definitions) if (d.kind === 'core-module') out.push(...coreModuleProducers(d.bytes));
  // one entry per (field, name, version)
  const seen = new Set<string>();
  return out.filter((p) => { const k = `${p.field}\0${p.name}\0${p.version}`; return seen.has(k) ? false : (seen.add(k), true); });
}

/** Producers of a component and of every component nested in it. */
export function allProducers(def: ComponentDef, input: Uint8Array): Producer[] {
  const out = producersOf(def, input);
  for (const child of def.children.values()) {
    for (const p of allProducers(child, input)) {
      if (!out.some((o) => o.field === p.field && o.name === p.name && o.version === p.version)) out.push(p);
    }
  }
  return out;
}

// ------------------------------------------------------------------ per compiled component

class DefDeviations {
  readonly matched: Map<DeviationId, MatchedDeviation>;
  readonly apply: boolean;
  readonly onDeviation: ((d: AppliedDeviation) => void) | null;
  readonly reported = new Set<DeviationId>();
  constructor(matched: MatchedDeviation[], apply: boolean, onDeviation: ((d: AppliedDeviation) => void) | null) {
    this.matched = new Map(matched.map((m) => [m.entry.id, m]));
    this.apply = apply;
    this.onDeviation = onDeviation;
  }

  note(m: MatchedDeviation): void {
    const e = m.entry;
    if (this.reported.has(e.id)) return;
    this.reported.add(e.id);
    this.onDeviation?.({ id: e.id, producer: e.producer, version: m.producer.version, cause: e.cause, fix: e.fix, fixedIn: e.fixedIn });
  }

  /** The spec trap (its reason's kind kept), naming the likely cause and the fix. */
  trap(kind: 'sync-in-waitable-set' | 'copy-count-too-large', m: MatchedDeviation): never {
    const e = m.entry;
    throw new Trap(`${TrapReason[kind]} (likely cause: this component was built with ${e.producer} ${m.producer.version}, which ${e.cause}; `
      + `rebuild it with ${e.producer} ${e.fixedIn} or newer, or run it without strict mode to let Weir apply the fix)`, { kind });
  }
}

const byDef = new WeakMap<ComponentDef, DefDeviations>();
const byInstance = new WeakMap<ComponentInstanceState, DefDeviations>();

/**
 * Record which table entries apply to `def` and its nested components
 * (called by Component.compile; `input` is the binary `def` was decoded from).
 */
export function attachDeviations(def: ComponentDef, input: Uint8Array, options: DeviationOptions): void {
  const mode = options.deviations ?? 'apply';
  if (mode !== 'apply' && mode !== 'strict') throw new TypeError(`deviations must be 'apply' or 'strict', got ${JSON.stringify(mode)}`);
  const visit = (d: ComponentDef) => {
    const matched = matchDeviations(producersOf(d, input));
    if (matched.length > 0) byDef.set(d, new DefDeviations(matched, mode === 'apply', options.onDeviation ?? null));
    for (const child of d.children.values()) visit(child);
  };
  visit(def);
}

/** The table entries that apply to a compiled component (and its nested components). */
export function deviationsOf(def: ComponentDef): MatchedDeviation[] {
  const out: MatchedDeviation[] = [];
  const visit = (d: ComponentDef) => {
    const dd = byDef.get(d);
    if (dd) for (const m of dd.matched.values()) if (!out.some((o) => o.entry === m.entry && o.producer.version === m.producer.version)) out.push(m);
    for (const child of d.children.values()) visit(child);
  };
  visit(def);
  return out;
}

/** Link a new instance of `def` to its component's deviations (runtime/canon.ts prepareInstance). */
export function bindDeviations(def: ComponentDef, inst: ComponentInstanceState): void {
  const dd = byDef.get(def);
  if (dd) byInstance.set(inst, dd);
}

export const MAX_COUNT = 2 ** 28 - 1;

export interface DeviationHooks {
  /**
   * A synchronous stream.cancel-read on a `stream` without payload whose end is
   * in a waitable set: leaves the set (fix applied) or throws the explaining trap.
   * null: the spec trap applies unchanged.
   */
  syncCancelInSet: ((end: { join(set: null): void }) => void) | null;
  /** A stream.read/write count above 2^28-1: returns the clamped count or throws the explaining trap. */
  countTooLarge: ((n: number) => number) | null;
}

const NO_HOOKS: DeviationHooks = { syncCancelInSet: null, countTooLarge: null };

/** The hooks for the built-ins of `inst` (all null unless its component carries a listed producer). */
export function deviationHooks(inst: ComponentInstanceState): DeviationHooks {
  const dd = byInstance.get(inst);
  if (!dd) return NO_HOOKS;
  const cancel = dd.matched.get('sync-cancel-in-waitable-set');
  const count = dd.matched.get('stream-count-too-large');
  return {
    syncCancelInSet: !cancel ? null : dd.apply
      ? (end) => { dd.note(cancel); end.join(null); }
      : () => dd.trap('sync-in-waitable-set', cancel),
    countTooLarge: !count ? null : dd.apply
      ? () => { dd.note(count); return MAX_COUNT; }
      : () => dd.trap('copy-count-too-large', count),
  };
}

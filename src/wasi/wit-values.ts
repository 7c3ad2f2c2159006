// WIT values both WASI faces (p2/, p3/) build the same way: result<T, E> as
// {tag: 'ok' | 'err', val}, the datetime record (0.2 `datetime`, 0.3
// `instant`: the same seconds + nanoseconds), the filesystem `new-timestamp`
// variant, and the one rule for which failures of a core call become an
// error-code result.

import { isHostError } from './core/errors.ts';
import { splitNs } from './core/clocks.ts';
import type { NewTimestamp } from './core/fs.ts';

export type Result<T, E> = { tag: 'ok'; val: T } | { tag: 'err'; val: E };
export const ok = <T>(val: T): { tag: 'ok'; val: T } => ({ tag: 'ok', val });
export const err = <E>(val: E): { tag: 'err'; val: E } => ({ tag: 'err', val });

/**
 * Run a core call: a host failure (core/errors.ts isHostError) becomes
 * err(toCode(e)); anything else (traps, ExitSignal, bugs) propagates.
 */
export function hostResult<T, E>(f: () => T, toCode: (e: unknown) => E): Result<T, E> {
  try {
    return ok(f());
  } catch (e) {
    if (isHostError(e)) return err(toCode(e));
    throw e;
  }
}

/** 0.2 wall-clock `datetime`, 0.3 `instant`: seconds and nanoseconds since the epoch. */
export type Datetime = { seconds: bigint; nanoseconds: number };

/** Nanoseconds since the epoch → datetime (nanoseconds always in [0, 1e9)). */
export const datetime: (ns: bigint) => Datetime = splitNs;

/** datetime → nanoseconds since the epoch. */
export const datetimeNs = (d: Datetime): bigint => d.seconds * 1_000_000_000n + BigInt(d.nanoseconds);

/** wasi:filesystem `new-timestamp` (same cases in 0.2 and 0.3). */
export type WitNewTimestamp = { tag: 'no-change' } | { tag: 'now' } | { tag: 'timestamp'; val: Datetime };

export function newTimestamp(t: WitNewTimestamp): NewTimestamp {
  switch (t.tag) {
    case 'no-change': return { kind: 'no-change' };
    case 'now': return { kind: 'now' };
    case 'timestamp': return { kind: 'at', ns: datetimeNs(t.val) };
  }
}

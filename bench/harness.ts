// Shared timing helpers for Weir's benchmarks.
//
// Every suite (bench/foundation.ts, bench/async.ts, bench/wasi.ts, ...) exports
// `benches: Bench[]`; bench/run.ts runs them all and prints one table. Figures
// are reported, never asserted.

import v8 from 'node:v8';
import vm from 'node:vm';

/** One row of the results table. */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  /** What the baseline measured, e.g. "new WebAssembly.Module (largest core module)". */
  baselineLabel?: string;
  /** The baseline's figure, in the same unit as `value`. */
  baseline?: number;
  /** For throughput units (GB/s, ops/s): higher is better. Default: lower is better. */
  higherIsBetter?: boolean;
  /** Human-readable target, e.g. "≤ 0.2 ms". */
  target?: string;
  /** Whether the target is met, when one is given. */
  targetMet?: boolean;
  note?: string;
}

export interface Bench {
  name: string;
  run: () => Promise<BenchResult[]> | BenchResult[];
}

/** Median of a list of numbers (the list is sorted in place). */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  xs.sort((a, b) => a - b);
  const m = xs.length >> 1;
  return xs.length % 2 ? xs[m] : (xs[m - 1] + xs[m]) / 2;
}

const now = (): bigint => process.hrtime.bigint();

/**
 * Times `fn` `samples` times after `warmup` untimed runs, each sample running it
 * `batch` times in a row. Returns the median nanoseconds per single run.
 * `before` runs untimed before each sample (e.g. a GC).
 */
export function timeNs(
  fn: () => unknown,
  opts: { warmup?: number; samples: number; batch?: number; before?: () => void },
): number {
  const batch = opts.batch ?? 1;
  for (let i = 0; i < (opts.warmup ?? 0); i++) fn();
  const xs: number[] = [];
  for (let s = 0; s < opts.samples; s++) {
    opts.before?.();
    const t0 = now();
    for (let i = 0; i < batch; i++) fn();
    xs.push(Number(now() - t0) / batch);
  }
  return median(xs);
}

/**
 * Times two functions with interleaved samples (a, b, a, b, ...) so that load
 * from elsewhere on the machine hits both alike. Returns median ns per run of each.
 */
export function timePair(
  a: () => unknown,
  b: () => unknown,
  opts: { warmup?: number; samples: number; batch?: number; before?: () => void },
): [number, number] {
  const batch = opts.batch ?? 1;
  for (let i = 0; i < (opts.warmup ?? 0); i++) { a(); b(); }
  const xa: number[] = [], xb: number[] = [];
  const sample = (fn: () => unknown, xs: number[]): void => {
    opts.before?.();
    const t0 = now();
    for (let i = 0; i < batch; i++) fn();
    xs.push(Number(now() - t0) / batch);
  };
  for (let s = 0; s < opts.samples; s++) {
    if (s & 1) { sample(b, xb); sample(a, xa); } else { sample(a, xa); sample(b, xb); }
  }
  return [median(xa), median(xb)];
}

let gcFn: (() => void) | null | undefined;
/** A full GC, when it can be had (`--expose-gc` is switched on at run time); a no-op otherwise. */
export function gc(): void {
  if (gcFn === undefined) {
    try {
      const g = (globalThis as { gc?: () => void }).gc;
      if (typeof g === 'function') gcFn = g;
      else {
        v8.setFlagsFromString('--expose-gc');
        gcFn = vm.runInNewContext('gc') as () => void;
      }
    } catch {
      gcFn = null;
    }
  }
  gcFn?.();
}

/** Completes a result: fills in whether the target is met from a numeric bound. */
export function withTarget(r: BenchResult, bound: number, cmp: '<=' | '>='): BenchResult {
  return { ...r, targetMet: cmp === '<=' ? r.value <= bound : r.value >= bound };
}

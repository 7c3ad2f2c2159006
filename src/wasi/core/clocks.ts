// Clocks: one monotonic clock and one wall clock shared by the p2 and p3 bindings.

import { sleepSyncNs } from './block.ts';

export interface ClockConfig {
  /** Override the monotonic clock (nanoseconds; must never go backwards). */
  monotonicNow?: () => bigint;
  /** Override the wall clock (nanoseconds since the Unix epoch). */
  wallNow?: () => bigint;
}

export class Clocks {
  readonly monotonicNow: () => bigint;
  readonly wallNowNs: () => bigint;
  constructor(config: ClockConfig = {}) {
    this.monotonicNow = config.monotonicNow ?? (() => process.hrtime.bigint());
    this.wallNowNs = config.wallNow ?? (() => BigInt(Date.now()) * 1_000_000n);
  }
  /** Resolution of the monotonic clock in nanoseconds. */
  monotonicResolution(): bigint { return 1n; }
  /** Wall clock as seconds + nanoseconds since the epoch. */
  wallNow(): { seconds: bigint; nanoseconds: number } { return splitNs(this.wallNowNs()); }
  /** Resolution of the wall clock (Date.now: one millisecond). */
  wallResolution(): { seconds: bigint; nanoseconds: number } { return { seconds: 0n, nanoseconds: 1_000_000 }; }
  /** Block until the monotonic clock reaches `when` (ns). */
  waitUntilSync(when: bigint): void {
    const now = this.monotonicNow();
    if (when > now) sleepSyncNs(when - now);
  }
  /** Resolution of the wall clock in nanoseconds. */
  wallResolutionNs(): bigint { return 1_000_000n; }
  /**
   * Resolve once the monotonic clock reaches `when` (ns), never earlier: for
   * async bindings. Node timers have millisecond granularity and fire a
   * little late, so the coarse part sleeps on a timer that stops short of the
   * deadline by TAIL_NS, and the tail is covered by event-loop turns
   * (setImmediate), which let I/O and other tasks run meanwhile. An aborted
   * `signal` rejects with its reason and clears the timer.
   */
  waitUntil(when: bigint, signal?: AbortSignal): Promise<void> {
    if (when - this.monotonicNow() <= 0n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | null = null;
      let immediate: ReturnType<typeof setImmediate> | null = null;
      const onAbort = () => {
        if (timer) clearTimeout(timer);
        if (immediate) clearImmediate(immediate);
        reject(signal!.reason);
      };
      const step = () => {
        timer = null;
        immediate = null;
        const left = when - this.monotonicNow();
        if (left <= 0n) {
          signal?.removeEventListener('abort', onAbort);
          resolve();
          return;
        }
        // setTimeout turns delays above 2^31-1 ms into 1 ms (with a warning): wait in steps of at most that
        if (left > TAIL_NS) timer = setTimeout(step, Math.min(MAX_TIMER_MS, Math.max(1, Math.floor(Number(left - TAIL_NS) / 1e6))));
        else immediate = setImmediate(step);
      };
      if (signal) {
        if (signal.aborted) { reject(signal.reason); return; }
        signal.addEventListener('abort', onAbort, { once: true });
      }
      step();
    });
  }
}

/**
 * How much before a deadline the millisecond timer stops (setTimeout(n)
 * fires 0.1-0.3ms after n ms when the machine is not loaded); the rest is
 * waited by event-loop turns.
 */
const TAIL_NS = 1_300_000n;

/** Node's largest timer delay. */
const MAX_TIMER_MS = 0x7fff_ffff;

export function splitNs(ns: bigint): { seconds: bigint; nanoseconds: number } {
  let s = ns / 1_000_000_000n;
  let n = ns % 1_000_000_000n;
  if (n < 0n) { n += 1_000_000_000n; s -= 1n; }
  return { seconds: s, nanoseconds: Number(n) };
}

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
  /** Resolve after the monotonic clock reaches `when` (ns): for async bindings. */
  waitUntil(when: bigint): Promise<void> {
    const left = when - this.monotonicNow();
    if (left <= 0n) return Promise.resolve();
    return new Promise((resolve) => {
      const ms = Number(left / 1_000_000n);
      if (ms >= 1) {
        setTimeout(() => this.waitUntil(when).then(resolve), Math.max(1, ms - 1));
      } else {
        setImmediate(() => this.waitUntil(when).then(resolve));
      }
    });
  }
}

export function splitNs(ns: bigint): { seconds: bigint; nanoseconds: number } {
  let s = ns / 1_000_000_000n;
  let n = ns % 1_000_000_000n;
  if (n < 0n) { n += 1_000_000_000n; s -= 1n; }
  return { seconds: s, nanoseconds: Number(n) };
}

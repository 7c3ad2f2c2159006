// wasi:clocks@0.3 (monotonic-clock with async waits, system-clock) and
// wasi:random@0.3 over the shared cores. wasi:clocks/timezone is unstable
// (feature clocks-timezone) and not offered.

import type { Clocks } from '../core/clocks.ts';
import { MAX_RANDOM_BYTES, type Random } from '../core/random.ts';

type Cancellable = { signal?: AbortSignal } | undefined;

export function clocksImports(clocks: Clocks, version: string): Record<string, Record<string, unknown>> {
  return {
    [`wasi:clocks/types@${version}`]: {},
    [`wasi:clocks/monotonic-clock@${version}`]: {
      now: () => clocks.monotonicNow(),
      'get-resolution': () => clocks.monotonicResolution(),
      // A deadline already reached completes the call at once (no subtask left pending).
      'wait-until': function (this: Cancellable, when: bigint) {
        return when <= clocks.monotonicNow() ? undefined : clocks.waitUntil(when, this?.signal);
      },
      'wait-for': function (this: Cancellable, howLong: bigint) {
        return howLong === 0n ? undefined : clocks.waitUntil(clocks.monotonicNow() + howLong, this?.signal);
      },
    },
    [`wasi:clocks/system-clock@${version}`]: {
      now: () => clocks.wallNow(),
      'get-resolution': () => clocks.wallResolutionNs(),
    },
  };
}

/** 0.3 takes a max-len: a larger request gets fewer bytes rather than an error. */
const cap = (len: bigint): bigint => (len > BigInt(MAX_RANDOM_BYTES) ? BigInt(MAX_RANDOM_BYTES) : len);

export function randomImports(random: Random, version: string): Record<string, Record<string, unknown>> {
  return {
    [`wasi:random/random@${version}`]: {
      'get-random-bytes': (len: bigint) => random.bytes(cap(len)),
      'get-random-u64': () => random.u64(),
    },
    [`wasi:random/insecure@${version}`]: {
      'get-insecure-random-bytes': (len: bigint) => random.insecureBytes(cap(len)),
      'get-insecure-random-u64': () => random.insecureU64(),
    },
    [`wasi:random/insecure-seed@${version}`]: {
      'get-insecure-seed': () => random.insecureSeed(),
    },
  };
}

// wasi:clocks@0.2 (monotonic-clock, wall-clock) and wasi:random@0.2 over the cores.

import type { Clocks } from '../core/clocks.ts';
import type { Random } from '../core/random.ts';
import { TimerPollable, type IoResources } from './io.ts';

export function clocksImports(clocks: Clocks, io: IoResources, version: string): Record<string, Record<string, unknown>> {
  return {
    [`wasi:clocks/monotonic-clock@${version}`]: {
      pollable: io.pollable,
      now: () => clocks.monotonicNow(),
      resolution: () => clocks.monotonicResolution(),
      'subscribe-instant': (when: bigint) => new TimerPollable(clocks, when),
      'subscribe-duration': (d: bigint) => new TimerPollable(clocks, clocks.monotonicNow() + d),
    },
    [`wasi:clocks/wall-clock@${version}`]: {
      now: () => clocks.wallNow(),
      resolution: () => clocks.wallResolution(),
    },
  };
}

export function randomImports(random: Random, version: string): Record<string, Record<string, unknown>> {
  return {
    [`wasi:random/random@${version}`]: {
      'get-random-bytes': (len: bigint) => random.bytes(len),
      'get-random-u64': () => random.u64(),
    },
    [`wasi:random/insecure@${version}`]: {
      'get-insecure-random-bytes': (len: bigint) => random.insecureBytes(len),
      'get-insecure-random-u64': () => random.insecureU64(),
    },
    [`wasi:random/insecure-seed@${version}`]: {
      'insecure-seed': () => random.insecureSeed(),
    },
  };
}

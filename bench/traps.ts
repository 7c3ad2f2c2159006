// Cost of a passing trap check: the named-reason trapIf (src/errors.ts), whose
// message is built only when it throws, against the form it replaced, where
// each call site built its message eagerly (`handle index ${i} is not a resource`).

import { trapIf, Trap } from '../src/errors.ts';
import { timePair, type Bench, type BenchResult } from './harness.ts';

/** The replaced form: a message built at every call, thrown only when cond holds. */
function trapIfMessage(cond: boolean, reason: string): void {
  if (cond) throw new Trap(reason);
}

const N = 1_000_000;
const handles = Array.from({ length: 1024 }, (_, i) => i);

function checksNamed(): number {
  let sum = 0;
  for (let i = 0; i < N; i++) {
    const h = handles[i & 1023]!;
    trapIf(h < 0, 'handle-not-resource', i);
    trapIf(h > 4096, 'misaligned-pointer', i, 4);
    sum += h;
  }
  return sum;
}

function checksMessage(): number {
  let sum = 0;
  for (let i = 0; i < N; i++) {
    const h = handles[i & 1023]!;
    trapIfMessage(h < 0, `handle index ${i} is not a resource`);
    trapIfMessage(h > 4096, `misaligned pointer: ${i} is not aligned to ${4}`);
    sum += h;
  }
  return sum;
}

function passingChecks(): BenchResult[] {
  const [named, message] = timePair(checksNamed, checksMessage, { warmup: 5, samples: 15 });
  return [{
    name: 'passing trap check with values (trapIf(cond, name, i)), per check',
    value: named / N / 2,
    unit: 'ns',
    baselineLabel: 'the replaced form: message built at the call site',
    baseline: message / N / 2,
  }];
}

export const benches: Bench[] = [{ name: 'traps/passing-check', run: passingChecks }];

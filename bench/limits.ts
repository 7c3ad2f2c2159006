// Limit benchmarks (src/runtime/limits.ts, grow-trap.ts, src/cli/limits.ts),
// each next to a baseline measured in the same run. Printed, never asserted.
//
// - the compile-time rewrites (-W max-memory-size clamp, -W trap-on-grow-failure)
//   on the core modules of the componentize-qjs command, beside V8 compiling them;
// - a host call with a 1 KiB string argument under -S hostcall-fuel vs no limit;
// - `weir run` of a tiny command with -W timeout (a worker thread) vs without.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Component } from '../src/index.ts';
import { decodeComponent } from '../src/binary/decode.ts';
import type { ComponentAst } from '../src/binary/ast.ts';
import { applyCompileLimits } from '../src/binary/limits.ts';
import { trapOnGrowFailure } from '../src/binary/grow-trap.ts';
import { assembleText } from '../src/wast/assemble.ts';
import { repoRoot } from '../test/helpers/fixtures.ts';
import { buildCmd } from '../test/helpers/wasi-fixtures.ts';
import { logStringWat, watFile, writeWat } from '../test/helpers/limits-fixtures.ts';
import { type Bench, median, timeNs, timePair } from './harness.ts';

function coreModules(ast: ComponentAst, out: Uint8Array[] = []): Uint8Array[] {
  for (const d of ast.definitions) {
    if (d.kind === 'core-module') out.push(d.bytes);
    else if (d.kind === 'component') coreModules(d.component, out);
  }
  return out;
}

export const benches: Bench[] = [
  {
    name: 'limits: compile-time rewrites of the qjs command\'s core modules',
    async run() {
      const file = await buildCmd();
      const mods = coreModules(decodeComponent(new Uint8Array(readFileSync(file))));
      const total = mods.reduce((a, m) => a + m.length, 0);
      const bytes = new Uint8Array(readFileSync(file));
      const limits = { maxMemorySize: 2 ** 30, maxTableElements: 10_000 };
      const scan = timeNs(() => { for (const m of mods) applyCompileLimits(m, undefined); }, { warmup: 2, samples: 15 });
      const clamp = timeNs(() => { for (const m of mods) applyCompileLimits(m, limits); }, { warmup: 2, samples: 15 });
      const grow = timeNs(() => { for (const m of mods) trapOnGrowFailure(m); }, { warmup: 2, samples: 7 });
      // what a user sees: Component.compile (decode, validate, V8 compile; V8 caches code for bytes it compiled before)
      const [withLimits, without] = timePair(() => Component.compile(bytes, { limits }), () => Component.compile(bytes), { warmup: 2, samples: 9 });
      const [withGrow] = timePair(() => Component.compile(bytes, { limits: { trapOnGrowFailure: true } }), () => Component.compile(bytes), { warmup: 1, samples: 5 });
      const note = `${mods.length} core modules, ${(total / 2 ** 20).toFixed(2)} MiB`;
      return [
        { name: 'limits: module scan without limits (counts memories/tables)', value: scan / 1e6, unit: 'ms', baselineLabel: 'Component.compile without limits', baseline: without / 1e6, note },
        { name: 'limits: -W max-memory-size/max-table-elements clamp', value: clamp / 1e6, unit: 'ms', baselineLabel: 'Component.compile without limits', baseline: without / 1e6, note },
        { name: 'limits: -W trap-on-grow-failure code rewrite', value: grow / 1e6, unit: 'ms', baselineLabel: 'Component.compile without limits', baseline: without / 1e6, note },
        { name: 'limits: Component.compile with max-memory-size + max-table-elements', value: withLimits / 1e6, unit: 'ms', baselineLabel: 'Component.compile without limits', baseline: without / 1e6, note },
        { name: 'limits: Component.compile with trap-on-grow-failure', value: withGrow / 1e6, unit: 'ms', baselineLabel: 'Component.compile without limits', baseline: without / 1e6, note },
      ];
    },
  },
  {
    name: 'limits: host call with a 1 KiB string under -S hostcall-fuel',
    async run() {
      const bytes = await assembleText(logStringWat);
      const c = Component.compile(bytes);
      let n = 0;
      const log = (s: string) => { n += s.length; };
      const limited = c.instantiate({ log }, { limits: { hostcallFuel: 128 * 2 ** 20 } }).exports.say as (n: number) => void;
      const free = c.instantiate({ log }).exports.say as (n: number) => void;
      const [a, b] = timePair(() => limited(1024), () => free(1024), { warmup: 20_000, samples: 21, batch: 20_000 });
      if (n === 0) throw new Error('no calls');
      return [{ name: 'limits: guest → host call, 1 KiB string, hostcall-fuel 128 MiB', value: 1e9 / a, unit: 'calls/s', higherIsBetter: true, baselineLabel: 'same call, no limit', baseline: 1e9 / b }];
    },
  },
  {
    name: 'limits: weir run start-up with -W timeout (worker thread)',
    async run() {
      const file = await watFile('bench-write3', writeWat(3));
      const mainJs = join(repoRoot, 'dist', 'cli', 'main.js');
      const once = (args: string[]) => {
        const t0 = performance.now();
        const r = spawnSync(process.execPath, [mainJs, 'run', ...args, file], { encoding: 'utf8' });
        if (r.status !== 0 || r.stdout !== 'hi\n') throw new Error(`weir run failed: ${r.stderr}`);
        return performance.now() - t0;
      };
      const plain: number[] = [], timed: number[] = [];
      once([]); once(['-W', 'timeout=60s']);
      for (let i = 0; i < 7; i++) { plain.push(once([])); timed.push(once(['-W', 'timeout=60s'])); }
      return [{ name: 'limits: weir run (WAT command) with -W timeout=60s', value: median(timed), unit: 'ms', baselineLabel: 'weir run without -W timeout', baseline: median(plain) }];
    },
  },
];

// Limits (-W max-memory-size, max-table-elements, max-instances/memories/tables,
// timeout; -S max-resources, hostcall-fuel): one test per flag through the built
// `weir run` (dist/cli/main.js), and the same limits through the embedding API.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './helpers/fixtures.ts';
import {
  bigMinimumWat, bigTableWat, buildP3Spin, countsWat, growWat, handlesWat, logStringWat, sleepWat, spinWat, watFile, writeWat,
} from './helpers/limits-fixtures.ts';
import { assembleText } from '../src/wast/assemble.ts';
import { buildCmd } from './helpers/wasi-fixtures.ts';
import { Component, Trap, LinkError, WASMTIME_LIMIT_DEFAULTS } from '../src/index.ts';
import { parseArgs } from '../src/cli/args.ts';

const mainJs = join(repoRoot, 'dist', 'cli', 'main.js');

function weir(args: string[]) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [mainJs, ...args], { encoding: 'utf8', timeout: 30_000, input: '' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
}

before(() => {
  assert.ok(existsSync(mainJs), `${mainJs} is missing: run npx tsc -p .`);
});

const PAGE = 65536;

test('-W max-memory-size: memory.grow past the limit returns -1 (memory32, memory64, shared)', async () => {
  for (const kind of ['memory', 'memory64', 'shared'] as const) {
    const f = await watFile(`grow-${kind}`, growWat(kind, 100));
    assert.equal(weir(['run', f]).status, 0, `${kind}: unlimited by default`);
    assert.equal(weir(['run', '-W', `max-memory-size=${100 * PAGE}`, f]).status, 0, `${kind}: 100 pages fit`);
    const r = weir(['run', '-W', `max-memory-size=${100 * PAGE - 1}`, f]);
    assert.equal(r.status, 1, `${kind}: grow to page 100 must fail: ${r.stderr}`);
    assert.equal(r.stderr, '');
  }
  // the -Wname=value form and a size suffix: 64K is one page, the initial size
  const one = await watFile('grow-memory-1', growWat('memory', 2));
  assert.equal(weir(['run', '-Wmax-memory-size=128K', one]).status, 0);
  assert.equal(weir(['run', '-Wmax-memory-size=64K', one]).status, 1);
});

test('-W max-memory-size: a memory whose minimum exceeds the limit fails to instantiate, naming it', async () => {
  const f = await watFile('min20', bigMinimumWat(20));
  assert.equal(weir(['run', '-W', 'max-memory-size=2M', f]).status, 0);
  const r = weir(['run', '-W', 'max-memory-size=1M', f]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /memory minimum size of 20 pages exceeds memory limits \(max-memory-size 1048576 bytes/);
});

test('-W max-table-elements: table.grow past the limit returns -1; a larger minimum fails to instantiate', async () => {
  const f = await watFile('grow-table', growWat('table', 100));
  assert.equal(weir(['run', f]).status, 0);
  assert.equal(weir(['run', '-W', 'max-table-elements=100', f]).status, 0);
  assert.equal(weir(['run', '-W', 'max-table-elements=99', f]).status, 1);
  const m = await watFile('tmin', bigTableWat(20));
  const r = weir(['run', '-W', 'max-table-elements=19', m]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /table minimum size of 20 elements exceeds table limits \(max-table-elements 19\)/);
});

test('-W trap-on-grow-failure: a failed memory.grow / table.grow traps (memory32, memory64, shared, table)', async () => {
  for (const kind of ['memory', 'memory64', 'shared', 'table'] as const) {
    const f = await watFile(`grow-${kind}`, growWat(kind, 100));
    assert.equal(weir(['run', '-W', 'trap-on-grow-failure', f]).status, 0, `${kind}: growth that succeeds is unchanged`);
    const limit = kind === 'table' ? 'max-table-elements=99' : `max-memory-size=${99 * PAGE}`;
    assert.equal(weir(['run', '-W', limit, f]).status, 1, `${kind}: -1 without the flag`);
    const r = weir(['run', '-W', `trap-on-grow-failure,${limit}`, f]);
    assert.equal(r.status, 134, `${kind}: ${r.stderr}`);
    assert.match(r.stderr, /^weir: trap: unreachable \(or a memory.grow \/ table.grow that failed: -W trap-on-grow-failure\)/);
    assert.equal(weir(['run', '-W', `trap-on-grow-failure=n,${limit}`, f]).status, 1, `${kind}: =n turns it off`);
  }
});

test('-W trap-on-grow-failure: a real toolchain\'s code (componentize-qjs) is rewritten and still runs', async () => {
  const cmd = await buildCmd();
  const r = weir(['run', '-W', 'trap-on-grow-failure', cmd, 'hello']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'hello, world\n');
});

test('-W max-instances / max-memories / max-tables: counts per instantiation, trap when exceeded', async () => {
  const f = await watFile('counts', countsWat(3)); // 4 core instances, 3 memories, 3 tables
  assert.equal(weir(['run', '-W', 'max-instances=4,max-memories=3,max-tables=3', f]).status, 0);
  for (const [flag, what] of [['max-instances=3', 'instance count too high at 4'], ['max-memories=2', 'memory count too high at 3'], ['max-tables=2', 'table count too high at 3']]) {
    const r = weir(['run', '-W', flag, f]);
    assert.equal(r.status, 134, flag);
    assert.match(r.stderr, new RegExp(`^weir: trap: resource limit exceeded: ${what} \\(${flag.replace('=', ' ')}\\)`));
  }
});

test('-S max-resources: handle N+1 of an instance traps', async () => {
  const f = await watFile('handles', handlesWat(50));
  assert.equal(weir(['run', f]).status, 0);
  assert.equal(weir(['run', '-S', 'max-resources=50', f]).status, 0);
  const r = weir(['run', '-S', 'max-resources=49', f]);
  assert.equal(r.status, 134);
  assert.match(r.stderr, /^weir: trap: handle table is full: resource limit exceeded \(max-resources 49\)/);
});

test('-S hostcall-fuel: a host call copying more than the limit traps before the copy; default 128 MiB', async () => {
  const f = await watFile('write2000', writeWat(2000));
  const ok = weir(['run', '-S', 'hostcall-fuel=2000', f]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout.length, 2000);
  assert.ok(ok.stdout.startsWith('hi\n'));
  const r = weir(['run', '-S', 'hostcall-fuel=1999', f]);
  assert.equal(r.status, 134);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^weir: trap: hostcall-fuel exhausted: a call of a host import may copy at most 1999 bytes/);
  // the default: a 200 MiB list argument is refused (wasmtime's 128 MiB)
  const big = await watFile('write200m', writeWat(200 * 2 ** 20));
  const d = weir(['run', big]);
  assert.equal(d.status, 134);
  assert.equal(d.stdout, '');
  assert.match(d.stderr, new RegExp(`hostcall-fuel exhausted: .* at most ${WASMTIME_LIMIT_DEFAULTS.hostcallFuel} bytes`));
});

test('-W timeout: stops a guest spinning in run, in a start function, or blocked in a host call (exit 134, trap: interrupt)', async () => {
  const cases = [
    ['spin-run', spinWat('run')],
    ['spin-start', spinWat('start')],
    ['sleep', sleepWat()],
  ] as const;
  for (const [name, wat] of cases) {
    const f = await watFile(name, wat);
    const r = weir(['run', '-W', 'timeout=300ms', f]);
    assert.equal(r.status, 134, `${name}: ${r.stderr}`);
    assert.equal(r.stderr, 'weir: trap: interrupt (-W timeout=300ms expired)\n');
    assert.ok(r.ms >= 300, `${name}: stopped after ${r.ms} ms`);
    assert.ok(r.ms < 5000, `${name}: took ${r.ms} ms`);
  }
  // a guest that finishes in time runs normally (output, exit status) under a timeout
  const w = await watFile('write3', writeWat(3));
  const ok = weir(['run', '-W', 'timeout=20s', w]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout, 'hi\n');
  assert.equal(ok.stderr, '');
  const g = await watFile('grow-limited', growWat('memory', 100));
  assert.equal(weir(['run', '-W', `timeout=20s,max-memory-size=${99 * PAGE}`, g]).status, 1, 'other limits apply in the worker too');
});

test('-W timeout: stops a WASI 0.3 guest spinning after a JSPI resumption, or awaiting a wait-for forever', async (t) => {
  const f = await buildP3Spin();
  if (!f) { t.skip('WASI 0.3 WIT not available (jco)'); return; }
  for (const what of ['spin', 'sleep']) {
    const r = weir(['run', '-W', 'timeout=300ms', f, what]);
    assert.equal(r.status, 134, `${what}: ${r.stderr}`);
    assert.equal(r.stderr, 'weir: trap: interrupt (-W timeout=300ms expired)\n');
    assert.ok(r.ms >= 300 && r.ms < 5000, `${what}: ${r.ms} ms`);
  }
  const done = weir(['run', '-W', 'timeout=20s', f, 'none']);
  assert.equal(done.status, 0, done.stderr);
});

test('-W max-memory-size holds for --link components too', async () => {
  const app = await watFile('link-app', `(component
    (import "test:lib/answer@0.1.0" (instance $a (export "get" (func (result u32)))))
    (alias export $a "get" (func $get))
    (core func $get' (canon lower (func $get)))
    (core module $M
      (import "" "get" (func $get (result i32)))
      (func (export "run") (result i32) (i32.ne (call $get) (i32.const 42))))
    (core instance $m (instantiate $M (with "" (instance (export "get" (func $get'))))))
    (func $run (result (result)) (canon lift (core func $m "run")))
    (instance $r (export "run" (func $run)))
    (export "wasi:cli/run@0.2.0" (instance $r)))`);
  const lib = await watFile('link-lib', `(component
    (core module $M (memory 20) (func (export "get") (result i32) (i32.const 42)))
    (core instance $m (instantiate $M))
    (func $get (result u32) (canon lift (core func $m "get")))
    (instance $i (export "get" (func $get)))
    (export "test:lib/answer@0.1.0" (instance $i)))`);
  assert.equal(weir(['run', '--link', lib, app]).status, 0);
  const r = weir(['run', '-W', 'max-memory-size=1M', '--link', lib, app]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /memory minimum size of 20 pages exceeds memory limits/);
});

test('-W parsing: -W a=1,b=2, -Wname=value, --wasm, repeated; -S limits; no limits key when none is given', () => {
  const r = parseArgs(['run', '-W', 'max-memory-size=1M,max-table-elements=7', '-Wmax-instances=3', '--wasm', 'timeout=1.5s',
    '-W', 'trap-on-grow-failure', '-S', 'max-resources=9,hostcall-fuel=2K', 'x.wasm', '-W', 'guest-arg']);
  assert.equal(r.cmd, 'run');
  if (r.cmd !== 'run') return;
  assert.deepEqual(r.limits, {
    maxMemorySize: 2 ** 20, maxTableElements: 7, maxInstances: 3, timeoutMs: 1500, trapOnGrowFailure: true, maxResources: 9, hostcallFuel: 2048,
  });
  assert.deepEqual(r.args, ['-W', 'guest-arg'], 'options after the component belong to the guest');
  const plain = parseArgs(['run', 'x.wasm']);
  assert.ok(!('limits' in plain));
});

test('-W flags Weir cannot honour are refused, never ignored; malformed values are usage errors', () => {
  for (const [arg, msg] of [
    ['fuel=1000', /-W fuel: not supported on V8/],
    ['epoch-interruption', /-W epoch-interruption: not supported on V8/],
    ['trap-on-grow-failure=maybe', /-W trap-on-grow-failure=maybe: expected y or n/],
    ['max-wasm-stack=100000', /-W max-wasm-stack: not supported on V8/],
    ['no-such-thing=1', /-W no-such-thing: not supported by weir \(supported: max-memory-size, /],
    ['max-memory-size', /-W max-memory-size needs a value/],
    ['max-memory-size=lots', /expected a number of bytes/],
    ['timeout=forever', /expected a duration/],
    ['timeout=0', /must be more than 0/],
  ] as const) {
    const r = weir(['run', '-W', arg, 'x.wasm']);
    assert.equal(r.status, 2, arg);
    assert.match(r.stderr, msg);
  }
  const s = weir(['run', '-S', 'max-resources=many', 'x.wasm']);
  assert.equal(s.status, 2);
  // serve takes them now (H8: test/serve-limits.test.ts checks each one through weir serve): they get past parsing
  const v = weir(['serve', '-W', 'timeout=1s,max-instances=5', '-S', 'max-resources=5', 'x.wasm']);
  assert.equal(v.status, 1);
  assert.match(v.stderr, /x\.wasm: no such file/);
  const help = weir(['run', '--help']);
  assert.match(help.stdout, /-W settings:\n {2}max-memory-size/);
});

test('API: limits of imported memories, memory64, multi-memory, and tables with an initializer are clamped consistently', async () => {
  const bytes = await assembleText(`(component
    (core module $a (memory (export "m") 1 1000) (memory (export "m64") i64 1) (table (export "t") 1 funcref (ref.null func)))
    (core instance $ai (instantiate $a))
    (core module $b
      (import "a" "m" (memory 1 2000))
      (import "a" "m64" (memory i64 1))
      (import "a" "t" (table 1 funcref))
      (memory $own 1)
      (func (export "grow") (param i32) (result i32) (memory.grow 0 (local.get 0)))
      (func (export "grow64") (param i32) (result i32) (i32.wrap_i64 (memory.grow 1 (i64.extend_i32_u (local.get 0)))))
      (func (export "growOwn") (param i32) (result i32) (memory.grow $own (local.get 0)))
      (func (export "growTable") (param i32) (result i32) (table.grow 0 (ref.null func) (local.get 0))))
    (core instance $bi (instantiate $b (with "a" (instance $ai))))
    (func (export "grow") (param "n" u32) (result s32) (canon lift (core func $bi "grow")))
    (func (export "grow64") (param "n" u32) (result s32) (canon lift (core func $bi "grow64")))
    (func (export "grow-own") (param "n" u32) (result s32) (canon lift (core func $bi "growOwn")))
    (func (export "grow-table") (param "n" u32) (result s32) (canon lift (core func $bi "growTable"))))`);
  const free = Component.compile(bytes).instantiate().exports;
  assert.equal(free.grow(9), 1);
  assert.equal(free['grow-table'](9), 1);
  const e = Component.compile(bytes, { limits: { maxMemorySize: 4 * PAGE, maxTableElements: 4 } }).instantiate().exports;
  for (const f of ['grow', 'grow64', 'grow-own']) {
    assert.equal(e[f](4), -1, `${f}: 5 pages > 4`);
    assert.equal(e[f](3), 1, `${f}: 4 pages fit`);
    assert.equal(e[f](1), -1, `${f}: full`);
  }
  assert.equal(e['grow-table'](3), 1);
  assert.equal(e['grow-table'](1), -1);
});

test('API: compile limits cap memories; instantiate limits count, cap handles and host-call copies', async () => {
  const grow = await assembleText(`(component
    (core module $m (memory 1)
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
    (core instance $i (instantiate $m))
    (func (export "grow") (param "n" u32) (result s32) (canon lift (core func $i "grow"))))`);
  const capped = Component.compile(grow, { limits: { maxMemorySize: 4 * PAGE } });
  const inst = capped.instantiate();
  assert.equal(inst.exports.grow(3), 1);
  assert.equal(inst.exports.grow(1), -1);
  assert.equal(Component.compile(grow).instantiate().exports.grow(10), 1, 'limits belong to the compiled component');
  assert.throws(() => Component.compile(grow, { limits: { maxMemorySize: 1000 } }).instantiate(), (e: unknown) => e instanceof LinkError && /memory minimum size of 1 pages/.test((e as Error).message));
  assert.throws(() => capped.instantiate({}, { limits: { maxInstances: 0 } }), (e: unknown) => e instanceof Trap && e.kind === 'resource-limit' && /instance count too high at 1/.test(e.reason));

  const echo = await assembleText(logStringWat);
  const seen: number[] = [];
  const e = Component.compile(echo).instantiate({ log: (s: string) => { seen.push(s.length); } }, { limits: { hostcallFuel: 100 } });
  e.exports.say(100);
  e.exports.say(100); // the budget is per call
  assert.deepEqual(seen, [100, 100]);
  assert.throws(() => e.exports.say(101), (x: unknown) => x instanceof Trap && x.kind === 'hostcall-fuel-exhausted');
  assert.deepEqual(seen, [100, 100], 'the host function was not called');

  const handles = Component.compile(await assembleText(handlesWat(10)));
  const run = (limits: object) => handles.instantiate({}, { limits }).exports['wasi:cli/run@0.2.0'].run();
  assert.deepEqual(run({ maxResources: 10 }), { tag: 'ok' });
  assert.throws(() => run({ maxResources: 9 }), (x: unknown) => x instanceof Trap && x.kind === 'handle-table-limit' && /max-resources 9/.test(x.reason));
});

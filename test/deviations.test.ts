// Known toolchain deviations (src/runtime/deviations.ts): WAT components that
// replay the exact call sequences of wit-bindgen-rust releases. With the
// toolchain's producers section they run to completion (the fix its authors
// meant); the same component without the section traps as the spec says; with
// the section and strict mode it traps naming the toolchain and the fix.
// Checked through the package API and the built `weir` command.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tempDir } from './helpers/temp-dir.ts';
import { join } from 'node:path';
import { parse } from '@bytecodealliance/jco';
import { Component, Trap, type AppliedDeviation } from '../src/index.ts';
import { readProducers, coreModuleProducers } from '../src/binary/producers.ts';
import { matchDeviations } from '../src/runtime/deviations.ts';
import { repoRoot } from './helpers/fixtures.ts';

const mainJs = join(repoRoot, 'dist', 'cli', 'main.js');
const SPEC_CANCEL = 'waitable cannot be used synchronously while added to a waitable set';
const SPEC_COUNT = 'stream read/write count too large';

/**
 * A wasi:cli/run@0.3.0 command whose core module (callback-lifted `run`)
 * executes `body` and returns `ok` when the local $rc equals `expect`.
 * `producers` is the module's producers annotation (or '').
 */
function command(producers: string, body: string, expect: number): string {
  return `(component
  (type $S (stream))
  (type $R (result))
  (core func $snew (canon stream.new $S))
  (core func $sread (canon stream.read $S async))
  (core func $swrite (canon stream.write $S async))
  (core func $cancelr (canon stream.cancel-read $S))
  (core func $cancelw (canon stream.cancel-write $S async))
  (core func $rdrop (canon stream.drop-readable $S))
  (core func $wdrop (canon stream.drop-writable $S))
  (core func $wsnew (canon waitable-set.new))
  (core func $wsdrop (canon waitable-set.drop))
  (core func $join (canon waitable.join))
  (core func $tr (canon task.return (result $R)))
  (core module $m
    ${producers}
    (import "" "snew" (func $snew (result i64)))
    (import "" "sread" (func $sread (param i32 i32 i32) (result i32)))
    (import "" "swrite" (func $swrite (param i32 i32 i32) (result i32)))
    (import "" "cancelr" (func $cancelr (param i32) (result i32)))
    (import "" "cancelw" (func $cancelw (param i32) (result i32)))
    (import "" "rdrop" (func $rdrop (param i32)))
    (import "" "wdrop" (func $wdrop (param i32)))
    (import "" "wsnew" (func $wsnew (result i32)))
    (import "" "wsdrop" (func $wsdrop (param i32)))
    (import "" "join" (func $join (param i32 i32)))
    (import "" "tr" (func $tr (param i32)))
    (func (export "run") (result i32) (local $rw i64) (local $r i32) (local $w i32) (local $ws i32) (local $rc i32)
      (local.set $rw (call $snew))
      (local.set $r (i32.wrap_i64 (local.get $rw)))
      (local.set $w (i32.wrap_i64 (i64.shr_u (local.get $rw) (i64.const 32))))
      (local.set $ws (call $wsnew))
      ${body}
      (call $rdrop (local.get $r))
      (call $wdrop (local.get $w))
      (call $wsdrop (local.get $ws))
      ;; result::ok when the sequence gave the expected code, else result::err
      (call $tr (i32.ne (local.get $rc) (i32.const ${expect})))
      (i32.const 0))
    (func (export "cb") (param i32 i32 i32) (result i32) unreachable))
  (core instance $i (instantiate $m (with "" (instance
    (export "snew" (func $snew)) (export "sread" (func $sread)) (export "swrite" (func $swrite))
    (export "cancelr" (func $cancelr)) (export "cancelw" (func $cancelw))
    (export "rdrop" (func $rdrop)) (export "wdrop" (func $wdrop))
    (export "wsnew" (func $wsnew)) (export "wsdrop" (func $wsdrop)) (export "join" (func $join)) (export "tr" (func $tr))))))
  (func $run async (result $R) (canon lift (core func $i "run") async (callback (core func $i "cb"))))
  (instance $inst (export "run" (func $run)))
  (export "wasi:cli/run@0.3.0" (instance $inst)))`;
}

// wit-bindgen-rust 0.49–0.58, inter_task_wakeup.rs: the wakeup read on a `stream`
// (no payload) is pending and joined to the task's waitable set; on the way out
// the runtime calls the synchronous stream.cancel-read first, then
// waitable.join(h, 0). The cancel reports CANCELLED (2) with nothing copied.
const CANCEL_BODY = `
      (if (i32.ne (call $sread (local.get $r) (i32.const 0) (i32.const 1)) (i32.const -1)) (then unreachable))
      (call $join (local.get $r) (local.get $ws))
      (local.set $rc (call $cancelr (local.get $r)))
      (call $join (local.get $r) (i32.const 0))`;

// wit-bindgen-rust < 0.56, stream_support.rs: a `stream` (no payload) is read into a
// Vec<()> whose spare capacity is usize::MAX, so stream.read gets count 2^32-1.
// A writer offered one value first: the read completes with 1 value (0x10).
const COUNT_BODY = `
      (if (i32.ne (call $swrite (local.get $w) (i32.const 0) (i32.const 1)) (i32.const -1)) (then unreachable))
      (local.set $rc (call $sread (local.get $r) (i32.const 0) (i32.const -1)))
      ;; collect the writer's event (1 value copied) so both ends can be dropped
      (if (i32.ne (i32.shr_u (call $cancelw (local.get $w)) (i32.const 4)) (i32.const 1)) (then unreachable))`;

const WBR = (v: string) => `(@producers (processed-by "wit-bindgen-rust" "${v}") (language "Rust" ""))`;

const built = new Map<string, Uint8Array>();
async function wasm(producers: string, body: string, expect: number): Promise<Uint8Array> {
  const key = `${producers}|${body}`;
  let b = built.get(key);
  if (!b) { b = await parse(command(producers, body, expect)); built.set(key, b); }
  return b;
}

async function runApi(bytes: Uint8Array, options: Parameters<typeof Component.compile>[1] = {}): Promise<unknown> {
  const inst = Component.compile(bytes, options).instantiate({});
  return inst.exports['wasi:cli/run@0.3.0'].run();
}

test('producers sections are read from core modules and from the component', async () => {
  const bytes = await parse(`(component (@producers (processed-by "wit-component" "0.240.0"))
    (core module (@producers (processed-by "wit-bindgen-rust" "0.58.0") (language "Rust" "1.90.0 (1159e78c4 2025-09-14)"))))`);
  const c = Component.compile(bytes);
  const has = (field: string, name: string, version: string) => c.producers.some((p) => p.field === field && p.name === name && p.version === version);
  assert.ok(has('processed-by', 'wit-bindgen-rust', '0.58.0'));
  assert.ok(has('language', 'Rust', '1.90.0 (1159e78c4 2025-09-14)'));
  assert.ok(has('processed-by', 'wit-component', '0.240.0'));
  assert.deepEqual(c.deviations.map((d) => d.entry.id), ['sync-cancel-in-waitable-set']);
  // malformed payloads are ignored, not errors
  assert.deepEqual(readProducers(new Uint8Array([5, 1]), 0, 2), []);
  assert.deepEqual(coreModuleProducers(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0, 50, 1])), []);
});

test('version ranges: each entry covers the affected releases only', () => {
  const ids = (name: string, v: string) => matchDeviations([{ field: 'processed-by', name, version: v }]).map((m) => m.entry.id).sort();
  assert.deepEqual(ids('wit-bindgen-rust', '0.51.0'), ['stream-count-too-large', 'sync-cancel-in-waitable-set']);
  assert.deepEqual(ids('wit-bindgen-rust', '0.55.0'), ['stream-count-too-large', 'sync-cancel-in-waitable-set']);
  assert.deepEqual(ids('wit-bindgen-rust', '0.56.0'), ['sync-cancel-in-waitable-set']);
  assert.deepEqual(ids('wit-bindgen-rust', '0.58.3'), ['sync-cancel-in-waitable-set']);
  assert.deepEqual(ids('wit-bindgen-rust', '0.59.0'), []);
  assert.deepEqual(ids('wit-bindgen-rust', '1.0.0'), []);
  assert.deepEqual(ids('wit-bindgen-rust', '0.48.1'), ['stream-count-too-large']);
  assert.deepEqual(ids('wit-bindgen-c', '0.58.0'), []);
  assert.deepEqual(matchDeviations([{ field: 'language', name: 'wit-bindgen-rust', version: '0.58.0' }]), []);
});

test('API: the wit-bindgen-rust 0.58 cancel sequence runs with the section, traps without it or when strict', async () => {
  const seen: AppliedDeviation[] = [];
  const ok = await runApi(await wasm(WBR('0.58.0'), CANCEL_BODY, 2), { onDeviation: (d) => seen.push(d) });
  assert.deepEqual(ok, { tag: 'ok' });
  assert.deepEqual(seen.map((d) => [d.id, d.producer, d.version]), [['sync-cancel-in-waitable-set', 'wit-bindgen-rust', '0.58.0']]);

  // reported once per compiled component, however often the fix takes effect
  const c = Component.compile(await wasm(WBR('0.58.0'), CANCEL_BODY, 2), { onDeviation: (d) => seen.push(d) });
  for (let i = 0; i < 3; i++) assert.deepEqual(await c.instantiate({}).exports['wasi:cli/run@0.3.0'].run(), { tag: 'ok' });
  assert.equal(seen.length, 2);

  await assert.rejects(runApi(await wasm('', CANCEL_BODY, 2)), (e: unknown) => e instanceof Trap && e.reason === SPEC_CANCEL);
  // a release with the fix is held to the spec
  await assert.rejects(runApi(await wasm(WBR('0.59.0'), CANCEL_BODY, 2)), (e: unknown) => e instanceof Trap && e.reason === SPEC_CANCEL);
  await assert.rejects(runApi(await wasm(WBR('0.58.0'), CANCEL_BODY, 2), { deviations: 'strict' }), (e: unknown) =>
    e instanceof Trap && e.kind === 'sync-in-waitable-set' && e.reason.startsWith(SPEC_CANCEL) && /wit-bindgen-rust 0\.58\.0/.test(e.reason) && /0\.59\.0 or newer/.test(e.reason));
});

test('API: the wit-bindgen-rust 0.51 unit-stream read count is clamped with the section, traps without it or when strict', async () => {
  const seen: AppliedDeviation[] = [];
  assert.deepEqual(await runApi(await wasm(WBR('0.51.0'), COUNT_BODY, 0x10), { onDeviation: (d) => seen.push(d) }), { tag: 'ok' });
  assert.deepEqual(seen.map((d) => d.id), ['stream-count-too-large']);
  await assert.rejects(runApi(await wasm('', COUNT_BODY, 0x10)), (e: unknown) => e instanceof Trap && e.reason === SPEC_COUNT);
  await assert.rejects(runApi(await wasm(WBR('0.56.0'), COUNT_BODY, 0x10)), (e: unknown) => e instanceof Trap && e.reason === SPEC_COUNT);
  await assert.rejects(runApi(await wasm(WBR('0.51.0'), COUNT_BODY, 0x10), { deviations: 'strict' }), (e: unknown) =>
    e instanceof Trap && e.kind === 'copy-count-too-large' && e.reason.startsWith(SPEC_COUNT) && /wit-bindgen-rust 0\.51\.0/.test(e.reason) && /0\.56\.0 or newer/.test(e.reason));
  assert.throws(() => Component.compile(new Uint8Array(0), { deviations: 'lenient' as 'apply' }), /./);
});

test('API: in a composition, only the nested component that carries the producer gets the fix', async () => {
  const nested = (name: string, producers: string) => command(producers, CANCEL_BODY, 2).replace(/^\(component/, `(component ${name}`);
  const wat = `(component
    ${nested('$rust', WBR('0.58.0'))}
    ${nested('$plain', '')}
    (instance $a (instantiate $rust))
    (instance $b (instantiate $plain))
    (alias export $a "wasi:cli/run@0.3.0" (instance $ra))
    (alias export $b "wasi:cli/run@0.3.0" (instance $rb))
    (export "rust" (instance $ra))
    (export "plain" (instance $rb)))`;
  const seen: AppliedDeviation[] = [];
  const c = Component.compile(await parse(wat), { onDeviation: (d) => seen.push(d) });
  assert.deepEqual(c.deviations.map((d) => d.entry.id), ['sync-cancel-in-waitable-set']);
  const inst = c.instantiate({});
  assert.deepEqual(await inst.exports.rust.run(), { tag: 'ok' });
  assert.equal(seen.length, 1);
  await assert.rejects(inst.exports.plain.run(), (e: unknown) => e instanceof Trap && e.reason === SPEC_CANCEL);
});

// ------------------------------------------------------------------ the built weir command

let dir = '';
before(async () => {
  if (!existsSync(mainJs)) spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', repoRoot], { stdio: 'ignore' });
  assert.ok(existsSync(mainJs), `${mainJs} is missing: run npx tsc -p .`);
  dir = tempDir('weir-deviations-');
  writeFileSync(join(dir, 'cancel-058.wasm'), await wasm(WBR('0.58.0'), CANCEL_BODY, 2));
  writeFileSync(join(dir, 'cancel-plain.wasm'), await wasm('', CANCEL_BODY, 2));
  writeFileSync(join(dir, 'count-051.wasm'), await wasm(WBR('0.51.0'), COUNT_BODY, 0x10));
  writeFileSync(join(dir, 'count-plain.wasm'), await wasm('', COUNT_BODY, 0x10));
});

function weir(args: string[]) {
  const r = spawnSync(process.execPath, [mainJs, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('weir run: fixes apply silently, --verbose says so once, --strict traps with the cause and the fix', () => {
  for (const f of ['cancel-058.wasm', 'count-051.wasm']) {
    const r = weir(['run', join(dir, f)]);
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
    assert.equal(r.stderr, '');
    const v = weir(['run', '--verbose', join(dir, f)]);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stderr.match(/applying a fix/g)?.length, 1, v.stderr);
  }
  const v = weir(['run', '--verbose', join(dir, 'cancel-058.wasm')]);
  assert.match(v.stderr, /built with wit-bindgen-rust 0\.58\.0, which cancels its inter-task wakeup/);

  const s = weir(['run', '--strict', join(dir, 'cancel-058.wasm')]);
  assert.equal(s.status, 134, s.stderr);
  assert.match(s.stderr, /^weir: trap: waitable cannot be used synchronously while added to a waitable set \(likely cause: this component was built with wit-bindgen-rust 0\.58\.0.*rebuild it with wit-bindgen-rust 0\.59\.0 or newer/);
  const sc = weir(['run', '--strict', join(dir, 'count-051.wasm')]);
  assert.equal(sc.status, 134, sc.stderr);
  assert.match(sc.stderr, /stream read\/write count too large \(likely cause: .*wit-bindgen-rust 0\.51\.0.*0\.56\.0 or newer/);

  // without the producers section: the spec's trap, no hint
  const p = weir(['run', join(dir, 'cancel-plain.wasm')]);
  assert.equal(p.status, 134, p.stderr);
  assert.match(p.stderr, /^weir: trap: waitable cannot be used synchronously while added to a waitable set\n/);
  const pc = weir(['run', join(dir, 'count-plain.wasm')]);
  assert.equal(pc.status, 134, pc.stderr);
  assert.match(pc.stderr, /^weir: trap: stream read\/write count too large\n/);
});

test('weir inspect prints the producers and the table entries that apply', () => {
  const r = weir(['inspect', join(dir, 'count-051.wasm')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^package root:component;/);
  assert.match(r.stdout, /\/\/ producers:\n(\/\/ {3}.*\n)*\/\/ {3}processed-by wit-bindgen-rust 0\.51\.0\n/);
  assert.match(r.stdout, /known deviation of wit-bindgen-rust 0\.51\.0 \(fixed in 0\.59\.0\): cancels its inter-task wakeup/);
  assert.match(r.stdout, /known deviation of wit-bindgen-rust 0\.51\.0 \(fixed in 0\.56\.0\): passes counts above 2\^28-1/);
  const plain = weir(['inspect', join(dir, 'count-plain.wasm')]);
  assert.equal(plain.status, 0, plain.stderr);
  assert.doesNotMatch(plain.stdout, /known deviation/);
});

// The table of named trap reasons (src/trap-reasons.ts) and the stable codes
// of Weir's errors, through the package entry.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Component, DecodeError, LinkError, Trap, TrapReason, ValidationError, isWeirError, trapMessage } from '../src/index.ts';
import { isHostError } from '../src/wasi/core/errors.ts';
import { defaultSpecRoot } from '../src/wast/suite.ts';
import { parse } from '@bytecodealliance/jco';

const A = '\u0001'; // stands for a value a message names
const NAMES = Object.keys(TrapReason) as (keyof typeof TrapReason)[];
/** Each reason's message, the values it names replaced by A. */
const shapes = NAMES.map((k) => {
  const m = TrapReason[k] as string | ((...a: unknown[]) => string);
  return typeof m === 'string' ? m : m(A, A, A, A);
});

test('every reason has a kebab-case name and its own message', () => {
  for (const k of NAMES) assert.match(k, /^[a-z0-9]+(-[a-z0-9]+)*$/);
  assert.equal(new Set(shapes).size, shapes.length, 'two reasons share a message: a trap could not be told apart by its text');
  assert.equal(trapMessage('unknown-handle', 7), 'unknown handle index 7');
  assert.equal(trapMessage('char-out-of-range', 0x110000), 'invalid char: code point 0x110000 is out of range');
});

test('every reason of the table is raised somewhere in src/', () => {
  const root = join(import.meta.dirname, '..', 'src');
  const files = (function walk(d: string): string[] {
    return readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : n.endsWith('.ts') && n !== 'trap-reasons.ts' ? [join(d, n)] : []));
  })(root);
  const src = files.map((f) => readFileSync(f, 'utf8')).join('\n');
  assert.deepEqual(NAMES.filter((k) => !src.includes(`'${k}'`)), [], 'a reason no code raises: remove it from the table');
});

test('errors carry a stable code; a trap its reason name as kind', async () => {
  assert.throws(() => Component.compile(new Uint8Array([0, 0x61, 0x73])), (e: unknown) => e instanceof DecodeError && e.code === 'WEIR_DECODE' && isWeirError(e));
  // two exports of one name break strong uniqueness: a validation error
  const dup = await parse(`(component (core module $m) (export "a" (core module $m)) (export "a" (core module $m)))`);
  assert.throws(() => Component.compile(dup), (e: unknown) => e instanceof ValidationError && e.code === 'WEIR_VALIDATION');
  const needsImport = Component.compile(await parse(`(component (import "f" (func)))`));
  assert.throws(() => needsImport.instantiate({}), (e: unknown) => e instanceof LinkError && e.code === 'WEIR_LINK');

  // resource.drop of a handle the table does not hold
  const c = Component.compile(await parse(`(component
    (type $r (resource (rep i32)))
    (core func $drop (canon resource.drop $r))
    (core module $m (import "" "drop" (func $drop (param i32))) (func (export "go") (call $drop (i32.const 5))))
    (core instance $i (instantiate $m (with "" (instance (export "drop" (func $drop))))))
    (func (export "go") (canon lift (core func $i "go"))))`));
  assert.throws(() => c.instantiate().exports.go(), (e: unknown) =>
    e instanceof Trap && e.code === 'WEIR_TRAP' && e.kind === 'unknown-handle' && e.reason === 'unknown handle index 5' && e.message === e.reason);
});

test('a Weir error is never taken for a host failure by the WASI faces', () => {
  assert.equal(isHostError(new Trap(TrapReason['cannot-leave-component'])), false);
  assert.equal(isHostError(new LinkError('x')), false);
  assert.equal(isHostError(Object.assign(new Error('no such file'), { code: 'ENOENT' })), true);
});

/** The last string of every (assert_trap …) form in a .wast file. */
function assertTrapTexts(file: string): string[] {
  const s = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (let i = s.indexOf('(assert_trap'); i >= 0; i = s.indexOf('(assert_trap', i + 1)) {
    let depth = 0, j = i, last: string | null = null;
    for (; j < s.length; j++) {
      const ch = s[j];
      if (ch === '"') {
        let k = j + 1;
        while (k < s.length && s[k] !== '"') k += s[k] === '\\' ? 2 : 1;
        last = s.slice(j + 1, k);
        j = k;
      } else if (ch === ';' && s[j + 1] === ';') j = s.indexOf('\n', j);
      else if (ch === '(') depth++;
      else if (ch === ')' && --depth === 0) break;
    }
    if (last !== null) out.push(last);
  }
  return out;
}

function wastFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? wastFiles(p) : p.endsWith('.wast') ? [p] : [];
  });
}

/** Could a trap of this table carry `text` (the runner checks that the message includes the suite's text)? */
function covered(text: string): boolean {
  return shapes.some((shape) => {
    if (!shape.includes(A)) return shape.includes(text);
    const parts = shape.split(A);
    if (parts.some((p) => p.includes(text))) return true;
    // a whole message with its values filled in (e.g. 'unknown handle index 5')
    return new RegExp(`^${parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.+')}$`).test(text);
  });
}

// Texts of the Component Model test suite that Weir words differently today
// (the runner notes the difference; the trap itself is the one the suite expects),
// or that come from the core wasm engine rather than this table.
const WORDED_DIFFERENTLY = new Set([
  'cannot read from stream after being notified that the writable end dropped',
  'cannot remove busy stream',
  'cannot remove owned resource while borrowed',
  'cannot write to stream after being notified that the readable end dropped',
  'handle index 1 used with the wrong type, expected guest-defined resource but found a different guest-defined resource',
  'incomplete utf-8 byte sequence',
  'invalid `char` bit pattern',
  'realloc return: beyond end of memory',
  'realloc return: result not aligned',
  'string content out-of-bounds',
  'string pointer/length out of bounds of memory',
  'unaligned pointer',
  'unreachable',
  'wasm trap: cannot enter component instance',
  'wasm trap: deadlock detected: event loop cannot make further progress',
  'wasm trap: list content out-of-bounds',
  'wasm trap: unaligned pointer',
  'wasm trap: wasm `unreachable` instruction executed',
]);

const SUITE = join(defaultSpecRoot(), 'component-model-test');
test('the table keeps the Component Model test suite\'s trap texts', { skip: existsSync(SUITE) ? false : `no spec data at ${SUITE}` }, () => {
  const texts = new Set(wastFiles(SUITE).flatMap(assertTrapTexts));
  assert.ok(texts.size > 30, `found only ${texts.size} assert_trap texts`);
  const lost = [...texts].filter((t) => !covered(t) && !WORDED_DIFFERENTLY.has(t));
  assert.deepEqual(lost, [], 'a reason\'s message no longer holds the text the suite checks');
  const stale = [...WORDED_DIFFERENTLY].filter((t) => !texts.has(t) || covered(t));
  assert.deepEqual(stale, [], 'listed as worded differently, but the suite no longer has it or the table now matches it');
});

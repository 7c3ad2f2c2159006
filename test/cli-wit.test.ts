// Unit tests for the WIT printer (src/types/wit.ts) on hand-built ComponentTypes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { printWit } from '../src/types/wit.ts';
import type { ComponentType, ExternType, FuncType, InstanceType, PrimName, PrimType, ResourceType, ValType } from '../src/types/types.ts';

// Built by hand (types.ts is only imported for its types here).
let nextId = 1000;
const resource = (name: string): ResourceType => ({ kind: 'resource', id: nextId++, name, defined: null }) as ResourceType;
const prim = (kind: PrimName): PrimType => ({ kind });

const fn = (params: [string, ValType][], result: ValType | null = null, async = false): ExternType => ({
  kind: 'func',
  type: { kind: 'func', async, params: params.map(([name, type]) => ({ name, type })), result } satisfies FuncType,
});
const ty = (type: ValType | ResourceType): ExternType => ({ kind: 'type', type });
const inst = (entries: [string, ExternType][]): ExternType => ({
  kind: 'instance', type: { kind: 'instance', exports: new Map(entries) } satisfies InstanceType,
});
const component = (imports: [string, ExternType][], exports: [string, ExternType][]): ComponentType => ({
  kind: 'component', imports: new Map(imports), exports: new Map(exports), importedResources: [], exportedResources: [],
});

test('top-level functions print as world import/export lines', () => {
  const ct = component(
    [['log', fn([['msg', prim('string')]])]],
    [['add', fn([['a', prim('u32')], ['b', prim('u32')]], { kind: 'result', ok: prim('u32'), err: prim('string') })],
     ['wait', fn([], null, true)]],
  );
  const wit = printWit(ct);
  assert.match(wit, /^package root:component;/);
  assert.match(wit, /world root \{/);
  assert.match(wit, /import log: func\(msg: string\);/);
  assert.match(wit, /export add: func\(a: u32, b: u32\) -> result<u32, string>;/);
  assert.match(wit, /export wait: async func\(\);/);
});

test('interface-named instances print as nested packages; resources fold; uses are emitted', () => {
  const stream = resource('output-stream');
  const err = resource('error');
  const streamErr: ValType = { kind: 'variant', cases: [{ name: 'last-operation-failed', type: { kind: 'own', resource: err } }, { name: 'closed', type: null }] };
  const dt: ValType = { kind: 'record', fields: [{ name: 'seconds', type: prim('u64') }, { name: 'nanoseconds', type: prim('u32') }] };
  const ct = component([
    ['wasi:io/error@0.2.0', inst([['error', ty(err)], ['[method]error.to-debug-string', fn([['self', { kind: 'borrow', resource: err }]], prim('string'))]])],
    ['wasi:io/streams@0.2.0', inst([
      ['error', ty(err)],
      ['output-stream', ty(stream)],
      ['stream-error', ty(streamErr)],
      ['[method]output-stream.write', fn([['self', { kind: 'borrow', resource: stream }], ['contents', { kind: 'list', elem: prim('u8'), length: null }]],
        { kind: 'result', ok: null, err: streamErr })],
      ['[static]output-stream.make', fn([], { kind: 'own', resource: stream })],
      ['[constructor]output-stream', fn([['n', prim('u32')]], { kind: 'own', resource: stream })],
    ])],
    ['wasi:cli/stdout@0.2.0', inst([['output-stream', ty(stream)], ['get-stdout', fn([], { kind: 'own', resource: stream })]])],
    ['clock', inst([['datetime', ty(dt)], ['now', fn([], dt)], ['type', ty(prim('u64'))]])],
  ], [['run', fn([['when', dt]])]]);
  const wit = printWit(ct);
  assert.match(wit, /import wasi:io\/error@0\.2\.0;/);
  assert.match(wit, /import wasi:io\/streams@0\.2\.0;/);
  assert.match(wit, /package wasi:io@0\.2\.0 \{/);
  assert.match(wit, /interface streams \{/);
  assert.match(wit, /use wasi:io\/error@0\.2\.0\.\{error\};/);
  assert.match(wit, /resource output-stream \{\n\s+write: func\(contents: list<u8>\) -> result<_, stream-error>;\n\s+make: static func\(\) -> output-stream;\n\s+constructor\(n: u32\);/);
  assert.match(wit, /last-operation-failed\(error\),/);
  assert.match(wit, /interface stdout \{\n\s+use wasi:io\/streams@0\.2\.0\.\{output-stream\};/);
  assert.match(wit, /import clock: interface \{\n\s+record datetime \{/);
  assert.match(wit, /now: func\(\) -> datetime;/);
  assert.match(wit, /type %type = u64;/);
  // anonymous record at world level: structural comment
  assert.match(wit, /export run: func\(when: \/\* record \{ seconds: u64, nanoseconds: u32 \} \*\/\);/);
});

test('never throws, even on malformed input', () => {
  const bad = { kind: 'component', imports: new Map([['x', { kind: 'func', type: null }]]), exports: null } as unknown as ComponentType;
  assert.equal(typeof printWit(bad), 'string');
  assert.equal(typeof printWit(null as unknown as ComponentType), 'string');
  assert.equal(typeof printWit(component([], [])), 'string');
});

// Unit tests for weir's argument parser (src/cli/args.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, UsageError } from '../src/cli/args.ts';

test('global options and help', () => {
  assert.deepEqual(parseArgs([]), { cmd: 'help', topic: null });
  assert.deepEqual(parseArgs(['--help']), { cmd: 'help', topic: null });
  assert.deepEqual(parseArgs(['-V']), { cmd: 'version' });
  assert.deepEqual(parseArgs(['help', 'run']), { cmd: 'help', topic: 'run' });
  assert.deepEqual(parseArgs(['run', '--help']), { cmd: 'help', topic: 'run' });
  assert.deepEqual(parseArgs(['serve', '-h']), { cmd: 'help', topic: 'serve' });
  assert.throws(() => parseArgs(['nope']), UsageError);
  assert.throws(() => parseArgs(['--nope']), UsageError);
});

test('inspect', () => {
  assert.deepEqual(parseArgs(['inspect', 'a.wasm']), { cmd: 'inspect', file: 'a.wasm', world: 'root', verbose: false });
  assert.deepEqual(parseArgs(['-v', 'inspect', '--world=w', 'a.wasm']), { cmd: 'inspect', file: 'a.wasm', world: 'w', verbose: true });
  assert.deepEqual(parseArgs(['inspect', 'a.wasm', '--verbose']), { cmd: 'inspect', file: 'a.wasm', world: 'root', verbose: true });
  assert.deepEqual(parseArgs(['inspect', '--', '-odd.wasm']), { cmd: 'inspect', file: '-odd.wasm', world: 'root', verbose: false });
  assert.throws(() => parseArgs(['inspect']), UsageError);
  assert.throws(() => parseArgs(['inspect', 'a.wasm', 'b.wasm']), UsageError);
  assert.throws(() => parseArgs(['inspect', '--world']), /needs a value/);
});

const none = { dirs: [], env: [], inheritEnv: false, wasi: {}, allowNet: [], allowOutbound: [], strict: false, verbose: false };

test('run: options, then the component, then guest arguments untouched', () => {
  const r = parseArgs(['run', '--dir', '/tmp::/data', '--dir-readonly=/etc', '--env', 'A=1', '--env', 'HOME',
    '--env=B=x=y', '--inherit-env', '-v', 'app.wasm', '--dir', 'x', '--', '-n']);
  assert.deepEqual(r, {
    cmd: 'run',
    file: 'app.wasm',
    args: ['--dir', 'x', '--', '-n'],
    dirs: [{ host: '/tmp', guest: '/data', readonly: false }, { host: '/etc', guest: '/etc', readonly: true }],
    env: [{ name: 'A', value: '1' }, { name: 'HOME', value: undefined }, { name: 'B', value: 'x=y' }],
    inheritEnv: true,
    wasi: {},
    allowNet: [],
    allowOutbound: [],
    strict: false,
    verbose: true,
  });
  assert.deepEqual(parseArgs(['run', '--', '--weird.wasm', 'a']), {
    cmd: 'run', file: '--weird.wasm', args: ['a'], ...none,
  });
  assert.throws(() => parseArgs(['run']), /missing <component.wasm>/);
  assert.throws(() => parseArgs(['run', '--dir']), /needs a value/);
  assert.throws(() => parseArgs(['run', '--dir', '::x', 'a.wasm']), /missing host/);
  assert.throws(() => parseArgs(['run', '--dir', 'x::', 'a.wasm']), /missing guest/);
  assert.throws(() => parseArgs(['run', '--env', '=1', 'a.wasm']), /missing variable name/);
  assert.throws(() => parseArgs(['run', '--inherit-env=1', 'a.wasm']), UsageError);
  assert.throws(() => parseArgs(['run', '--frob', 'a.wasm']), /unknown option --frob/);
});

test('serve', () => {
  assert.deepEqual(parseArgs(['serve', 'p.wasm']), { cmd: 'serve', files: ['p.wasm'], host: '127.0.0.1', port: 8080, ...none });
  assert.deepEqual(parseArgs(['serve', '--addr', '0.0.0.0:80', 'p.wasm']), { cmd: 'serve', files: ['p.wasm'], host: '0.0.0.0', port: 80, ...none });
  assert.deepEqual(parseArgs(['serve', 'p.wasm', '--addr=[::1]:0', 'q.wasm']), { cmd: 'serve', files: ['p.wasm', 'q.wasm'], host: '::1', port: 0, ...none });
  assert.throws(() => parseArgs(['serve', '--addr', 'localhost', 'p.wasm']), /HOST:PORT/);
  assert.throws(() => parseArgs(['serve', '--addr', 'h:99999', 'p.wasm']), /port/);
  assert.throws(() => parseArgs(['serve', '--addr', '::1:80', 'p.wasm']), /brackets/);
  assert.throws(() => parseArgs(['serve']), /missing/);
});

test('-S settings: known names only, comma lists, -Sname form', () => {
  const r = parseArgs(['run', '-S', 'cli,inherit-env=y', '-Scli=n', 'a.wasm']);
  assert.equal(r.cmd, 'run');
  if (r.cmd !== 'run') return;
  assert.deepEqual(r.wasi, { cli: 'n', 'inherit-env': 'y' });
  assert.equal(r.inheritEnv, true);
  assert.throws(() => parseArgs(['run', '-S', 'fuel=10', 'a.wasm']), /-S fuel: not supported/);
  assert.throws(() => parseArgs(['serve', '-Snope', 'a.wasm']), /-S nope: not supported/);
  const s = parseArgs(['serve', '--allow-outbound', 'example.com', '--allow-net=connect=127.0.0.1:80', '--strict', 'a.wasm']);
  assert.equal(s.cmd, 'serve');
  if (s.cmd !== 'serve') return;
  assert.deepEqual([s.allowOutbound, s.allowNet, s.strict], [['example.com'], ['connect=127.0.0.1:80'], true]);
});

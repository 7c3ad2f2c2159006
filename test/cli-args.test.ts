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
    verbose: true,
  });
  assert.deepEqual(parseArgs(['run', '--', '--weird.wasm', 'a']), {
    cmd: 'run', file: '--weird.wasm', args: ['a'], dirs: [], env: [], inheritEnv: false, verbose: false,
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
  assert.deepEqual(parseArgs(['serve', 'p.wasm']), { cmd: 'serve', file: 'p.wasm', host: '127.0.0.1', port: 8080, verbose: false });
  assert.deepEqual(parseArgs(['serve', '--addr', '0.0.0.0:80', 'p.wasm']), { cmd: 'serve', file: 'p.wasm', host: '0.0.0.0', port: 80, verbose: false });
  assert.deepEqual(parseArgs(['serve', 'p.wasm', '--addr=[::1]:0']), { cmd: 'serve', file: 'p.wasm', host: '::1', port: 0, verbose: false });
  assert.throws(() => parseArgs(['serve', '--addr', 'localhost', 'p.wasm']), /HOST:PORT/);
  assert.throws(() => parseArgs(['serve', '--addr', 'h:99999', 'p.wasm']), /port/);
  assert.throws(() => parseArgs(['serve', '--addr', '::1:80', 'p.wasm']), /brackets/);
  assert.throws(() => parseArgs(['serve']), /missing/);
});

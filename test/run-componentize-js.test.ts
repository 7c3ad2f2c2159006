// A WASI 0.2 command built by @bytecodealliance/componentize-js (SpiderMonkey),
// run through `weir run` and the API.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './helpers/fixtures.ts';
import { buildComponentizeJs, runWithApi } from './helpers/wasi-fixtures.ts';

const JS = `
import { getArguments, getEnvironment } from 'wasi:cli/environment@0.2.12';
import { exitWithCode } from 'wasi:cli/exit@0.2.12';
export const run = {
  run() {
    const args = getArguments();
    console.log('hello from componentize-js ' + JSON.stringify(args.slice(1)));
    console.error('env ' + JSON.stringify(getEnvironment()));
    if (args[1] === 'exit') exitWithCode(Number(args[2]));
  },
};
`;

let wasm: string;
before(async () => {
  wasm = await buildComponentizeJs('cjs-cmd', 'cjscmd', ['cli/environment', 'cli/exit', 'cli/stdout', 'cli/stderr'], JS);
});

test('componentize-js command: console.log, args, env and exit through weir run', () => {
  const mainJs = join(repoRoot, 'dist', 'cli', 'main.js');
  assert.ok(existsSync(mainJs), 'run npx tsc -p . first');
  const r = spawnSync(process.execPath, [mainJs, 'run', '--env', 'K=v', wasm, 'a', 'b'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'hello from componentize-js ["a","b"]\n');
  assert.equal(r.stderr, 'env [["K","v"]]\n');
  const e = spawnSync(process.execPath, [mainJs, 'run', wasm, 'exit', '5'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(e.status, 5, e.stderr);
});

test('componentize-js command through the API', async () => {
  const r = await runWithApi(wasm, ['x']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello from componentize-js ["x"]\n');
  assert.equal(r.stderr, 'env []\n');
});

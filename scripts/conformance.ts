// `npm run conformance -- <path-to-wasi-testsuite>`: runs wasi-testsuite's own
// runner (`run-tests`) against the `weir` CLI through conformance/weir.py and
// prints a JSON summary as the last line.
//
// The runner needs Python 3.12+ with `requests` and `colorama`. Where pip
// cannot fetch them, point WEIR_PYTHONPATH at a folder that has them; by
// default this script links them from pyenv's 3.11.7 site-packages into
// .cache/pylibs (the packages are pure Python).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '..');
const suite = process.argv[2];
if (!suite || !existsSync(join(suite, 'run-tests'))) {
  console.error('usage: npm run conformance -- <path-to-wasi-testsuite checkout (branch prod/testsuite-base)> [--filter substring]');
  process.exit(2);
}
const fi = process.argv.indexOf('--filter');
const filter = fi > 0 ? process.argv[fi + 1] : undefined;

function pythonPath(): string {
  if (process.env.WEIR_PYTHONPATH) return process.env.WEIR_PYTHONPATH;
  const dir = join(repo, '.cache', 'pylibs');
  const site = process.env.WEIR_SITE_PACKAGES ?? '/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages';
  mkdirSync(dir, { recursive: true });
  for (const pkg of ['requests', 'colorama', 'urllib3', 'idna', 'certifi', 'charset_normalizer']) {
    const to = join(dir, pkg);
    if (!existsSync(to) && existsSync(join(site, pkg))) symlinkSync(join(site, pkg), to);
  }
  return dir;
}

if (!existsSync(join(repo, 'dist', 'cli', 'main.js'))) {
  spawnSync(join(repo, 'node_modules', '.bin', 'tsc'), ['-p', repo], { stdio: 'inherit' });
}

const out = mkdtempSync(join(tmpdir(), 'weir-conformance-'));
const jsonPath = join(out, 'results.json');
const args = [join(suite, 'run-tests'), '-r', join(repo, 'conformance', 'weir.py'), '--json-output-location', jsonPath, '--disable-colors'];
const r = spawnSync('python3', args, {
  cwd: suite,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, PYENV_VERSION: process.env.PYENV_VERSION ?? '3.12.1', PYTHONPATH: pythonPath() },
});
if (!existsSync(jsonPath)) {
  console.error(`run-tests produced no results (exit ${r.status})`);
  process.exit(1);
}

interface Test { name: string; executed: boolean; outcome: string; failures: string[] }
const data = JSON.parse(readFileSync(jsonPath, 'utf8')) as { results: { name: string; tests: Test[] }[] };
rmSync(out, { recursive: true, force: true });
const tests: { name: string; status: 'pass' | 'fail' | 'skip'; reason: string }[] = [];
for (const s of data.results) {
  for (const t of s.tests) {
    const name = `${s.name}/${t.name}`;
    if (filter && !name.includes(filter)) continue;
    const o = t.outcome.toLowerCase();
    const status = o === 'pass' || o === 'passed' || o === 'xpass' ? 'pass' : o.startsWith('skip') ? 'skip' : 'fail';
    tests.push({ name, status, reason: t.failures.join('; ').slice(0, 500) });
  }
}
const count = (s: string) => tests.filter((t) => t.status === s).length;
console.log(JSON.stringify({ passed: count('pass'), failed: count('fail'), skipped: count('skip'), tests }));
process.exit(count('fail') > 0 ? 1 : 0);

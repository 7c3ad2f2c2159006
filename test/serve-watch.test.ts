// `weir serve --watch` through the built command: a rename-over replacement
// switches new requests to the new component with no failed request, a
// request in flight finishes on the old one, and a broken file keeps the
// current version serving with one stderr line.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request as httpRequest } from 'node:http';
import { spawnSync } from 'node:child_process';
import { assembleText } from '../src/wast/assemble.ts';
import { buildService, helloWat, startServe, weirBin } from './helpers/http-serve-fixtures.ts';

/** helloWat with another 5-byte body. */
const helloSaying = (body: string) => helloWat().replace('(data (i32.const 16) "hello")', `(data (i32.const 16) "${body}")`);

function get(url: string, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('serve --watch: rename-over reload with zero failed requests; in-flight request ends on the old version; a broken file keeps serving', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weir-watch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'app.wasm');
  // Version A: the JS service (it has /sleep, for a request that spans the swap) or, without componentize-qjs, a WAT hello.
  const service = await buildService();
  const bodyA = service ? 'hello' : 'AAAAA';
  if (service) copyFileSync(service, file);
  else writeFileSync(file, await assembleText(helloSaying('AAAAA')));
  const bytesB = await assembleText(helloSaying('BBBBB'));

  // one worker: each worker reloads on its own, so with several a request may meet the old version a moment longer
  const served = await startServe(['--workers', '1', '--watch', file]);
  t.after(() => { served.child.kill('SIGKILL'); });
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  t.after(() => agent.destroy());

  // Four clients send requests back to back for the whole test.
  const results: { start: number; end: number; body: string }[] = [];
  const failures: string[] = [];
  let running = true;
  const loops = Array.from({ length: 4 }, async () => {
    while (running) {
      const start = performance.now();
      try {
        const r = await get(`${served.url}/`, agent);
        if (r.status !== 200) failures.push(`status ${r.status}: ${r.body}`);
        results.push({ start, end: performance.now(), body: r.body });
      } catch (e) {
        failures.push(String(e));
      }
    }
  });
  try {
    await until('answers from A', () => results.length >= 20, 5000);
    assert.ok(results.every((r) => r.body === bodyA), `A answers ${bodyA}`);

    // A long request, started on A before the swap.
    const long = service ? get(`${served.url}/sleep?ms=1200`, agent) : null;
    if (long) await new Promise((r) => setTimeout(r, 150));

    // Replace the file the way editors and deploy scripts do: write elsewhere, rename over.
    const tmp = join(dir, '.app.wasm.tmp');
    writeFileSync(tmp, bytesB);
    const swapped = performance.now();
    renameSync(tmp, file);
    await until('answers from B', () => results.some((r) => r.body === 'BBBBB'), 5000);
    const firstB = Math.min(...results.filter((r) => r.body === 'BBBBB').map((r) => r.end));
    t.diagnostic(`switched ${Math.round(firstB - swapped)} ms after the rename`);
    await until('reload line', () => served.stderr().includes(`weir: reloaded ${file}`), 2000);
    const atSwitch = results.length;
    await until('more answers from B', () => results.length >= atSwitch + 20, 5000);
    // Every request that started after B answered once gets B.
    const late = results.filter((r) => r.start > firstB);
    assert.ok(late.length >= 10);
    assert.deepEqual(late.filter((r) => r.body !== 'BBBBB'), [], 'requests after the switch answer B');
    if (long) {
      const r = await long;
      assert.equal(r.status, 200);
      assert.match(r.body, /^slept:/, 'the request in flight finished on version A');
    } else {
      t.diagnostic('componentize-qjs unavailable: the long request across the swap was not exercised');
    }

    // A broken version: the error is logged once and B keeps serving.
    const before = results.length;
    writeFileSync(tmp, Buffer.from('not a component'));
    renameSync(tmp, file);
    await until('reload error line', () => /weir: .*app\.wasm: reload failed: .*still serving the previous version/.test(served.stderr()), 5000);
    await until('answers after the failed reload', () => results.length >= before + 20, 5000);
    assert.ok(results.slice(before).every((r) => r.body === 'BBBBB'), 'B still answers');
    assert.equal(served.stderr().match(/reload failed/g)?.length, 1, 'one error line');

    // A component that compiles but serves nothing (no handler export): it cannot replace B either.
    const before2 = results.length;
    writeFileSync(tmp, await assembleText('(component)'));
    renameSync(tmp, file);
    await until('instantiate error line', () => /app\.wasm: reload failed: cannot instantiate: .*not an HTTP service.*still serving the previous version/.test(served.stderr()), 5000);
    await until('answers after the second failed reload', () => results.length >= before2 + 20, 5000);
    assert.ok(results.slice(before2).every((r) => r.body === 'BBBBB'), 'B still answers');
    assert.equal(served.stderr().match(/reload failed/g)?.length, 2, 'one line per failed version');

    // Rewriting the file in place (truncate, then write) reloads too, once the events settle.
    writeFileSync(file, await assembleText(helloSaying('CCCCC')));
    await until('answers from C', () => results.some((r) => r.body === 'CCCCC'), 5000);
    assert.equal(served.stderr().match(/reload failed/g)?.length, 2, 'no error for the in-place write');
  } finally {
    running = false;
    await Promise.all(loops);
  }
  assert.deepEqual(failures, [], 'no failed request during reloads');
  assert.equal(await served.stop(), 0);
});

test('serve --help documents --watch', () => {
  const r = spawnSync(process.execPath, [weirBin, 'serve', '--help'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0);
  assert.match(r.stdout + r.stderr, /--watch\s+Reload when a served \.wasm file changes/);
});

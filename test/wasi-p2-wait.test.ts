// WASI 0.2 waiting suspends the guest (JSPI) instead of blocking the Node
// thread: while a 0.2 command is blocked in blocking-read, poll or
// pollable.block, the same process keeps running timers, an HTTP server and
// other guests. Components are built with componentize-qjs (0.2 WIT).

import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants, mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { createServer } from 'node:http';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildQjsComponent } from './helpers/fixtures.ts';
import { buildCmd, commandWit, runWithApi } from './helpers/wasi-fixtures.ts';
import { buildP3Cmd } from './helpers/wasi-p3-fixtures.ts';

const WAIT_JS = String.raw`
import env from 'wasi:cli/environment@0.2.12';
import stdin from 'wasi:cli/stdin@0.2.12';
import stdout from 'wasi:cli/stdout@0.2.12';
import mono from 'wasi:clocks/monotonic-clock@0.2.12';
import poll from 'wasi:io/poll@0.2.12';

function ascii(s) { const b = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i); return b; }
let out = null;
function print(s) { (out ??= stdout.getStdout()).blockingWriteAndFlush(ascii(s + '\n')); }

export const run = {
  run() {
    const args = env.getArguments();
    switch (args[1]) {
      case 'poll-stdin': {
        // poll [stdin, timer] until stdin ends; log what woke us
        const s = stdin.getStdin();
        const p = s.subscribe();
        const log = [];
        for (let i = 0; i < 200; i++) {
          const t = mono.subscribeDuration(Number(args[2]) * 1e6);
          const r = Array.from(poll.poll([p, t]));
          t[Symbol.dispose]();
          if (r.includes(0)) {
            let b;
            try { b = s.read(1000); } catch (e) { log.push('end'); break; }
            log.push('data:' + b.length);
          } else log.push('timeout');
        }
        // collapse runs of timeouts
        print(log.filter((x, i) => x !== 'timeout' || log[i - 1] !== 'timeout').join(','));
        return;
      }
      case 'write-big': {
        // check-write / write / subscribe().block(), as a non-blocking writer does
        const o = stdout.getStdout();
        const chunk = new Uint8Array(65536).fill(97);
        let left = Number(args[2]), waits = 0;
        const ps = o.subscribe();
        while (left > 0) {
          const n = Number(o.checkWrite());
          if (n === 0) { ps.block(); waits++; continue; }
          const k = Math.min(n, chunk.length, left);
          o.write(chunk.subarray(0, k));
          left -= k;
        }
        o.blockingFlush();
        stdout.getStdout().blockingWriteAndFlush(ascii('|waits>0:' + (waits > 0)));
        return;
      }
    }
  },
};
`;

const buildWait = () => buildQjsComponent('wasi-p2-wait', commandWit('waiter', ['cli/environment', 'cli/stdin', 'cli/stdout', 'clocks/monotonic-clock', 'io/poll', 'io/streams']), 'waiter', WAIT_JS);

/** A FIFO whose read end (non-blocking) is returned with a writer to feed it. */
function fifo(dir: string, name: string): { path: string; readFd: number } {
  const path = join(dir, name);
  execFileSync('mkfifo', [path]);
  return { path, readFd: openSync(path, constants.O_RDONLY | constants.O_NONBLOCK) };
}

/** Counts timer ticks and answers HTTP requests made from this process while `during` runs. */
async function liveness<T>(during: () => Promise<T>): Promise<{ result: T; ticks: number; answered: number }> {
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 10);
  const server = createServer((_, res) => res.end('pong'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  let answered = 0;
  let stop = false;
  const client = (async () => {
    while (!stop) {
      const body = await (await fetch(`http://127.0.0.1:${port}/`)).text();
      if (body === 'pong' && !stop) answered++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  try {
    const result = await during();
    return { result, ticks, answered };
  } finally {
    stop = true;
    clearInterval(timer);
    await client.catch(() => {});
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

const dir = mkdtempSync(join(tmpdir(), 'weir-p2-wait-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('a guest blocked in blocking-read on stdin lets timers, an HTTP server and another guest run', { timeout: 120_000 }, async () => {
  const cmd = await buildCmd();
  const { path, readFd } = fifo(dir, 'stdin1');
  const writer = openSync(path, 'w');
  let otherDone = false;
  const { result, ticks, answered } = await liveness(async () => {
    const blocked = runWithApi(cmd, ['stdin'], { stdin: { fd: readFd } });
    // While it waits: another guest runs to completion in the same process.
    const other = await runWithApi(cmd, ['hello']);
    otherDone = other.stdout === 'hello, world\n';
    await new Promise((r) => setTimeout(r, 300));
    writeSync(writer, 'fed after 300 ms');
    closeSync(writer);
    return blocked;
  });
  assert.equal(result.code, 0);
  assert.equal(result.stdout, 'stdin:fed after 300 ms\n');
  assert.ok(otherDone, 'the second guest ran while the first was blocked');
  assert.ok(ticks >= 10, `a 10 ms interval ticked only ${ticks} times in 300 ms`);
  assert.ok(answered >= 3, `the HTTP server answered only ${answered} requests`);
});

test('pollable.block on a 500 ms timer does not block the event loop', { timeout: 120_000 }, async () => {
  const cmd = await buildCmd();
  const t0 = performance.now();
  const { result, ticks, answered } = await liveness(() => runWithApi(cmd, ['sleep', '500']));
  const ms = performance.now() - t0;
  assert.equal(result.stdout, '{"slept":true,"wall":true}\n');
  assert.ok(ms >= 500, `returned after ${ms} ms`);
  assert.ok(ticks >= 15, `a 10 ms interval ticked only ${ticks} times during a 500 ms sleep`);
  assert.ok(answered >= 5, `the HTTP server answered only ${answered} requests`);
});

test('poll([stdin, timer]): times out while stdin is quiet, wakes for data and for the end', { timeout: 120_000 }, async () => {
  const wasm = await buildWait();
  const { path, readFd } = fifo(dir, 'stdin2');
  const writer = openSync(path, 'w');
  const { result, ticks } = await liveness(async () => {
    const run = runWithApi(wasm, ['poll-stdin', '20'], { stdin: { fd: readFd } });
    await new Promise((r) => setTimeout(r, 150));
    writeSync(writer, 'abc');
    await new Promise((r) => setTimeout(r, 150));
    closeSync(writer);
    return run;
  });
  assert.equal(result.code, 0);
  assert.equal(result.stdout, 'timeout,data:3,timeout,end\n');
  assert.ok(ticks >= 10, `only ${ticks} ticks`);
});

test('output-stream: check-write / write / subscribe to a pipe this process drains (no deadlock)', { timeout: 120_000 }, async () => {
  const wasm = await buildWait();
  const { path, readFd } = fifo(dir, 'stdout1');
  // the guest writes 4 MiB, far more than a pipe holds, to a non-blocking FIFO read here
  const wfd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  let got = 0;
  let tail = '';
  const reader = new Promise<void>((resolve, reject) => {
    const rs = new Socket({ fd: readFd, readable: true, writable: false });
    rs.on('data', (b) => { got += (b as Buffer).length; tail = (tail + (b as Buffer).toString('latin1')).slice(-20); });
    rs.on('end', resolve);
    rs.on('error', reject);
  });
  const { Component } = await import('../src/index.ts');
  const { createWasi, runCommand } = await import('../src/wasi/index.ts');
  const { readFileSync } = await import('node:fs');
  const errs: Uint8Array[] = [];
  const wasi = createWasi({ args: ['w', 'write-big', String(4 << 20)], stdout: { fd: wfd }, stderr: (b) => errs.push(b) });
  try {
    const code = await runCommand(Component.compile(readFileSync(wasm)).instantiate(wasi.imports));
    assert.equal(code, 0, Buffer.concat(errs).toString());
  } finally {
    wasi.close();
    closeSync(wfd);
  }
  await reader;
  assert.equal(got, (4 << 20) + '|waits>0:true'.length);
  assert.ok(tail.endsWith('|waits>0:true'), tail);
});

test('poll with a timer far in the future: no timer overflow, no spinning; the timer is cleared when stdin wins', { timeout: 120_000 }, async () => {
  const wasm = await buildWait();
  const { path, readFd } = fifo(dir, 'stdin3');
  const writer = openSync(path, 'w');
  const warnings: string[] = [];
  const onWarning = (w: Error) => { warnings.push(w.name); };
  process.on('warning', onWarning);
  try {
    // 10^12 ms ≈ 31 years: beyond setTimeout's 2^31-1 ms
    const run = runWithApi(wasm, ['poll-stdin', '1000000000000'], { stdin: { fd: readFd } });
    await new Promise((r) => setTimeout(r, 100));
    writeSync(writer, 'abc');
    await new Promise((r) => setTimeout(r, 50));
    closeSync(writer);
    const r = await run;
    assert.equal(r.stdout, 'data:3,end\n');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings.filter((w) => w === 'TimeoutOverflowWarning'), []);
  } finally {
    process.off('warning', onWarning);
  }
});

test('a WASI 0.3 (async) guest runs to completion while a 0.2 guest waits on stdin', { timeout: 120_000 }, async (t) => {
  const p3 = await buildP3Cmd();
  if (!p3) { t.skip('WASI 0.3.0 WIT not found (jco bundles it under lib/wit/builtin/0.3.0)'); return; }
  const cmd = await buildCmd();
  const { path, readFd } = fifo(dir, 'stdin4');
  const writer = openSync(path, 'w');
  let blocked: ReturnType<typeof runWithApi>;
  try {
    blocked = runWithApi(cmd, ['stdin'], { stdin: { fd: readFd } });
    let blockedDone = false;
    void blocked.then(() => { blockedDone = true; });
    // the 0.3 guest's tasks are driven by the runtime's scheduler, which a waiting 0.2 call must not hold
    const other = await runWithApi(p3, ['sleep', '30']);
    assert.equal(other.stdout, '{"slept":true,"wall":true}\n');
    assert.equal(blockedDone, false, 'the 0.2 guest was still waiting');
    writeSync(writer, 'late');
  } finally {
    closeSync(writer);
  }
  assert.equal((await blocked).stdout, 'stdin:late\n');
});

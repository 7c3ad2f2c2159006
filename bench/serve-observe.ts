// What TLS and observability cost `weir serve`, each beside the same server
// without it in the same run (minimal WAT p3 hello, wrk -c50, loopback):
//   - --metrics-addr + --log-format json (an access-log line per request on
//     stderr, drained by this process) vs neither;
//   - HTTPS (--tls-cert/--tls-key, http/1.1 over TLS: wrk does not speak h2)
//     vs plain HTTP, and node:https vs node:http hello for scale.
// Needs wrk and the openssl CLI; rows are skipped with the reason otherwise.
// Run: npm run bench -- serve-observe. Figures are printed, never asserted.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bench, BenchResult } from './harness.ts';
import { startServer, weir, wrkRps as wrk } from './serve-harness.ts';

const SECONDS = Number(process.env.WEIR_BENCH_SERVE_SECONDS ?? 5);

const nodeHello = (tls: boolean) => `const fs = require('node:fs');
const h = (q, r) => { r.writeHead(200, { 'content-type': 'text/plain' }); r.end('hello'); };
const s = ${tls ? `require('node:https').createServer({ cert: fs.readFileSync(process.env.CERT), key: fs.readFileSync(process.env.KEY) }, h)` : `require('node:http').createServer(h)`};
s.listen(0, '127.0.0.1', function () { process.stderr.write('Serving on ${tls ? 'https' : 'http'}://127.0.0.1:' + this.address().port + '/\\n'); });`;

async function measure(args: string[], env: Record<string, string> = {}): Promise<number> {
  const p = await startServer(args, { env });
  try {
    await wrk(p.url, 1); // warm-up
    return await wrk(p.url, SECONDS);
  } finally {
    await p.stop();
  }
}

async function run(): Promise<BenchResult[]> {
  if (!existsSync(weir)) throw new Error('run npm run build first');
  if (spawnSync('wrk', ['--version']).error !== undefined) return [{ name: 'serve-observe', value: NaN, unit: '', note: 'wrk not installed: skipped' }];
  const { helloWat } = await import('../test/helpers/http-serve-fixtures.ts');
  const { assembleText } = await import('../src/wast/assemble.ts');
  const dir = mkdtempSync(join(tmpdir(), 'weir-bench-observe-'));
  const out: BenchResult[] = [];
  try {
    const hello = join(dir, 'hello.wasm');
    writeFileSync(hello, await assembleText(helloWat()));
    const serve = [weir, 'serve', '--addr', '127.0.0.1:0'];
    const plain = await measure([...serve, hello]);
    const observed = await measure([...serve, '--metrics-addr', '127.0.0.1:0', '--log-format', 'json', hello]);
    out.push({ name: 'serve: WAT hello with --metrics-addr and --log-format json, wrk -c50', value: observed, unit: 'req/s', baseline: plain,
      baselineLabel: 'weir serve without them', higherIsBetter: true });
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const ssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
      '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    if (ssl.status !== 0) {
      out.push({ name: 'serve: HTTPS rows', value: NaN, unit: '', note: 'the openssl CLI is not installed: skipped' });
    } else {
      const https = await measure([...serve, '--tls-cert', cert, '--tls-key', key, hello]);
      const nodeHttp = await measure(['-e', nodeHello(false)]);
      const nodeHttps = await measure(['-e', nodeHello(true)], { CERT: cert, KEY: key });
      out.push({ name: 'serve: WAT hello over HTTPS (http/1.1, TLS keep-alive), wrk -c50', value: https, unit: 'req/s', baseline: plain,
        baselineLabel: 'weir serve over HTTP', higherIsBetter: true, note: `node:https hello ${nodeHttps.toFixed(0)} req/s vs node:http ${nodeHttp.toFixed(0)}` });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

export const benches: Bench[] = [{ name: 'serve-observe', run }];

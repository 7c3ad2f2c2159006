// `weir serve` TLS/HTTP-2 and observability flags through the built command:
// --tls-cert/--tls-key (HTTPS over http/1.1 and h2 with a self-signed
// certificate made here by the openssl CLI), --metrics-addr (exact counts
// after a known sequence of requests, a trap included), --log-format json
// (one parseable line per request) and the instance-id prefix on guest
// stdout.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as h2connect, createSecureServer } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildService, weirBin } from './helpers/http-serve-fixtures.ts';
import { buildJsProxy } from './helpers/http-fixtures.ts';
import { Component, createRequestListener, ServeMetrics, ServeObservation, JsonAccessLog } from '../src/index.ts';

const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
const NO_OPENSSL = 'the openssl CLI is not installed (node:crypto cannot make an X.509 certificate)';

let wasm: string | undefined;
let tmp: string;
let cert = '';
let key = '';
let otherKey = '';

before(async () => {
  assert.ok(existsSync(weirBin), 'run npm run build first');
  wasm = await buildService();
  tmp = mkdtempSync(join(tmpdir(), 'weir-tls-'));
  if (hasOpenssl) {
    cert = join(tmp, 'cert.pem');
    key = join(tmp, 'key.pem');
    otherKey = join(tmp, 'other.pem');
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'pipe', timeout: 20_000 });
    assert.equal(r.status, 0, String(r.stderr));
    const k = spawnSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', otherKey], { stdio: 'pipe', timeout: 20_000 });
    assert.equal(k.status, 0, String(k.stderr));
  }
});
after(() => { rmSync(tmp, { recursive: true, force: true }); });

interface Weir {
  child: ChildProcess;
  lines: string[];
  stdout: () => string;
  /** Resolves with the first stderr line matching `re` (bounded). */
  line(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<number | null>;
}

function startWeir(args: string[]): Weir {
  const child = spawn(process.execPath, [weirBin, 'serve', '--addr', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  child.stderr!.setEncoding('utf8');
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => { out += d; });
  child.stderr!.on('data', (d: string) => {
    err += d;
    const parts = err.split('\n');
    err = parts.pop()!;
    lines.push(...parts);
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => { for (const w of [...waiters]) w(); r(code); }));
  return {
    child,
    lines,
    stdout: () => out,
    line(re, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const l = lines.find((x) => re.test(x));
          if (l !== undefined) { done(); resolve(l); } else if (child.exitCode !== null) { done(); reject(new Error(`weir exited ${child.exitCode}: ${lines.join('\n')}`)); }
        };
        const t = setTimeout(() => { done(); reject(new Error(`no line ${re}: ${lines.join('\n')}`)); }, timeoutMs);
        const done = () => { clearTimeout(t); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
    stop() {
      if (child.exitCode === null) child.kill('SIGINT');
      const k = setTimeout(() => child.kill('SIGKILL'), 10_000);
      return exited.finally(() => clearTimeout(k));
    },
  };
}

function fetchText(url: string, opts: { ca?: Buffer } = {}): Promise<{ status: number; body: string; version: string }> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, { ca: opts.ca, timeout: 10_000, agent: false } as never, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body, version: res.httpVersion }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

const base = (line: string) => /(https?:\/\/\S+?)\/?$/.exec(line)![1];

test('--tls-cert/--tls-key: HTTPS over http/1.1 and h2 (ALPN), scheme HTTPS, :authority, trailers, concurrent streams', { timeout: 90_000 }, async (t) => {
  if (!wasm) return t.skip('componentize-qjs or the WASI 0.3 WIT is not available');
  if (!hasOpenssl) return t.skip(NO_OPENSSL);
  const w = startWeir(['--tls-cert', cert, '--tls-key', key, '--max-instance-concurrent-reuse-count', '1', '--idle-instance-timeout', '60s', wasm]);
  try {
    const first = await w.line(/./);
    assert.match(first, /^Serving HTTPS on https:\/\/127\.0\.0\.1:\d+\/$/);
    const url = base(first);
    const ca = readFileSync(cert);
    // HTTP/1.1 over TLS (no ALPN h2 offered by node:https).
    const r1 = await fetchText(`${url}/info?x=1`, { ca });
    assert.equal(r1.status, 200);
    assert.equal(r1.version, '1.1');
    const info1 = JSON.parse(r1.body);
    assert.equal(info1.scheme, 'HTTPS');
    assert.equal(info1.path, '/info?x=1');

    // HTTP/2.
    const session = h2connect(url, { ca });
    session.on('error', () => {});
    try {
      const h2 = (path: string, headers: Record<string, string> = {}) => new Promise<{ status: number; body: string; trailers: Record<string, unknown> | null }>((resolve, reject) => {
        const s = session.request({ ':path': path, ...headers });
        let status = 0;
        let body = '';
        let trailers: Record<string, unknown> | null = null;
        const timer = setTimeout(() => { s.close(); reject(new Error(`h2 ${path}: timeout`)); }, 10_000);
        s.setEncoding('utf8');
        s.on('response', (h) => { status = Number(h[':status']); });
        s.on('trailers', (tr) => { trailers = { ...tr }; });
        s.on('data', (d: string) => { body += d; });
        s.on('end', () => { clearTimeout(timer); resolve({ status, body, trailers }); });
        s.on('error', (e) => { clearTimeout(timer); reject(e); });
        s.end();
      });
      const i2 = await h2('/info?y=2', { 'x-custom': 'v1' });
      assert.equal(i2.status, 200);
      const info2 = JSON.parse(i2.body);
      assert.deepEqual(info2.method, { tag: 'get' });
      assert.equal(info2.scheme, 'HTTPS');
      assert.equal(info2.path, '/info?y=2');
      assert.equal(info2.authority, new URL(url).host);
      assert.ok(info2.headers.split(';').includes('x-custom=v1'), info2.headers);
      assert.ok(!/(^|;):/.test(info2.headers), `pseudo-headers reached the guest: ${info2.headers}`);

      const tr = await h2('/trailers');
      assert.equal(tr.body, 'body');
      assert.deepEqual(tr.trailers && { c: tr.trailers['x-checksum'], p: tr.trailers['x-parts'] }, { c: 'abc', p: '1' });

      // Four streams at once on one connection, one request per instance at a
      // time: they can only all be in flight together on four instances.
      const sleeps = await Promise.all([0, 1, 2, 3].map(() => h2('/sleep?ms=300')));
      const ids = new Set(sleeps.map((s) => { assert.equal(s.status, 200); return s.body; }));
      assert.equal(ids.size, 4, `streams were not handled concurrently: ${[...ids].join(',')}`);
    } finally {
      session.close();
    }
  } finally {
    assert.equal(await w.stop(), 0);
  }
});

test('--tls-cert/--tls-key: unreadable, non-PEM or mismatched files fail before binding; one without the other is a usage error', { timeout: 60_000 }, async (t) => {
  if (!wasm) return t.skip('componentize-qjs or the WASI 0.3 WIT is not available');
  if (!hasOpenssl) return t.skip(NO_OPENSSL);
  const notPem = join(tmp, 'not.pem');
  writeFileSync(notPem, 'hello\n');
  const cases: [string[], RegExp, number][] = [
    [['--tls-cert', join(tmp, 'missing.pem'), '--tls-key', key], /--tls-cert .*missing\.pem: cannot read: ENOENT/, 1],
    [['--tls-cert', cert, '--tls-key', notPem], /--tls-key .*not\.pem: not a PEM private key/, 1],
    [['--tls-cert', cert, '--tls-key', otherKey], /the private key does not match the certificate/, 1],
    [['--tls-cert', cert], /--tls-cert needs --tls-key/, 2],
  ];
  for (const [args, re, code] of cases) {
    const r = spawnSync(process.execPath, [weirBin, 'serve', '--addr', '127.0.0.1:0', ...args, wasm], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /Serving/);
  }
});

function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `no ${name} in\n${text}`);
  return Number(line.slice(name.length + 1));
}

test('--metrics-addr: Prometheus text counts a known sequence of requests (a trap and a -W timeout included)', { timeout: 90_000 }, async (t) => {
  if (!wasm) return t.skip('componentize-qjs or the WASI 0.3 WIT is not available');
  const w = startWeir(['--workers', '1', '--metrics-addr', '127.0.0.1:0', '--idle-instance-timeout', '60s', '-W', 'timeout=300ms', wasm]);
  try {
    const url = base(await w.line(/^Serving HTTP on/));
    const metrics = base(await w.line(/^Metrics on /)).replace(/\/metrics$/, '');
    assert.equal((await fetchText(`${url}/`)).status, 200);
    assert.equal((await fetchText(`${url}/`)).status, 200);
    assert.equal((await fetchText(`${url}/status?code=404`)).status, 404);
    assert.equal((await fetchText(`${url}/trap`)).status, 500);
    assert.equal((await fetchText(`${url}/`)).status, 200);
    const m = await fetchText(`${metrics}/metrics`);
    assert.equal(m.status, 200);
    const text = m.body;
    assert.equal(metricValue(text, 'weir_http_requests_total{code="200"}'), 3);
    assert.equal(metricValue(text, 'weir_http_requests_total{code="404"}'), 1);
    assert.equal(metricValue(text, 'weir_http_requests_total{code="500"}'), 1);
    assert.equal(metricValue(text, 'weir_http_requests_in_flight'), 0);
    assert.equal(metricValue(text, 'weir_instance_traps_total'), 1);
    // The warm instance trapped; the last request got a new one.
    assert.equal(metricValue(text, 'weir_instances_created_total'), 2);
    assert.equal(metricValue(text, 'weir_instances'), 1);
    assert.equal(metricValue(text, 'weir_workers'), 1);
    assert.equal(metricValue(text, 'weir_request_timeouts_total'), 0);
    assert.equal(metricValue(text, 'weir_http_request_duration_seconds_count'), 5);
    assert.equal(metricValue(text, 'weir_http_request_duration_seconds_bucket{le="+Inf"}'), 5);
    assert.equal(metricValue(text, 'weir_instantiation_duration_seconds_count'), 2);
    assert.ok(metricValue(text, 'weir_instantiation_duration_seconds_sum') > 0);
    assert.match(text, /^# TYPE weir_http_request_duration_seconds histogram$/m);
    // Buckets are cumulative.
    const buckets = [...text.matchAll(/^weir_http_request_duration_seconds_bucket\{le="[^"]+"\} (\d+)$/gm)].map((x) => Number(x[1]));
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i] >= buckets[i - 1]);
    assert.equal((await fetchText(`${metrics}/other`)).status, 404);
    // -W timeout: the request that outlives it is answered 504 and counted as a timeout.
    assert.equal((await fetchText(`${url}/sleep?ms=5000`)).status, 504);
    const after = (await fetchText(`${metrics}/metrics`)).body;
    assert.equal(metricValue(after, 'weir_request_timeouts_total'), 1);
    assert.equal(metricValue(after, 'weir_http_requests_total{code="504"}'), 1);
    assert.equal(metricValue(after, 'weir_http_requests_total{code="200"}'), 3);
    assert.equal(metricValue(after, 'weir_http_request_duration_seconds_count'), 6);
  } finally {
    assert.equal(await w.stop(), 0);
  }
});

test('--metrics-addr on a port in use: exit 1 before serving', { timeout: 60_000 }, async (t) => {
  if (!wasm) return t.skip('componentize-qjs or the WASI 0.3 WIT is not available');
  const w = startWeir(['--metrics-addr', '127.0.0.1:0', wasm]);
  try {
    const taken = new URL(base(await w.line(/^Metrics on /))).port;
    const r = spawnSync(process.execPath, [weirBin, 'serve', '--addr', '127.0.0.1:0', '--metrics-addr', `127.0.0.1:${taken}`, wasm], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /cannot listen on --metrics-addr 127\.0\.0\.1:\d+: EADDRINUSE/);
    assert.doesNotMatch(r.stderr, /Serving/);
  } finally {
    await w.stop();
  }
});

test('--log-format json: one parseable access-log line per request; guest stdout lines carry their instance id', { timeout: 300_000 }, async () => {
  // A p2 proxy (componentize-js) whose console.log reaches wasi:cli/stdout.
  const proxy = await buildJsProxy('p2-logging-proxy', String.raw`
addEventListener('fetch', (event) => event.respondWith(handle(event.request)));
async function handle(req) {
  const url = new URL(req.url);
  console.log('guest saw ' + url.pathname);
  return new Response('ok ' + url.pathname, { status: url.pathname === '/missing' ? 404 : 200 });
}
`);
  const w = startWeir(['--log-format', 'json', proxy]);
  try {
    const url = base(await w.line(/^Serving HTTP on/));
    assert.equal((await fetchText(`${url}/a?q=1`)).status, 200);
    assert.equal((await fetchText(`${url}/missing`)).status, 404);
    await w.line(/"request_id":2/);
  } finally {
    assert.equal(await w.stop(), 0);
  }
  const json = w.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  assert.equal(json.length, 2, w.lines.join('\n'));
  const [a, b] = json;
  assert.equal(a.request_id, 1);
  assert.equal(b.request_id, 2);
  assert.equal(a.method, 'GET');
  assert.equal(a.path, '/a?q=1');
  assert.equal(a.status, 200);
  assert.equal(b.path, '/missing');
  assert.equal(b.status, 404);
  for (const r of json) {
    assert.equal(typeof r.instance_id, 'number');
    assert.equal(typeof r.duration_ms, 'number');
    assert.ok(r.duration_ms >= 0);
    assert.equal(r.protocol, 'HTTP/1.1');
  }
  // WASI 0.2 proxies get one instance per request: each line names its own.
  assert.notEqual(a.instance_id, b.instance_id);
  const out = w.stdout().split('\n').filter(Boolean);
  assert.ok(out.includes(`stdout [${a.instance_id}] :: guest saw /a`), w.stdout());
  assert.ok(out.includes(`stdout [${b.instance_id}] :: guest saw /missing`), w.stdout());
});

test('--log-format: only text or json', () => {
  const r = spawnSync(process.execPath, [weirBin, 'serve', '--log-format', 'xml', 'x.wasm'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--log-format "xml": expected text or json/);
});

test('API: createRequestListener under node:http2 createSecureServer (h2, scheme HTTPS) with ServeObservation, ServeMetrics and JsonAccessLog', { timeout: 60_000 }, async (t) => {
  if (!wasm) return t.skip('componentize-qjs or the WASI 0.3 WIT is not available');
  if (!hasOpenssl) return t.skip(NO_OPENSSL);
  const metrics = new ServeMetrics();
  const log: string[] = [];
  const observation = new ServeObservation([metrics, new JsonAccessLog((l) => log.push(l))], metrics.instanceEvents);
  const listener = createRequestListener(Component.compile(readFileSync(wasm)), { observer: observation.observer, log: () => {} });
  metrics.attach(listener.machine);
  const server = createSecureServer({ cert: readFileSync(cert), key: readFileSync(key), allowHTTP1: true }, observation.listener(listener as never));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const session = h2connect(`https://127.0.0.1:${port}`, { ca: readFileSync(cert) });
  session.on('error', () => {});
  try {
    const get = (path: string) => new Promise<{ status: number; body: string }>((resolve, reject) => {
      const s = session.request({ ':path': path });
      let status = 0;
      let body = '';
      const timer = setTimeout(() => { s.close(); reject(new Error('timeout')); }, 10_000);
      s.setEncoding('utf8');
      s.on('response', (h) => { status = Number(h[':status']); });
      s.on('data', (d: string) => { body += d; });
      s.on('end', () => { clearTimeout(timer); resolve({ status, body }); });
      s.on('error', (e) => { clearTimeout(timer); reject(e); });
      s.end();
    });
    const info = await get('/info');
    assert.equal(info.status, 200);
    assert.equal(JSON.parse(info.body).scheme, 'HTTPS');
    assert.equal((await get('/error')).status, 500);
    const text = metrics.render();
    assert.equal(metricValue(text, 'weir_http_requests_total{code="200"}'), 1);
    assert.equal(metricValue(text, 'weir_http_requests_total{code="500"}'), 1);
    assert.equal(metricValue(text, 'weir_instance_traps_total'), 0);
    assert.equal(log.length, 2);
    const rec = JSON.parse(log[0]);
    assert.equal(rec.protocol, 'HTTP/2.0');
    assert.equal(rec.path, '/info');
    assert.equal(rec.instance_id, 0);
  } finally {
    session.close();
    server.close();
    await listener.close();
  }
});

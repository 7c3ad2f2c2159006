// wasi:sockets@0.3 through the built `weir` command: real programs (a
// componentize-qjs guest) serving and dialling TCP and UDP on loopback, name
// lookup, default deny with zero OS sockets, the CLI grammar of the grants,
// and backpressure (a guest that does not read is not read for).

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { repoRoot } from './helpers/fixtures.ts';
import { buildSocketsCmd } from './helpers/wasi-sockets-fixtures.ts';

const node = process.execPath;
const main = join(repoRoot, 'dist', 'cli', 'main.js');
const GRANT = ['-S', 'inherit-network', '-S', 'allow-ip-name-lookup'];
let wasm: string | undefined;

before(async () => { wasm = await buildSocketsCmd(); });

/** A running `weir run` whose stdout lines can be awaited. */
class Weir {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly lines: string[] = [];
  stderr = '';
  private waiters: (() => void)[] = [];
  readonly exited: Promise<number | null>;
  constructor(args: string[]) {
    this.proc = spawn(node, [main, 'run', ...args], { stdio: 'pipe' });
    let buf = '';
    this.proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) { this.lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
      for (const w of this.waiters.splice(0)) w();
    });
    this.proc.stderr.setEncoding('utf8').on('data', (d: string) => { this.stderr += d; });
    this.exited = new Promise((r) => this.proc.on('exit', (code) => r(code)));
  }
  async line(re: RegExp, ms = 15000): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      for (const l of this.lines) { const m = re.exec(l); if (m) return m; }
      if (Date.now() > deadline) throw new Error(`timeout waiting for ${re}; stdout: ${JSON.stringify(this.lines)} stderr: ${this.stderr}`);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 100); });
    }
  }
  kill(): void { if (this.proc.exitCode === null) this.proc.kill(); }
}

function runWeir(args: string[], input = ''): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(node, [main, 'run', ...args], { input, encoding: 'utf8', timeout: 30000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The process's open sockets (fd links named socket:[…]), not counting stdio. */
function socketFds(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    if (Number(fd) <= 2) continue;
    try { if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++; } catch { /* closed meanwhile */ }
  }
  return n;
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

test('TCP echo server in the guest, clients in Node and in a second guest (half-close both ways)', { timeout: 60000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  const srv = new Weir([...GRANT, wasm, 'tcp-echo-server', '127.0.0.1', '0', '2']);
  try {
    const port = Number((await srv.line(/^listening 127\.0\.0\.1:(\d+)$/))[1]);
    // Node client: FIN after the request; the guest echoes and then FINs.
    const got = await within(new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => { s.end('ping over tcp'); });
      let b = '';
      s.setEncoding('utf8').on('data', (d) => { b += d; }).on('end', () => resolve(b)).on('error', reject);
    }), 15000, 'node client');
    assert.equal(got, 'ping over tcp');
    // Guest client: connect, send, drop the send stream (FIN), read to EOF.
    const r = runWeir([...GRANT, wasm, 'tcp-client', '127.0.0.1', String(port), 'from a guest']);
    assert.equal(r.stdout, 'reply from a guest\n', r.stderr);
    await srv.line(/^served 2$/);
    assert.equal(await within(srv.exited, 10000, 'server exit'), 0);
  } finally { srv.kill(); }
});

test('TCP client in the guest against a Node server over IPv6 loopback', { timeout: 30000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  const server = createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d) => chunks.push(d)).on('end', () => { s.end(Buffer.concat(chunks).toString().toUpperCase()); });
  });
  await new Promise<void>((r) => server.listen(0, '::1', r));
  try {
    const port = (server.address() as { port: number }).port;
    // Spawned asynchronously: the server runs in this process's event loop.
    const c = new Weir([...GRANT, wasm, 'tcp-client', '::1', String(port), 'shout']);
    assert.equal(await within(c.exited, 20000, 'client exit'), 0, c.stderr);
    assert.deepEqual(c.lines, ['reply SHOUT']);
  } finally { server.close(); }
});

test('UDP: the guest echoes datagrams; a guest client sends with an implicit bind and gets the reply', { timeout: 30000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  const srv = new Weir([...GRANT, wasm, 'udp-echo', '127.0.0.1', '0', '2']);
  try {
    const port = Number((await srv.line(/^listening 127\.0\.0\.1:(\d+)$/))[1]);
    const sock = createSocket('udp4');
    const reply = await within(new Promise<string>((resolve) => {
      sock.on('message', (m) => resolve(m.toString()));
      sock.send('datagram one', port, '127.0.0.1');
    }), 10000, 'udp reply');
    sock.close();
    assert.equal(reply, 'datagram one');
    const r = runWeir([...GRANT, wasm, 'udp-client', '127.0.0.1', String(port), 'two']);
    assert.equal(r.stdout, `reply two from 127.0.0.1:${port}\n`, r.stderr);
    assert.equal(await within(srv.exited, 10000, 'udp server exit'), 0);
  } finally { srv.kill(); }
});

test('name lookup: IP literals, numeric aliases and localhost; bad names are invalid-argument', { timeout: 60000 }, (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  const lookup = (name: string): string => {
    const r = runWeir(['-S', 'allow-ip-name-lookup', wasm!, 'lookup', name]);
    assert.equal(r.status, 0, `lookup ${JSON.stringify(name)}: ${r.stderr}`);
    return r.stdout;
  };
  assert.match(lookup('localhost'), /^ok (127\.0\.0\.1|0:0:0:0:0:0:0:1)/);
  assert.equal(lookup('2130706433'), 'ok 127.0.0.1\n');
  assert.equal(lookup('[::ffff:10.1.2.3]'), 'ok 10.1.2.3\n');
  for (const bad of ['', ' ', 'a.b<&>', '127.0.0.1:80', '[::]:80', 'http://example.com/']) {
    assert.equal(lookup(bad), 'err:invalid-argument\n', bad);
  }
  // The OS resolver answers NXDOMAIN for .invalid (a resolver that cannot be reached would say temporary-resolver-failure).
  assert.match(lookup('no-such-name.invalid'), /^err:(name-unresolvable|temporary-resolver-failure)\n$/);
});

test('a hostname grant (--allow-net connect=localhost:PORT) allows what the guest\'s lookup of localhost returned, nothing else', { timeout: 30000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  let connections = 0;
  const server = createServer((s) => { connections++; s.destroy(); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as { port: number }).port;
    const grant = ['--allow-net', `connect=localhost:${port}`];
    const run = async (args: string[]) => { const w = new Weir([...grant, wasm!, ...args]); await within(w.exited, 20000, args.join(' ')); return w.lines; };
    // Without Weir's lookup, the address is not granted.
    assert.deepEqual(await run(['connect', '127.0.0.1', String(port)]), ['err:access-denied']);
    // The guest may resolve that one name (no allow-ip-name-lookup) and connect to its answers.
    const out = await run(['lookup-connect', 'localhost', String(port)]);
    assert.ok(out.includes('127.0.0.1 ok'), JSON.stringify(out));
    for (const l of out) assert.match(l, / (ok|err:connection-refused)$/); // ::1 may answer too (nothing listens there)
    assert.equal(connections, 1);
    // Another name is not looked up; another port is not granted.
    assert.deepEqual(await run(['lookup', 'localhost.localdomain']), ['err:access-denied']);
    assert.deepEqual(await run(['lookup-connect', 'localhost', String(port === 65535 ? 1 : port + 1)]).then((l) => l.filter((x) => x.startsWith('127.'))), ['127.0.0.1 err:access-denied']);
  } finally { server.close(); }
});

test('default deny: every operation is access-denied and the process opens no socket', { timeout: 60000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  // Creating sockets and setting options needs no grant.
  assert.equal(runWeir([wasm, 'options']).stdout, 'true 42000000000 42 65536 7\n');
  const denied = new Weir([wasm, 'deny-all']);
  const granted = new Weir([...GRANT, wasm, 'accept-hold', '127.0.0.1', '0']);
  try {
    await denied.line(/^waiting$/);
    assert.deepEqual(denied.lines.slice(0, 7), new Array(7).fill('err:access-denied'));
    const deniedSockets = socketFds(denied.proc.pid!);
    // The same counter sees the sockets of a granted run (so zero above means zero).
    await granted.line(/^listening/);
    assert.equal(deniedSockets, 0);
    assert.ok(socketFds(granted.proc.pid!) >= 1);
    denied.proc.stdin.end();
    assert.equal(await within(denied.exited, 10000, 'exit'), 0);
  } finally { denied.kill(); granted.kill(); }
});

test('backpressure: a guest that does not read is not read for (Node holds at most a small read-ahead)', { timeout: 60000 }, async (t) => {
  if (!wasm) return t.skip('WASI 0.3 WIT not available');
  const srv = new Weir([...GRANT, wasm, 'accept-hold', '127.0.0.1', '0']);
  let client: Socket | undefined;
  try {
    const port = Number((await srv.line(/^listening 127\.0\.0\.1:(\d+)$/))[1]);
    client = connect(port, '127.0.0.1');
    await srv.line(/^accepted$/);
    const chunk = Buffer.alloc(1 << 20, 7);
    let queued = 0;
    // Offer 64 MiB; stop queueing when Node's own buffer says so.
    for (let i = 0; i < 64 && client.write(chunk); i++) queued += chunk.length;
    await new Promise((r) => setTimeout(r, 1500));
    const delivered = client.bytesWritten - client.writableLength;
    // Kernel buffers (both sides of loopback) absorb a few MiB; a reader that
    // ignored backpressure would have taken everything offered.
    assert.ok(delivered < 24 << 20, `the host read ${delivered} bytes ahead of a guest that reads nothing`);
    client.end();
    srv.proc.stdin.end();
    const read = Number((await srv.line(/^read (\d+)$/, 30000))[1]);
    assert.ok(read >= delivered && read <= client.bytesWritten, `guest read ${read}`);
  } finally { client?.destroy(); srv.kill(); }
});

test('CLI: --allow-net rules are validated at parse time, unknown -S names refused, help documents the grammar', () => {
  for (const bad of ['connect', 'listen=1.2.3.4', 'connect=1.2.3.4:70000', 'bind=example.com:80', 'connect=::1:80', 'bind=10.0.0.0/33', 'connect=[::1', 'udp=1.2.3.4:9-5']) {
    const r = spawnSync(node, [main, 'run', '--allow-net', bad, 'x.wasm'], { encoding: 'utf8' });
    assert.equal(r.status, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, /--allow-net/);
  }
  for (const s of ['tcp', 'udp', 'inherit-network=maybe']) {
    const r = spawnSync(node, [main, 'run', '-S', s, 'x.wasm'], { encoding: 'utf8' });
    assert.equal(r.status, 2, s);
  }
  const help = spawnSync(node, [main, 'run', '--help'], { encoding: 'utf8' }).stdout;
  assert.match(help, /--allow-net KIND=HOST\[:PORTS\]/);
  assert.match(help, /inherit-network/);
  assert.match(help, /allow-ip-name-lookup/);
});

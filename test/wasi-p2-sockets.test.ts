// wasi:sockets@0.2 (the 0.2 face over the shared sockets core) with a real
// program: a componentize-qjs guest written against the 0.2 socket imports
// (start-*/finish-*, subscribe + block, accept, datagram streams,
// resolve-address-stream). A TCP echo server run by the built `weir run -S
// inherit-network` answers a Node client on loopback; without a grant it gets
// access-denied and opens no OS socket; the start/finish state rules,
// would-block, not-in-progress, concurrency-conflict, shutdown, UDP and
// lookup are checked through the package API.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { constants, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildQjsComponent, repoRoot } from './helpers/fixtures.ts';
import { commandWit, runWithApi } from './helpers/wasi-fixtures.ts';

const SOCK_JS = String.raw`
import env from 'wasi:cli/environment@0.2.12';
import stdin from 'wasi:cli/stdin@0.2.12';
import stdout from 'wasi:cli/stdout@0.2.12';
import inet from 'wasi:sockets/instance-network@0.2.12';
import tcpc from 'wasi:sockets/tcp-create-socket@0.2.12';
import udpc from 'wasi:sockets/udp-create-socket@0.2.12';
import lookup from 'wasi:sockets/ip-name-lookup@0.2.12';

function ascii(s) { const b = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i); return b; }
function text(b) { let s = ''; for (const x of b) s += String.fromCharCode(x); return s; }
let out = null;
function print(s) { (out ??= stdout.getStdout()).blockingWriteAndFlush(ascii(s + '\n')); }
function code(e) {
  if (e && e.payload !== undefined) e = e.payload;
  if (typeof e === 'string') return e;
  if (e && e.tag) return e.tag;
  return 'exception:' + String(e && e.message !== undefined ? e.message : e);
}
function attempt(f) { try { const v = f(); return 'ok' + (v === undefined ? '' : ':' + JSON.stringify(v)); } catch (e) { return 'err:' + code(e); } }
const LOOPBACK = (port) => ({ tag: 'ipv4', val: { port, address: [127, 0, 0, 1] } });
function addr(a) { return a.tag === 'ipv6' ? '[' + a.val.address.map((x) => x.toString(16)).join(':') + ']:' + a.val.port : a.val.address.join('.') + ':' + a.val.port; }

const LOOPBACK6 = (port) => ({ tag: 'ipv6', val: { port, flowInfo: 0, address: [0, 0, 0, 0, 0, 0, 0, 1], scopeId: 0 } });
function listen(net, v6) {
  const s = tcpc.createTcpSocket(v6 ? 'ipv6' : 'ipv4');
  s.startBind(net, v6 ? LOOPBACK6(0) : LOOPBACK(0));
  s.finishBind();
  s.startListen();
  s.finishListen();
  return s;
}
function accept(s) {
  const p = s.subscribe();
  for (;;) {
    try { return s.accept(); } catch (e) { if (code(e) !== 'would-block') throw e; p.block(); }
  }
}
function connect(net, c, a) {
  c.startConnect(net, a);
  const p = c.subscribe();
  for (;;) {
    try { return c.finishConnect(); } catch (e) { if (code(e) !== 'would-block') throw e; p.block(); }
  }
}
function readAll(input) {
  let s = '';
  for (;;) { try { s += text(input.blockingRead(65536)); } catch (e) { return s; } }
}

export const run = {
  run() {
    const args = env.getArguments();
    const net = inet.instanceNetwork();
    switch (args[1]) {
      case 'echo-server': {
        let s;
        try { s = listen(net, args[3] === 'v6'); } catch (e) { print('listen failed: ' + code(e)); throw 'denied'; }
        print('listening ' + addr(s.localAddress()));
        const n = Number(args[2] || 1);
        for (let i = 0; i < n; i++) {
          const [c, input, output] = accept(s);
          let bytes = 0;
          for (;;) {
            let b;
            try { b = input.blockingRead(65536); } catch (e) { break; }
            bytes += b.length;
            // write in 4096-byte pieces: blocking-write-and-flush's limit in the spec
            for (let off = 0; off < b.length; off += 4096) output.blockingWriteAndFlush(b.subarray(off, off + 4096));
          }
          c.shutdown('send');
          output[Symbol.dispose](); input[Symbol.dispose](); c[Symbol.dispose]();
          print('served ' + bytes);
        }
        return;
      }
      case 'states': {
        const log = { push: print };
        const s = tcpc.createTcpSocket('ipv4');
        log.push('finish-bind ' + attempt(() => s.finishBind()));
        log.push('finish-connect ' + attempt(() => s.finishConnect()));
        log.push('finish-listen ' + attempt(() => s.finishListen()));
        log.push('listen-unbound ' + attempt(() => s.startListen()));
        log.push('bind-v6-addr ' + attempt(() => s.startBind(net, { tag: 'ipv6', val: { port: 0, flowInfo: 0, address: [0, 0, 0, 0, 0, 0, 0, 1], scopeId: 0 } })));
        log.push('start-bind ' + attempt(() => s.startBind(net, LOOPBACK(0))));
        log.push('start-bind-again ' + attempt(() => s.startBind(net, LOOPBACK(0))));
        log.push('finish-bind ' + attempt(() => s.finishBind()));
        log.push('rebind ' + attempt(() => s.startBind(net, LOOPBACK(0))));
        log.push('start-listen ' + attempt(() => s.startListen()));
        log.push('finish-listen ' + attempt(() => s.finishListen()));
        log.push('is-listening ' + s.isListening());
        log.push('accept-none ' + attempt(() => s.accept()));
        log.push('shutdown-listener ' + attempt(() => s.shutdown('both')));
        const port = s.localAddress().val.port;
        const c = tcpc.createTcpSocket('ipv4');
        log.push('remote-unconnected ' + attempt(() => c.remoteAddress()));
        log.push('connect-unspecified ' + attempt(() => c.startConnect(net, { tag: 'ipv4', val: { port, address: [0, 0, 0, 0] } })));
        log.push('start-connect ' + attempt(() => c.startConnect(net, LOOPBACK(port))));
        log.push('start-connect-again ' + attempt(() => c.startConnect(net, LOOPBACK(port))));
        log.push('finish-connect-early ' + attempt(() => c.finishConnect()));
        const p = c.subscribe();
        p.block();
        let streams;
        log.push('finish-connect ' + attempt(() => { streams = c.finishConnect(); }));
        log.push('remote ' + (addr(c.remoteAddress()) === '127.0.0.1:' + port));
        const [sc, sin, sout] = accept(s);
        log.push('accepted-remote ' + (addr(sc.remoteAddress()) === addr(c.localAddress())));
        const [cin, cout] = streams;
        log.push('read-empty ' + cin.read(10).length);
        cout.blockingWriteAndFlush(ascii('ping'));
        log.push('shutdown-send ' + attempt(() => c.shutdown('send')));
        log.push('server-read ' + readAll(sin));
        sout.blockingWriteAndFlush(ascii('pong'));
        log.push('shutdown-both ' + attempt(() => sc.shutdown('both')));
        log.push('client-read ' + readAll(cin));
        log.push('write-after-shutdown ' + attempt(() => { cout.checkWrite(); cout.write(ascii('x')); }));
        // a port nobody listens on: bind one, then drop it
        const t = tcpc.createTcpSocket('ipv4');
        t.startBind(net, LOOPBACK(0)); t.finishBind();
        const closedPort = t.localAddress().val.port;
        t[Symbol.dispose]();
        const r = tcpc.createTcpSocket('ipv4');
        log.push('refused ' + attempt(() => connect(net, r, LOOPBACK(closedPort))));
        log.push('after-refused ' + attempt(() => r.startConnect(net, LOOPBACK(port))));
        log.push('keepalive ' + attempt(() => { c.setKeepAliveEnabled(true); c.setKeepAliveIdleTime(42 * 1e9); return [c.keepAliveEnabled(), String(c.keepAliveIdleTime())]; }));
        log.push('keepalive-zero ' + attempt(() => c.setKeepAliveIdleTime(0)));
        return;
      }
      case 'udp': {
        const log = { push: print };
        const a = udpc.createUdpSocket('ipv4');
        const b = udpc.createUdpSocket('ipv4');
        log.push('stream-unbound ' + attempt(() => a.stream(undefined)));
        log.push('finish-bind-none ' + attempt(() => a.finishBind()));
        a.startBind(net, LOOPBACK(0)); a.finishBind();
        b.startBind(net, LOOPBACK(0)); b.finishBind();
        const [ain, aout] = a.stream(undefined);
        const [bin] = b.stream(undefined);
        log.push('receive-empty ' + bin.receive(10).length);
        log.push('check-send ' + (Number(aout.checkSend()) > 0));
        log.push('send-no-addr ' + attempt(() => aout.send([{ data: ascii('x'), remoteAddress: undefined }])));
        log.push('too-large ' + attempt(() => aout.send([{ data: new Uint8Array(65536), remoteAddress: b.localAddress() }])));
        log.push('send ' + attempt(() => String(aout.send([{ data: ascii('one'), remoteAddress: b.localAddress() }, { data: ascii('two'), remoteAddress: b.localAddress() }]))));
        const p = bin.subscribe();
        const got = [];
        while (got.length < 2) { p.block(); for (const d of bin.receive(10)) got.push(text(d.data) + '@' + (addr(d.remoteAddress) === addr(a.localAddress()))); }
        log.push('received ' + got.join(','));
        const [, cout] = a.stream(b.localAddress());
        log.push('connected-remote ' + (addr(a.remoteAddress()) === addr(b.localAddress())));
        log.push('connected-send ' + attempt(() => String(cout.send([{ data: ascii('three'), remoteAddress: undefined }]))));
        p.block();
        log.push('received ' + bin.receive(10).map((d) => text(d.data)).join(','));
        void ain;
        return;
      }
      case 'lookup': {
        const log = [];
        for (const name of args.slice(2)) {
          try {
            const st = lookup.resolveAddresses(net, name);
            const p = st.subscribe();
            const addrs = [];
            for (;;) {
              let a;
              try { a = st.resolveNextAddress(); } catch (e) { if (code(e) === 'would-block') { p.block(); continue; } throw e; }
              if (a == null) break;
              addrs.push(a.tag + ':' + Array.from(a.val).join('.'));
            }
            log.push(name + ' ok ' + addrs.join(','));
          } catch (e) { log.push(name + ' err ' + code(e)); }
        }
        print(log.join('\n'));
        return;
      }
      case 'reset-client': {
        // connect to a server that resets the connection; report the stream error
        const c = tcpc.createTcpSocket('ipv4');
        const [input] = connect(net, c, LOOPBACK(Number(args[2])));
        try {
          for (;;) input.blockingRead(100);
        } catch (e) {
          const err = e && e.payload !== undefined ? e.payload : e;
          // (network-error-code is @unstable in 0.2: the error's debug string carries the code)
          print(err.tag + ' ' + (err.tag === 'last-operation-failed' ? err.val.toDebugString() : ''));
        }
        return;
      }
      case 'deny': {
        const s = tcpc.createTcpSocket('ipv4');
        const log = ['create ok'];
        log.push('bind ' + attempt(() => s.startBind(net, LOOPBACK(0))));
        const c = tcpc.createTcpSocket('ipv4');
        log.push('connect ' + attempt(() => connect(net, c, LOOPBACK(9))));
        const u = udpc.createUdpSocket('ipv4');
        log.push('udp-bind ' + attempt(() => u.startBind(net, LOOPBACK(0))));
        print(log.join('\n'));
        // hold the sockets until stdin ends, so the host can count its fds meanwhile
        readAll(stdin.getStdin());
        print('done');
        return;
      }
    }
  },
};
`;

const IMPORTS = [
  'cli/environment', 'cli/stdin', 'cli/stdout', 'io/streams', 'io/poll',
  'sockets/network', 'sockets/instance-network', 'sockets/tcp', 'sockets/tcp-create-socket',
  'sockets/udp', 'sockets/udp-create-socket', 'sockets/ip-name-lookup',
];

const node = process.execPath;
const mainJs = join(repoRoot, 'dist', 'cli', 'main.js');
let wasm = '';
before(async () => { wasm = await buildQjsComponent('wasi-p2-sockets', commandWit('socks', IMPORTS), 'socks', SOCK_JS); });

/** Sends `data` to host:port, half-closes, and resolves with everything the server sent back before closing. */
function echoClient(port: number, data: Buffer, host = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const c = connect({ host, port, allowHalfOpen: true }, () => { c.end(data); });
    c.on('data', (b) => chunks.push(b));
    c.on('end', () => { c.end(); resolve(Buffer.concat(chunks)); });
    c.on('error', reject);
    c.setTimeout(15000, () => { c.destroy(new Error('echo client timed out')); });
  });
}

test('weir run -S inherit-network: a 0.2 TCP echo server answers Node clients on loopback', { timeout: 60_000 }, async () => {
  const p = spawn(node, [mainJs, 'run', '-S', 'inherit-network', wasm, 'echo-server', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  p.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
  const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      p.stdout.setEncoding('utf8').on('data', (d) => {
        out += d;
        const m = /listening 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      p.on('exit', () => reject(new Error(`weir exited: ${out} ${err}`)));
    });
    assert.ok(port > 0);
    assert.equal((await echoClient(port, Buffer.from('hello over 0.2 sockets'))).toString(), 'hello over 0.2 sockets');
    // more than the socket buffers hold in one go: the guest's reads and writes wait on readiness
    const big = Buffer.alloc(3 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const back = await echoClient(port, big);
    assert.equal(back.length, big.length);
    assert.ok(back.equals(big), 'echoed bytes differ');
    assert.equal(await exited, 0, err);
    assert.match(out, /served 22\nserved 3145728\n$/);
  } finally {
    if (p.exitCode === null) p.kill();
  }
});

test('weir run without a grant: bind, connect and UDP bind are access-denied, exit 1', { timeout: 60_000 }, async () => {
  const p = spawn(node, [mainJs, 'run', wasm, 'echo-server', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
  const code = await new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  assert.equal(out, 'listen failed: access-denied\n');
  assert.equal(code, 1);
});

/** The sockets among this process's open fds. */
function socketFds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try { if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) n++; } catch { /* closed meanwhile */ }
  }
  return n;
}

test('no grant: the guest holds sockets that never became OS sockets (zero opened)', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weir-p2-sock-'));
  try {
    const fifo = join(dir, 'stdin');
    execFileSync('mkfifo', [fifo]);
    const readFd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, 'w');
    const before = socketFds();
    const run = runWithApi(wasm, ['deny'], { stdin: { fd: readFd } });
    // the guest has tried everything and now waits on stdin, holding its sockets
    await new Promise((r) => setTimeout(r, 300));
    const during = socketFds();
    writeSync(writer, 'x');
    closeSync(writer);
    const r = await run;
    assert.equal(r.stdout, 'create ok\nbind err:access-denied\nconnect err:access-denied\nudp-bind err:access-denied\ndone\n');
    assert.equal(during, before, 'an OS socket was opened without a grant');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tcp: start/finish pairs (not-in-progress, concurrency-conflict, would-block), accept, shutdown, refused', { timeout: 60_000 }, async () => {
  const r = await runWithApi(wasm, ['states'], { network: { inheritNetwork: true } });
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, [
    'finish-bind err:not-in-progress',
    'finish-connect err:not-in-progress',
    'finish-listen err:not-in-progress',
    'listen-unbound err:invalid-state',
    'bind-v6-addr err:invalid-argument',
    'start-bind ok',
    'start-bind-again err:concurrency-conflict',
    'finish-bind ok',
    'rebind err:invalid-state',
    'start-listen ok',
    'finish-listen ok',
    'is-listening true',
    'accept-none err:would-block',
    'shutdown-listener err:invalid-state',
    'remote-unconnected err:invalid-state',
    'connect-unspecified err:invalid-argument',
    'start-connect ok',
    'start-connect-again err:concurrency-conflict',
    'finish-connect-early err:would-block',
    'finish-connect ok',
    'remote true',
    'accepted-remote true',
    'read-empty 0',
    'shutdown-send ok',
    'server-read ping',
    'shutdown-both ok',
    'client-read pong',
    'write-after-shutdown err:closed',
    'refused err:connection-refused',
    'after-refused err:invalid-state',
    'keepalive ok:[true,"42000000000"]',
    'keepalive-zero err:invalid-argument',
    '',
  ].join('\n'));
});

test('udp: bind, datagram streams (check-send, send, receive), connected stream', { timeout: 60_000 }, async () => {
  const r = await runWithApi(wasm, ['udp'], { network: { inheritNetwork: true } });
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, [
    'stream-unbound err:invalid-state',
    'finish-bind-none err:not-in-progress',
    'receive-empty 0',
    'check-send true',
    'send-no-addr err:invalid-argument',
    'too-large err:datagram-too-large',
    'send ok:"2"',
    'received one@true,two@true',
    'connected-remote true',
    'connected-send ok:"1"',
    'received three',
    '',
  ].join('\n'));
});

test('ip-name-lookup: literals resolve with the grant; denied without; bad names are invalid-argument', { timeout: 60_000 }, async () => {
  const ok = await runWithApi(wasm, ['lookup', '127.0.0.1', '[::1]', 'a.b<&>'], { network: { allowIpNameLookup: true } });
  assert.equal(ok.stdout, '127.0.0.1 ok ipv4:127.0.0.1\n[::1] ok ipv6:0.0.0.0.0.0.0.1\na.b<&> err invalid-argument\n');
  const denied = await runWithApi(wasm, ['lookup', 'localhost'], {});
  assert.equal(denied.stdout, 'localhost err access-denied\n');
});

test('IPv6: the echo server on [::1] (through the API, with a rule granting only loopback binds)', { timeout: 60_000 }, async () => {
  const { Component } = await import('../src/index.ts');
  const { createWasi, runCommand } = await import('../src/wasi/index.ts');
  const { readFileSync } = await import('node:fs');
  let out = '';
  let gotPort: (p: number) => void;
  const portP = new Promise<number>((r) => { gotPort = r; });
  const wasi = createWasi({
    args: ['socks', 'echo-server', '1', 'v6'],
    network: { allow: ['bind=[::1]', 'accept=[::1]'] },
    stdout: (b) => { out += Buffer.from(b).toString(); const m = /listening \[0:0:0:0:0:0:0:1\]:(\d+)/.exec(out); if (m) gotPort(Number(m[1])); },
  });
  try {
    const run = runCommand(Component.compile(readFileSync(wasm)).instantiate(wasi.imports));
    const port = await Promise.race([portP, run.then(() => { throw new Error(`guest ended: ${out}`); })]);
    assert.equal((await echoClient(port, Buffer.from('six'), '::1')).toString(), 'six');
    assert.equal(await run, 0);
    assert.match(out, /served 3\n$/);
  } finally {
    wasi.close();
  }
});

test('a connection reset by the peer: blocking-read fails with last-operation-failed (connection-reset)', { timeout: 60_000 }, async () => {
  const { createServer } = await import('node:net');
  const server = createServer((sock) => { setTimeout(() => sock.resetAndDestroy(), 20); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as { port: number }).port;
    const r = await runWithApi(wasm, ['reset-client', String(port)], { network: { allow: [`connect=127.0.0.1:${port}`] } });
    assert.equal(r.stdout, 'last-operation-failed connection-reset\n');
  } finally {
    server.close();
  }
});

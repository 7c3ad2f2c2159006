// The sockets core's Node semantics, driven directly (the faces add only
// value conversion): bind without listen, address-in-use from another
// process, the state machine's invalid-state answers, half-close both ways,
// option round-trips and inheritance, the bounded UDP queue, and bad guest
// arguments that must give a spec error code rather than throw anything else.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { Network, SocketError, TcpSocket, UdpSocket, type IpSocketAddress } from '../src/wasi/core/sockets/index.ts';

const v4 = (a: string, port: number): IpSocketAddress => ({ tag: 'ipv4', val: { port, address: a.split('.').map(Number) } });
const v6lo = (port: number): IpSocketAddress => ({ tag: 'ipv6', val: { port, flowInfo: 0, address: [0, 0, 0, 0, 0, 0, 0, 1], scopeId: 0 } });
const code = (f: () => unknown): string => {
  try { f(); return 'ok'; } catch (e) { assert.ok(e instanceof SocketError, `not a SocketError: ${String(e)}`); return e.code; }
};
const acode = async (f: () => Promise<unknown>): Promise<string> => {
  try { await f(); return 'ok'; } catch (e) { assert.ok(e instanceof SocketError, `not a SocketError: ${String(e)}`); return e.code; }
};
const open = () => new Network({ inheritNetwork: true });

test('bind reports the port at once; a bound socket that does not listen refuses connections', { timeout: 20000 }, async () => {
  const net = open();
  try {
    for (const addr of [v4('127.0.0.1', 0), v6lo(0)]) {
      const s = TcpSocket.create(net, addr.tag);
      s.bind(addr);
      const port = s.localAddress().val.port;
      assert.ok(port > 0);
      const outcome = await new Promise<string>((resolve) => {
        const c = connect({ port, host: addr.tag === 'ipv4' ? '127.0.0.1' : '::1' });
        c.on('connect', () => { c.destroy(); resolve('connected'); }).on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      assert.equal(outcome, 'ECONNREFUSED');
      assert.equal(code(() => s.bind(addr)), 'invalid-state');
      s.release();
    }
  } finally { net.close(); }
});

test('address-in-use at bind for a port another process listens on', { timeout: 20000 }, async () => {
  const child = spawn(process.execPath, ['-e', "const s=require('net').createServer().listen(0,'127.0.0.1',()=>console.log(s.address().port))"], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((r) => child.stdout.once('data', (d) => r(Number(String(d).trim()))));
    const net = open();
    const s = TcpSocket.create(net, 'ipv4');
    assert.equal(code(() => s.bind(v4('127.0.0.1', port))), 'address-in-use');
    assert.equal(s.state, 'unbound'); // a failed bind may be retried
    assert.equal(code(() => s.bind(v4('127.0.0.1', 0))), 'ok');
    const u = UdpSocket.create(net, 'ipv4');
    u.bind(v4('127.0.0.1', 0));
    const taken = u.localAddress().val.port;
    assert.equal(code(() => UdpSocket.create(net, 'ipv4').bind(v4('127.0.0.1', taken))), 'address-in-use');
    net.close();
  } finally { child.kill(); }
});

test('state machine and arguments: spec error codes, state unchanged, nothing thrown but SocketError', { timeout: 20000 }, async () => {
  const net = open();
  try {
    const s = TcpSocket.create(net, 'ipv4');
    assert.equal(code(() => s.bind(v6lo(0))), 'invalid-argument'); // wrong family
    assert.equal(code(() => s.bind({ tag: 'ipv4', val: { port: 70000, address: [127, 0, 0, 1] } })), 'invalid-argument');
    assert.equal(code(() => s.bind({ tag: 'ipv4', val: { port: 1, address: [300, 0, 0, 1] } })), 'invalid-argument');
    assert.equal(code(() => s.bind(v4('224.0.0.1', 0))), 'invalid-argument');
    assert.equal(code(() => s.localAddress()), 'invalid-state');
    assert.equal(await acode(() => s.connect(v4('127.0.0.1', 0))), 'invalid-argument');
    assert.equal(await acode(() => s.connect(v4('0.0.0.0', 80))), 'invalid-argument');
    assert.equal(s.state, 'unbound');
    const six = TcpSocket.create(net, 'ipv6');
    assert.equal(code(() => six.bind({ tag: 'ipv6', val: { port: 0, flowInfo: 0, address: [0, 0, 0, 0, 0, 0xffff, 0x7f00, 1], scopeId: 0 } })), 'invalid-argument');
    assert.equal(code(() => TcpSocket.create(net, 'ipx' as 'ipv4')), 'invalid-argument');
    s.listen();
    assert.equal(code(() => s.listen()), 'invalid-state');
    assert.equal(await acode(() => s.connect(v4('127.0.0.1', 9))), 'invalid-state');
    assert.equal(code(() => s.setListenBacklogSize(0n)), 'invalid-argument');
    assert.equal(code(() => s.setListenBacklogSize(10n)), 'not-supported');
    const u = UdpSocket.create(net, 'ipv4');
    assert.equal(await acode(() => u.receive()), 'invalid-state'); // unbound
    assert.equal(await acode(() => u.send(new Uint8Array(65536), v4('127.0.0.1', 9))), 'datagram-too-large');
    assert.equal(await acode(() => u.send(new Uint8Array(1), undefined)), 'invalid-argument');
    assert.equal(code(() => u.disconnect()), 'invalid-state');
    u.connect(v4('127.0.0.1', 9));
    const port = u.localAddress().val.port;
    u.connect(v4('127.0.0.1', 10)); // reconnect keeps the local port
    assert.equal(u.localAddress().val.port, port);
    assert.equal(u.remoteAddress().val.port, 10);
    assert.equal(await acode(() => u.send(new Uint8Array(1), v4('127.0.0.1', 11))), 'invalid-argument'); // not the connected peer
    // A failed connect leaves the socket closed.
    const r = TcpSocket.create(net, 'ipv4');
    const dead = TcpSocket.create(net, 'ipv4'); dead.bind(v4('127.0.0.1', 0));
    const deadPort = dead.localAddress().val.port; dead.release();
    assert.equal(await acode(() => r.connect(v4('127.0.0.1', deadPort))), 'connection-refused');
    assert.equal(r.state, 'closed');
    assert.equal(await acode(() => r.connect(v4('127.0.0.1', deadPort))), 'invalid-state');
  } finally { net.close(); }
});

test('options round-trip in every state and pass from a listener to accepted sockets', { timeout: 20000 }, async () => {
  const net = open();
  try {
    const l = TcpSocket.create(net, 'ipv4');
    assert.equal(l.options.hopLimit, 64);
    l.setKeepAliveEnabled(true); l.setKeepAliveIdleTime(42_000_000_000n); l.setKeepAliveInterval(1n); l.setKeepAliveCount(42);
    l.setHopLimit(42); l.setReceiveBufferSize(0x10000n); l.setSendBufferSize(0x10000n);
    assert.equal(code(() => l.setKeepAliveIdleTime(0n)), 'invalid-argument');
    assert.equal(code(() => l.setHopLimit(0)), 'invalid-argument');
    assert.equal(code(() => l.setSendBufferSize(0n)), 'invalid-argument');
    l.setKeepAliveCount(0xffffffff); assert.equal(l.options.keepAliveCount, 127); l.setKeepAliveCount(42);
    l.setReceiveBufferSize(2n ** 64n - 1n); l.setReceiveBufferSize(0x10000n);
    l.bind(v4('127.0.0.1', 0));
    l.listen();
    const port = l.localAddress().val.port;
    const client = connect(port, '127.0.0.1');
    await l.whenAcceptable();
    const a = l.accept()!;
    assert.equal(a.state, 'connected');
    assert.deepEqual(
      [a.options.keepAliveEnabled, a.options.keepAliveIdleTime, a.options.keepAliveInterval, a.options.keepAliveCount, a.options.hopLimit, a.options.receiveBufferSize, a.options.sendBufferSize],
      [true, 42_000_000_000n, 1_000_000_000n, 42, 42, 0x10000n, 0x10000n],
    );
    client.destroy();
  } finally { net.close(); }
});

test('half-close both ways: FIN after the data while reading continues; local SHUT_RD ends the stream', { timeout: 20000 }, async () => {
  const net = open();
  const server = createServer({ allowHalfOpen: true }, (c) => {
    const chunks: Buffer[] = [];
    c.on('data', (d) => chunks.push(d)).on('end', () => { c.write('got:'); c.end(Buffer.concat(chunks)); }).on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const s = TcpSocket.create(net, 'ipv4');
    await s.connect(v4('127.0.0.1', (server.address() as { port: number }).port));
    await s.write(new TextEncoder().encode('abc'));
    await s.shutdownSend(); // the server sees end only after 'abc'
    assert.equal(code(() => s.writeCapacity()), 'invalid-state');
    const parts: Uint8Array[] = [];
    for (let b; (b = await s.readAsync(1 << 16)) !== null;) parts.push(b);
    assert.equal(Buffer.concat(parts).toString(), 'got:abc');
    assert.equal(s.receiveError(), null);
    s.release();
    // Dropping the receive side while the peer still sends: reads end at once, cleanly.
    const t = TcpSocket.create(net, 'ipv4');
    await t.connect(v4('127.0.0.1', (server.address() as { port: number }).port));
    t.shutdownReceive();
    assert.equal(await t.readAsync(10), null);
    assert.equal(t.receiveError(), null);
    t.release();
  } finally { net.close(); server.close(); }
});

test('the UDP receive queue is bounded: a flood keeps at most 256 datagrams', { timeout: 20000 }, async () => {
  const net = open();
  try {
    const u = UdpSocket.create(net, 'ipv4');
    u.bind(v4('127.0.0.1', 0));
    const port = u.localAddress().val.port;
    const tx = createSocket('udp4');
    const payload = Buffer.alloc(512, 1);
    for (let i = 0; i < 2000; i++) { tx.send(payload, port, '127.0.0.1'); if (i % 100 === 99) await new Promise((r) => setImmediate(r)); }
    await new Promise((r) => setTimeout(r, 300));
    tx.close();
    const got = u.receiveNow(100000);
    assert.ok(got.length > 0 && got.length <= 256, `queued ${got.length}`);
    assert.equal(got[0].remoteAddress.tag, 'ipv4');
  } finally { net.close(); }
});

/** An embedder callback that holds every answer until open() (then says yes); counts how often it was asked. */
function slowCheck(): { check: () => Promise<boolean>; open: () => void; asked: () => number } {
  let asked = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  return { check: async () => { asked++; await gate; return true; }, open: () => release(), asked: () => asked };
}

test('UDP: datagrams waiting for a slow source check count against the queue cap (zero-length ones too)', { timeout: 20000 }, async () => {
  const slow = slowCheck();
  const net = new Network({ allow: ['bind=127.0.0.1:*'], check: slow.check });
  try {
    const u = UdpSocket.create(net, 'ipv4');
    u.bind(v4('127.0.0.1', 0));
    const port = u.localAddress().val.port;
    const tx = createSocket('udp4');
    const empty = Buffer.alloc(0);
    for (let i = 0; i < 2000; i++) { tx.send(empty, port, '127.0.0.1'); if (i % 100 === 99) await new Promise((r) => setImmediate(r)); }
    await new Promise((r) => setTimeout(r, 300));
    tx.close();
    assert.equal(slow.asked(), 1); // checks run one at a time, in arrival order
    slow.open();
    // Everything held while the callback thought is now checked: at most the cap, not the whole flood.
    let last = -1;
    while (slow.asked() !== last) { last = slow.asked(); await new Promise((r) => setTimeout(r, 20)); }
    assert.ok(slow.asked() > 0 && slow.asked() <= 256, `${slow.asked()} datagrams were held for the check`);
    const got = u.receiveNow(100000);
    assert.equal(got.length, slow.asked());
    assert.equal(got[0].data.length, 0);
  } finally { net.close(); }
});

test('TCP: connections waiting for a slow peer check count against the accept queue; the rest are reset', { timeout: 20000 }, async () => {
  const slow = slowCheck();
  const net = new Network({ allow: ['bind=127.0.0.1:*'], check: slow.check });
  const clients: import('node:net').Socket[] = [];
  try {
    const l = TcpSocket.create(net, 'ipv4');
    l.bind(v4('127.0.0.1', 0));
    l.setListenBacklogSize(1024n); // the kernel holds all 300 handshakes however slowly a busy test machine accepts
    l.listen();
    const port = l.localAddress().val.port;
    let resets = 0;
    const outcomes: Promise<void>[] = [];
    for (let i = 0; i < 300; i++) {
      const c = connect({ port, host: '127.0.0.1' });
      clients.push(c);
      outcomes.push(new Promise((r) => { c.on('error', () => { resets++; r(); }).on('close', () => r()); }));
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    // The 44 beyond the cap are reset at once, without asking the callback.
    const deadline = Date.now() + 10000;
    while (resets < 300 - 256 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(resets, 300 - 256);
    slow.open();
    let accepted = 0;
    while (accepted < 256 && Date.now() < deadline) {
      await Promise.race([l.whenAcceptable(), new Promise((r) => setTimeout(r, 100))]);
      for (let c = l.accept(); c; c = l.accept()) { accepted++; c.release(); }
    }
    assert.equal(accepted, 256);
    assert.equal(slow.asked(), 256);
    l.release();
    // Closing a listener resets connections still being checked (no fd is held for a callback that never answers).
    const never = new Network({ allow: ['bind=127.0.0.1:*'], check: () => new Promise<boolean>(() => {}) });
    const l2 = TcpSocket.create(never, 'ipv4');
    l2.bind(v4('127.0.0.1', 0));
    l2.listen();
    const c2 = connect({ port: l2.localAddress().val.port, host: '127.0.0.1' });
    clients.push(c2);
    await new Promise((r) => c2.on('connect', r));
    await new Promise((r) => setTimeout(r, 50));
    const ended = new Promise<string>((r) => { c2.on('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error')).on('close', () => r('closed')); });
    l2.release();
    assert.match(await ended, /ECONNRESET|closed/);
    never.close();
  } finally {
    for (const c of clients) c.destroy();
    net.close();
  }
});

test('no grant: nothing reaches the OS (and the socket count is tracked)', { timeout: 20000 }, async () => {
  const net = new Network();
  assert.equal(net.policy.deniesAll, true);
  const s = TcpSocket.create(net, 'ipv4');
  s.setKeepAliveEnabled(true);
  assert.equal(code(() => s.bind(v4('127.0.0.1', 0))), 'access-denied');
  assert.equal(s.state, 'unbound');
  assert.equal(code(() => s.listen()), 'access-denied');
  assert.equal(await acode(() => TcpSocket.create(net, 'ipv4').connect(v4('127.0.0.1', 9))), 'access-denied');
  assert.equal(await acode(() => UdpSocket.create(net, 'ipv4').send(new Uint8Array(1), v4('127.0.0.1', 9))), 'access-denied');
  assert.equal(code(() => UdpSocket.create(net, 'ipv4').connect(v4('127.0.0.1', 9))), 'access-denied');
  assert.equal(net.socketCount, 4);
  net.close();
  assert.equal(net.socketCount, 0);
});

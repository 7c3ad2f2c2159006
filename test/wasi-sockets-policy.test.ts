// The network policy against known bypasses, through the package entry
// (createWasi + a real componentize-qjs guest): IPv4-mapped IPv6, the
// unspecified address as a destination, numeric aliases, DNS answers that
// point at a denied address (hostname grants with an injected resolver),
// implicit binds, and inbound peers that no rule allows. Loopback only.
// Every scenario also checks the outcome on the Node side (connections that
// arrive, datagrams that are delivered), not only the guest's error code.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { createSocket } from 'node:dgram';
import { Component, createWasi, runCommand, type NetworkConfig } from '../src/index.ts';
import { NetworkPolicy } from '../src/wasi/core/sockets/policy.ts';
import { Network } from '../src/wasi/core/sockets/network.ts';
import { SocketError, TcpSocket, UdpSocket, type CheckedAddress } from '../src/wasi/core/sockets/index.ts';
import { networkInterfaces } from 'node:os';
import { NODE_SOCKET_ERRORS, socketErrorCode } from '../src/wasi/core/sockets/errors.ts';
import { parseIpLoose, ipToString } from '../src/wasi/core/sockets/address.ts';
import { buildSocketsCmd } from './helpers/wasi-sockets-fixtures.ts';

let component: Component | undefined;
before(async () => {
  const path = await buildSocketsCmd();
  if (path) component = Component.compile(new Uint8Array(readFileSync(path)));
});

/** Runs the guest with `args` under `network`; resolves to its stdout lines. `onLine` sees them as they come. */
async function guest(network: NetworkConfig, args: string[], onLine?: (l: string) => void): Promise<string[]> {
  const lines: string[] = [];
  let buf = '';
  const wasi = createWasi({
    args: ['sockets', ...args],
    network,
    stdout: (chunk: Uint8Array) => {
      buf += Buffer.from(chunk).toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1); lines.push(l); onLine?.(l); }
    },
  });
  try {
    const status = await runCommand(component!.instantiate(wasi.imports));
    assert.equal(status, 0, `guest ${args.join(' ')} failed: ${lines.join(' | ')}`);
  } finally {
    wasi.close();
  }
  return lines;
}

/** A Node TCP server on 127.0.0.1 that counts connections and upper-cases what it reads. */
async function countingServer(): Promise<{ server: Server; port: number; count: () => number }> {
  let n = 0;
  const server = createServer({ allowHalfOpen: true }, (s) => {
    n++;
    const chunks: Buffer[] = [];
    s.on('data', (d) => chunks.push(d)).on('end', () => s.end(Buffer.concat(chunks).toString().toUpperCase())).on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, count: () => n };
}

test('IPv4-mapped IPv6: refused as an argument, and rules match the canonical IPv4 address', { timeout: 30000 }, async (t) => {
  if (!component) return t.skip('WASI 0.3 WIT not available');
  const { server, port, count } = await countingServer();
  try {
    // A grant for 127.0.0.1 must not be reachable through ::ffff:127.0.0.1 on an IPv6 socket (invalid-argument, per spec).
    const out = await guest({ allow: [`connect=127.0.0.1:${port}`] }, ['connect', '0:0:0:0:0:ffff:7f00:1', String(port)]);
    assert.deepEqual(out, ['err:invalid-argument']);
    assert.equal(count(), 0);
  } finally { server.close(); }
  const p = new NetworkPolicy({ allow: ['connect=10.0.0.0/8'] });
  const v6 = (groups: number[], port: number) => ({ tag: 'ipv6' as const, val: { port, flowInfo: 0, address: groups, scopeId: 0 } });
  assert.equal(await p.allows(v6([0, 0, 0, 0, 0, 0xffff, 0x0a01, 0x0203], 5), 'tcp-connect'), true);
  assert.equal(await p.allows(v6([0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001], 5), 'tcp-connect'), false);
  // A rule written as a mapped address is the IPv4 rule.
  const m = new NetworkPolicy({ allow: ['connect=[::ffff:127.0.0.0/104]:80'] });
  assert.equal(await m.allows({ tag: 'ipv4', val: { port: 80, address: [127, 1, 2, 3] } }, 'tcp-connect'), true);
  assert.equal(await m.allows({ tag: 'ipv4', val: { port: 80, address: [10, 1, 2, 3] } }, 'tcp-connect'), false);
  // The embedder's callback sees the canonical form.
  const seen: string[] = [];
  const q = new NetworkPolicy({ check: (a, use) => { seen.push(`${a.family} ${a.address} ${a.port} ${use}`); return false; } });
  await q.allows(v6([0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001], 80), 'tcp-accept');
  assert.deepEqual(seen, ['ipv4 127.0.0.1 80 tcp-accept']);
});

test('IPv4-compatible IPv6 (::a.b.c.d) is invalid-argument like IPv4-mapped, whatever the grant; :: and ::1 are not', { timeout: 30000 }, async (t) => {
  const net = new Network({ inheritNetwork: true });
  const v6 = (groups: number[], port: number) => ({ tag: 'ipv6' as const, val: { port, flowInfo: 0, address: groups, scopeId: 0 } });
  const code = (f: () => unknown) => { try { f(); return 'ok'; } catch (e) { return (e as SocketError).code; } };
  const acode = async (f: () => Promise<unknown>) => { try { await f(); return 'ok'; } catch (e) { return (e as SocketError).code; } };
  try {
    for (const compat of [[0, 0, 0, 0, 0, 0, 0x7f00, 1], [0, 0, 0, 0, 0, 0, 0, 2], [0, 0, 0, 0, 0, 0, 0x0a00, 0]]) {
      assert.equal(code(() => TcpSocket.create(net, 'ipv6').bind(v6(compat, 0))), 'invalid-argument');
      assert.equal(await acode(() => TcpSocket.create(net, 'ipv6').connect(v6(compat, 80))), 'invalid-argument');
      assert.equal(code(() => UdpSocket.create(net, 'ipv6').bind(v6(compat, 0))), 'invalid-argument');
      assert.equal(code(() => UdpSocket.create(net, 'ipv6').connect(v6(compat, 53))), 'invalid-argument');
      assert.equal(await acode(() => UdpSocket.create(net, 'ipv6').send(new Uint8Array(1), v6(compat, 53))), 'invalid-argument');
    }
    assert.equal(code(() => TcpSocket.create(net, 'ipv6').bind(v6([0, 0, 0, 0, 0, 0, 0, 1], 0))), 'ok');
    assert.equal(code(() => UdpSocket.create(net, 'ipv6').bind(v6([0, 0, 0, 0, 0, 0, 0, 0], 0))), 'ok');
  } finally { net.close(); }
  if (!component) return t.skip('WASI 0.3 WIT not available');
  const { server, port, count } = await countingServer();
  try {
    assert.deepEqual(await guest({ inheritNetwork: true }, ['connect', '::7f00:1', String(port)]), ['err:invalid-argument']);
    assert.deepEqual(await guest({ inheritNetwork: true }, ['udp-send', '::7f00:1', String(port)]), ['err:invalid-argument']);
    assert.equal(count(), 0);
  } finally { server.close(); }
});

test('scope-id: the callback sees it; address rules match scope-id 0 only (a * rule any); a link-local scope reaches the OS as its interface', { timeout: 30000 }, async (t) => {
  const seen: CheckedAddress[] = [];
  const p = new NetworkPolicy({
    allow: ['connect=[fe80::/10]', 'connect=[::1]', 'connect=*:443'],
    check: (a) => { seen.push(a); return false; },
  });
  const v6 = (groups: number[], port: number, scopeId: number) => ({ tag: 'ipv6' as const, val: { port, flowInfo: 0, address: groups, scopeId } });
  const ll = [0xfe80, 0, 0, 0, 0, 0, 0, 1];
  assert.equal(await p.allows(v6(ll, 80, 0), 'tcp-connect'), true);
  assert.equal(await p.allows(v6(ll, 80, 3), 'tcp-connect'), false); // the rule names no interface
  assert.equal(await p.allows(v6([0, 0, 0, 0, 0, 0, 0, 1], 80, 3), 'tcp-connect'), false);
  assert.equal(await p.allows(v6(ll, 443, 3), 'tcp-connect'), true); // '*' is every address, every interface
  assert.deepEqual(seen, [
    { family: 'ipv6', address: 'fe80::1', port: 80, scopeId: 3 },
    { family: 'ipv6', address: '::1', port: 80, scopeId: 3 },
  ]);
  seen.length = 0;
  await p.allows({ tag: 'ipv4', val: { port: 80, address: [10, 0, 0, 1] } }, 'tcp-connect');
  await p.allows(v6([0, 0, 0, 0, 0, 0xffff, 0x0a00, 1], 80, 3), 'tcp-connect'); // mapped: checked as IPv4, no scope
  assert.deepEqual(seen, [{ family: 'ipv4', address: '10.0.0.1', port: 80 }, { family: 'ipv4', address: '10.0.0.1', port: 80 }]);

  // A real link-local address of this machine, if it has one: bind and connect with its scope-id.
  const link = Object.values(networkInterfaces()).flat().find((e) => e && e.family === 'IPv6' && e.scopeid && /^fe80:/i.test(e.address));
  if (!link) return t.skip('no IPv6 link-local address on this machine');
  const groups = Array.from(parseIpLoose(link.address)!.val);
  const addr = (port: number, scopeId = link.scopeid!) => v6(groups, port, scopeId);
  const denied = new Network({ allow: ['bind=[fe80::/10]', `bind=[${link.address}]`] });
  const open = new Network({ allow: ['bind=*', 'connect=*', 'accept=*'] });
  try {
    const code = (f: () => unknown) => { try { f(); return 'ok'; } catch (e) { return (e as SocketError).code; } };
    assert.equal(code(() => TcpSocket.create(denied, 'ipv6').bind(addr(0))), 'access-denied');
    const l = TcpSocket.create(open, 'ipv6');
    l.bind(addr(0));
    const local = l.localAddress();
    assert.equal(local.tag === 'ipv6' && local.val.scopeId, link.scopeid);
    l.listen();
    const c = TcpSocket.create(open, 'ipv6');
    await c.connect(addr(local.val.port));
    await l.whenAcceptable();
    const peer = l.accept()!.remoteAddress();
    assert.equal(peer.tag === 'ipv6' && peer.val.scopeId, link.scopeid);
    assert.equal(ipToString({ tag: 'ipv6', val: peer.val.address }), ipToString({ tag: 'ipv6', val: groups }));
    // A scope-id that names no interface: the OS refuses the link-local address.
    assert.equal(code(() => TcpSocket.create(open, 'ipv6').bind(addr(0, 0x7fffffff))), 'invalid-argument');
  } finally { denied.close(); open.close(); }
});

test('the unspecified address is never a destination, whatever the grant', { timeout: 30000 }, async (t) => {
  if (!component) return t.skip('WASI 0.3 WIT not available');
  const { server, port, count } = await countingServer();
  const asked: string[] = [];
  try {
    for (const network of [{ inheritNetwork: true }, { allow: ['connect=*', 'udp=*'] }, { check: (a: { address: string }) => { asked.push(a.address); return true; } }]) {
      assert.deepEqual(await guest(network, ['connect', '0.0.0.0', String(port)]), ['err:invalid-argument']);
      assert.deepEqual(await guest(network, ['connect', '::', String(port)]), ['err:invalid-argument']);
      assert.deepEqual(await guest(network, ['udp-send', '0.0.0.0', String(port)]), ['err:invalid-argument']);
    }
    assert.equal(count(), 0); // Linux would route 0.0.0.0 to the 127.0.0.1 listener
    assert.deepEqual(asked, []);
  } finally { server.close(); }
  // Even a rule written for it does not make it a destination.
  const p = new NetworkPolicy({ allow: ['connect=0.0.0.0/0', 'udp=0.0.0.0'] });
  assert.equal(await p.allows({ tag: 'ipv4', val: { port: 80, address: [0, 0, 0, 0] } }, 'tcp-connect'), false);
  assert.equal(await p.allows({ tag: 'ipv4', val: { port: 80, address: [0, 0, 0, 0] } }, 'udp-send'), false);
});

test('numeric aliases are addresses: in rules and in names the guest resolves', { timeout: 30000 }, async (t) => {
  if (!component) return t.skip('WASI 0.3 WIT not available');
  assert.equal(ipToString(parseIpLoose('2130706433')!), '127.0.0.1');
  assert.equal(ipToString(parseIpLoose('0x7f.1')!), '127.0.0.1');
  assert.equal(ipToString(parseIpLoose('017700000001')!), '127.0.0.1');
  assert.equal(parseIpLoose('4294967296'), null);
  const { server, port, count } = await countingServer();
  try {
    // A rule written as an alias grants the address it denotes.
    assert.deepEqual(await guest({ allow: [`connect=2130706433:${port}`] }, ['connect', '127.0.0.1', String(port)]), [`ok 127.0.0.1:${port}`]);
    assert.equal(count(), 1);
    // A guest resolving an alias gets the address, which faces the rules (only 10/8 granted here).
    const out = await guest({ allowIpNameLookup: true, allow: ['connect=10.0.0.0/8'] }, ['lookup-connect', '2130706433', String(port)]);
    assert.deepEqual(out, ['127.0.0.1 err:access-denied']);
    assert.equal(count(), 1);
  } finally { server.close(); }
});

test('hostname grants allow only what Weir\'s own lookup returned; lookups are gated and send no query when denied', { timeout: 30000 }, async (t) => {
  if (!component) return t.skip('WASI 0.3 WIT not available');
  const { server, port, count } = await countingServer();
  const queries: string[] = [];
  const resolver = async (name: string) => {
    queries.push(name);
    if (name === 'db.test') return ['127.0.0.1'];
    if (name === 'evil.test') return ['::ffff:127.0.0.1', '127.0.0.1'];
    throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' });
  };
  try {
    const grant = { allow: [`connect=db.test:${port}`], resolver };
    // Not looked up yet: the address is not granted.
    assert.deepEqual(await guest(grant, ['connect', '127.0.0.1', String(port)]), ['err:access-denied']);
    // The hostname rule lets the guest look up that one name...
    assert.deepEqual(await guest(grant, ['lookup-connect', 'db.test', String(port)]), ['127.0.0.1 ok']);
    assert.equal(count(), 1);
    // ...and no other (no query is sent for it).
    const before = queries.length;
    assert.deepEqual(await guest(grant, ['lookup', 'evil.test']), ['err:access-denied']);
    assert.equal(queries.length, before);
    // With lookups allowed, a name whose answers point at 127.0.0.1 gains nothing: only db.test's answers are granted,
    // and only after db.test was looked up in this host.
    const out = await guest({ allowIpNameLookup: true, allow: [`connect=db.test:${port}`], resolver }, ['lookup-connect', 'evil.test', String(port)]);
    assert.deepEqual(out, ['127.0.0.1 err:access-denied']); // mapped answer canonicalised and de-duplicated
    assert.equal(count(), 1);
    // The grant is for the port in the rule only.
    const other = await guest(grant, ['lookup-connect', 'db.test', String(port === 65535 ? 1 : port + 1)]);
    assert.deepEqual(other, ['127.0.0.1 err:access-denied']);
  } finally { server.close(); }
  // No grant at all: the resolver is never asked.
  const n = queries.length;
  assert.deepEqual(await guest({ resolver }, ['lookup', 'db.test']), ['err:access-denied']);
  assert.equal(queries.length, n);
});

test('a hostname grant follows the latest answer for the name: answers replace, never accumulate (DNS rebinding)', { timeout: 30000 }, async (t) => {
  // Core level: three answers in a row, as a rebinding DNS server would give them.
  const answers = [['93.184.216.34'], ['127.0.0.1', '::1'], ['169.254.169.254']];
  let n = 0;
  const net = new Network({ allow: ['connect=api.example.com:80', 'udp=api.example.com:53'], resolver: async () => {
    if (n >= answers.length) throw Object.assign(new Error('no answer'), { code: 'ENOTFOUND' });
    return answers[n++];
  } });
  const v4 = (a: number[], port: number) => ({ tag: 'ipv4' as const, val: { port, address: a } });
  const v6 = (a: number[], port: number) => ({ tag: 'ipv6' as const, val: { port, flowInfo: 0, address: a, scopeId: 0 } });
  const allowed = async () => [
    await net.policy.allows(v4([93, 184, 216, 34], 80), 'tcp-connect'),
    await net.policy.allows(v4([127, 0, 0, 1], 80), 'tcp-connect'),
    await net.policy.allows(v6([0, 0, 0, 0, 0, 0, 0, 1], 80), 'tcp-connect'),
    await net.policy.allows(v4([169, 254, 169, 254], 80), 'tcp-connect'),
    await net.policy.allows(v4([169, 254, 169, 254], 53), 'udp-send'),
  ];
  assert.deepEqual(await allowed(), [false, false, false, false, false]);
  await net.resolveAddresses('api.example.com');
  assert.deepEqual(await allowed(), [true, false, false, false, false]);
  await net.resolveAddresses('API.Example.COM.');
  assert.deepEqual(await allowed(), [false, true, true, false, false]);
  await net.resolveAddresses('api.example.com');
  assert.deepEqual(await allowed(), [false, false, false, true, true]); // both rules for the name follow it
  // A failed lookup changes nothing; a lookup of another name leaves this grant alone.
  await assert.rejects(net.resolveAddresses('api.example.com'), { name: 'LookupError' });
  assert.deepEqual(await allowed(), [false, false, false, true, true]);
  // Answers that arrive out of order: the answer to the newer query wins.
  const pending = new Map<string, (a: string[]) => void>();
  const slow = new Network({ allow: ['connect=db.test'], resolver: (name) => new Promise((r) => pending.set(`${name}#${pending.size}`, r)) });
  const older = slow.resolveAddresses('db.test');
  const newer = slow.resolveAddresses('db.test');
  pending.get('db.test#1')!(['10.0.0.2']);
  await newer;
  pending.get('db.test#0')!(['10.0.0.1']);
  assert.deepEqual((await older).map(ipToString), ['10.0.0.1']); // the guest still gets its answer...
  assert.equal(await slow.policy.allows(v4([10, 0, 0, 1], 80), 'tcp-connect'), false); // ...but it grants nothing
  assert.equal(await slow.policy.allows(v4([10, 0, 0, 2], 80), 'tcp-connect'), true);

  // Through a guest: after the second lookup, the first answer's address is no longer granted.
  if (!component) return t.skip('WASI 0.3 WIT not available');
  const { server, port, count } = await countingServer();
  try {
    let k = 0;
    const resolver = async () => (k++ === 0 ? ['127.0.0.1'] : ['127.0.0.3']);
    const out = await guest({ allow: [`connect=db.test:${port}`], resolver }, ['relookup-connect', 'db.test', String(port)]);
    assert.deepEqual(out, ['127.0.0.1 err:access-denied', '127.0.0.3 err:connection-refused']);
    assert.equal(count(), 0);
  } finally { server.close(); }
});

test('implicit binds are checked as a bind of the wildcard address', { timeout: 30000 }, async (t) => {
  if (!component) return t.skip('WASI 0.3 WIT not available');
  // A loopback bind grant does not let listen() bind 0.0.0.0 implicitly.
  assert.deepEqual(await guest({ allow: ['bind=127.0.0.1:*'] }, ['listen', 'ipv4']), ['err:access-denied']);
  assert.deepEqual(await guest({ allow: ['bind=[::1]:*'] }, ['listen', 'ipv6']), ['err:access-denied']);
  assert.match((await guest({ allow: ['bind=127.0.0.1:*'] }, ['bind', '127.0.0.1', '0']))[0], /^ok 127\.0\.0\.1:\d+$/);
  assert.match((await guest({ allow: ['bind=0.0.0.0:0'] }, ['listen', 'ipv4']))[0], /^ok 0\.0\.0\.0:\d+$/);
  // UDP: a bind grant is not a send grant; the destination grant covers the implicit ephemeral bind.
  assert.deepEqual(await guest({ allow: ['bind=*'] }, ['udp-send', '127.0.0.1', '9']), ['err:access-denied']);
  assert.deepEqual(await guest({ allow: ['udp=127.0.0.1:9'] }, ['udp-send', '127.0.0.1', '9']), ['ok']);
  // An embedder callback is asked about the wildcard for listen's implicit bind...
  const asked: string[] = [];
  await guest({ check: (a, use) => { asked.push(`${use} ${a.address}:${a.port}`); return false; } }, ['listen', 'ipv4']);
  assert.deepEqual(asked, ['tcp-bind 0.0.0.0:0']);
  // ...and, when it alone grants a destination, for the implicit bind of connect and UDP send too.
  asked.length = 0;
  const onlyDest = { check: (a: { address: string; port: number }, use: string) => { asked.push(`${use} ${a.address}:${a.port}`); return use === 'tcp-connect' || use === 'udp-send'; } };
  assert.deepEqual(await guest(onlyDest, ['connect', '127.0.0.1', '9']), ['err:access-denied']);
  assert.deepEqual(await guest(onlyDest, ['udp-send', '127.0.0.1', '9']), ['err:access-denied']);
  assert.deepEqual(asked, ['tcp-connect 127.0.0.1:9', 'tcp-bind 0.0.0.0:0', 'udp-send 127.0.0.1:9', 'udp-bind 0.0.0.0:0']);
  const both = { check: (a: { address: string }, use: string) => use === 'udp-send' || (use === 'udp-bind' && a.address === '0.0.0.0') };
  assert.deepEqual(await guest(both, ['udp-send', '127.0.0.1', '9']), ['ok']);
});

test('inbound peers: a denied peer never shows up in the listen stream, a denied source\'s datagram is never returned', { timeout: 30000 }, async (t) => {
  if (!component) return t.skip('WASI 0.3 WIT not available');
  const network = { allow: ['bind=127.0.0.1:*', 'accept=127.0.0.2', 'udp=127.0.0.2'] };
  let port = 0;
  let deniedOutcome = '';
  const ready = new Promise<void>((resolve) => {
    void guest(network, ['accept-one', '127.0.0.1', '0'], (l) => {
      const m = /^listening 127\.0\.0\.1:(\d+)$/.exec(l);
      if (m) { port = Number(m[1]); resolve(); }
    }).then((out) => { tcpOut = out; tcpDone(); });
  });
  let tcpOut: string[] = [];
  let tcpDone!: () => void;
  const finished = new Promise<void>((r) => { tcpDone = r; });
  await ready;
  // Denied: from 127.0.0.1. The connection is reset without a byte of the guest's.
  deniedOutcome = await new Promise<string>((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' }, () => { s.write('from the wrong peer'); });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error')).on('close', () => resolve('closed')).on('data', () => resolve('data'));
  });
  assert.match(deniedOutcome, /ECONNRESET|EPIPE|closed/);
  // Allowed: from 127.0.0.2.
  await new Promise<void>((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' }, () => { s.end('hello'); });
    s.on('close', () => resolve()).on('error', reject);
    s.resume();
  });
  await finished;
  assert.equal(tcpOut.length, 2);
  assert.match(tcpOut[1], /^accepted 127\.0\.0\.2:\d+ hello$/);

  let uport = 0;
  let udpOut: string[] = [];
  const uready = new Promise<void>((resolve) => {
    void guest(network, ['udp-recv-once', '127.0.0.1', '0'], (l) => {
      const m = /^listening 127\.0\.0\.1:(\d+)$/.exec(l);
      if (m) { uport = Number(m[1]); resolve(); }
    }).then((out) => { udpOut = out; udpDone(); });
  });
  let udpDone!: () => void;
  const udpFinished = new Promise<void>((r) => { udpDone = r; });
  await uready;
  const bad = createSocket('udp4');
  const good = createSocket('udp4');
  await new Promise<void>((r) => bad.bind(0, '127.0.0.1', r));
  await new Promise<void>((r) => good.bind(0, '127.0.0.2', r));
  for (let i = 0; i < 5; i++) await new Promise((r) => bad.send(`bad${i}`, uport, '127.0.0.1', r));
  await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => good.send('good', uport, '127.0.0.1', r));
  await udpFinished;
  bad.close(); good.close();
  assert.match(udpOut[1], /^got good from 127\.0\.0\.2:\d+$/);
});

test('an embedder callback may answer asynchronously for connect; a Promise for a synchronous bind is a denial', { timeout: 30000 }, async (t) => {
  if (!component) return t.skip('WASI 0.3 WIT not available');
  const { server, port, count } = await countingServer();
  try {
    const check = async (a: { address: string; port: number }, use: string) => {
      await new Promise((r) => setTimeout(r, 5));
      return (use === 'tcp-connect' && a.port === port) || (use === 'tcp-bind' && a.address === '0.0.0.0' && a.port === 0);
    };
    assert.deepEqual(await guest({ check }, ['connect', '127.0.0.1', String(port)]), [`ok 127.0.0.1:${port}`]);
    assert.equal(count(), 1);
    assert.deepEqual(await guest({ check: async () => true }, ['bind', '127.0.0.1', '0']), ['err:access-denied']);
    assert.deepEqual(await guest({ check: () => { throw new Error('boom'); } }, ['bind', '127.0.0.1', '0']), ['err:access-denied']);
  } finally { server.close(); }
});

test('one error table: every Node/libuv code the brief names maps to its WASI code; unknown codes are other', () => {
  const expected: Record<string, string> = {
    ECONNREFUSED: 'connection-refused', ECONNRESET: 'connection-reset', EPIPE: 'connection-broken',
    EADDRINUSE: 'address-in-use', EADDRNOTAVAIL: 'address-not-bindable', EHOSTUNREACH: 'remote-unreachable',
    ENETUNREACH: 'remote-unreachable', ETIMEDOUT: 'timeout', EMSGSIZE: 'datagram-too-large', EACCES: 'access-denied',
    ECONNABORTED: 'connection-aborted', EINVAL: 'invalid-argument', ENOBUFS: 'out-of-memory', EISCONN: 'invalid-state',
    ERR_SOCKET_DGRAM_IS_CONNECTED: 'invalid-state', ERR_SOCKET_BAD_PORT: 'invalid-argument',
  };
  for (const [code, wasi] of Object.entries(expected)) {
    assert.equal(NODE_SOCKET_ERRORS[code], wasi, code);
    assert.equal(socketErrorCode(Object.assign(new Error(`connect ${code} 10.1.2.3:5432`), { code })), wasi);
  }
  assert.equal(socketErrorCode(new Error('something else')), 'other');
  assert.equal(socketErrorCode(Object.assign(new Error('x'), { code: 'EWHATEVER' })), 'other');
});

// A WASI 0.3 sockets program built with componentize-qjs during the tests:
// TCP echo server and client, UDP echo and sender, name lookup, and single
// attempts that print the error code (for the policy tests). argv[1] picks
// the action. Output lines are flushed as they are printed (each print is
// one stdout write-via-stream that completes before the program goes on).

import { buildQjsComponent } from './fixtures.ts';
import { wasiP3DepsWit, wasiP3WitDir } from './wasi-p3-fixtures.ts';

const IMPORTS = ['cli/environment', 'cli/exit', 'cli/stdin', 'cli/stdout', 'sockets/types', 'sockets/ip-name-lookup'];

export const SOCKETS_JS = String.raw`
import env from 'wasi:cli/environment@0.3.0';
import stdout from 'wasi:cli/stdout@0.3.0';
import stdin from 'wasi:cli/stdin@0.3.0';
import { TcpSocket, UdpSocket } from 'wasi:sockets/types@0.3.0';
import lookup from 'wasi:sockets/ip-name-lookup@0.3.0';

function utf8(s) { const b = unescape(encodeURIComponent(s)); const out = new Uint8Array(b.length); for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i); return out; }
function text(bytes) { let s = ''; for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]); return decodeURIComponent(escape(s)); }
function concat(chunks) { let n = 0; for (const c of chunks) n += c.length; const out = new Uint8Array(n); let o = 0; for (const c of chunks) { out.set(c, o); o += c.length; } return out; }
function tagOf(e) { if (e && e.payload !== undefined) e = e.payload; return typeof e === 'string' ? e : (e && e.tag) ? e.tag : String(e && e.message !== undefined ? e.message : e); }

async function print(s) {
  const { readable, writable } = wit.Stream(wit.Stream.U8);
  const done = stdout.writeViaStream(readable);
  await writable.writeAll(utf8(s + '\n'));
  writable.drop();
  await done.read();
}

function parseAddr(ip, port) {
  port = Number(port);
  if (ip.indexOf(':') >= 0) {
    // Full IPv6 text only ("::1" and "::" are the ones the tests use).
    const parts = ip.split('::');
    const head = parts[0] ? parts[0].split(':') : [];
    const tail = parts.length > 1 && parts[1] ? parts[1].split(':') : [];
    const groups = head.concat(new Array(8 - head.length - tail.length).fill('0'), tail).map((g) => parseInt(g, 16));
    return { tag: 'ipv6', val: { port, flowInfo: 0, address: groups, scopeId: 0 } };
  }
  return { tag: 'ipv4', val: { port, address: ip.split('.').map(Number) } };
}
function fmtAddr(a) {
  if (a.tag === 'ipv4') return Array.from(a.val.address).join('.') + ':' + a.val.port;
  return '[' + Array.from(a.val.address).map((g) => g.toString(16)).join(':') + ']:' + a.val.port;
}
function fmtIp(a) { return a.tag === 'ipv4' ? Array.from(a.val).join('.') : Array.from(a.val).map((g) => g.toString(16)).join(':'); }
const family = (ip) => (ip.indexOf(':') >= 0 ? 'ipv6' : 'ipv4');

async function readAll(stream) { const chunks = []; for await (const c of stream) chunks.push(c); return concat(chunks); }

/** Echo one connection: everything read is written back; FIN after the peer's FIN. */
async function echo(conn, splice) {
  const [data, recvDone] = conn.receive();
  if (splice) {
    // The receive stream handed straight to send: the bytes never enter the guest.
    const sendDone = conn.send(data);
    await recvDone.read();
    await sendDone.read();
    return 0;
  }
  const { readable, writable } = wit.Stream(wit.Stream.U8_2);
  const sendDone = conn.send(readable);
  let n = 0;
  // A pending read holds a buffer in guest memory: start small (idle connections
  // stay cheap), double while reads come back full (bulk transfers use big chunks).
  let size = 4096;
  for (;;) {
    const chunk = await data.read(size);
    if (!chunk || chunk.length === 0) break;
    n += chunk.length;
    if (chunk.length === size && size < (1 << 20)) size *= 2;
    else if (chunk.length < size >> 2 && size > 4096) size >>= 1;
    await writable.writeAll(chunk);
  }
  writable.drop();
  await recvDone.read();
  await sendDone.read();
  conn[Symbol.dispose] ? conn[Symbol.dispose]() : 0;
  return n;
}

/** Blocks until stdin ends (lets a test inspect the process meanwhile). */
async function waitStdin() { const [data, done] = stdin.readViaStream(); for await (const c of data) {} await done.read(); }

async function attempt(f) {
  try { const r = await f(); await print('ok' + (r === undefined ? '' : ' ' + r)); } catch (e) { await print('err:' + tagOf(e)); }
}

export const run = {
  async run() {
    const args = env.getArguments();
    const cmd = args[1];
    switch (cmd) {
      case 'tcp-echo-server': {
        // tcp-echo-server IP PORT COUNT [splice]: serve COUNT connections concurrently, then exit.
        const s = TcpSocket.create(family(args[2]));
        s.bind(parseAddr(args[2], args[3]));
        const conns = s.listen();
        await print('listening ' + fmtAddr(s.getLocalAddress()));
        const count = Number(args[4] || 1);
        const pending = [];
        let served = 0;
        for await (const conn of conns) {
          pending.push(echo(conn, args[5] === 'splice').catch((e) => print('echo failed: ' + tagOf(e))));
          if (++served >= count) break;
        }
        await Promise.all(pending);
        await print('served ' + served);
        return;
      }
      case 'tcp-client': {
        // tcp-client IP PORT MESSAGE: send MESSAGE, FIN, print what comes back.
        const s = TcpSocket.create(family(args[2]));
        await s.connect(parseAddr(args[2], args[3]));
        const [data, recvDone] = s.receive();
        const { readable, writable } = wit.Stream(wit.Stream.U8_2);
        const sendDone = s.send(readable);
        await writable.writeAll(utf8(args[4]));
        writable.drop();
        const back = await readAll(data);
        await recvDone.read();
        await sendDone.read();
        await print('reply ' + text(back));
        return;
      }
      case 'tcp-rtt': {
        // tcp-rtt IP PORT N: N times connect, send one byte, read the echo, FIN, read to the end. Prints 'done N'.
        const n = Number(args[4]);
        for (let i = 0; i < n; i++) {
          const s = TcpSocket.create(family(args[2]));
          await s.connect(parseAddr(args[2], args[3]));
          const [data, recvDone] = s.receive();
          const { readable, writable } = wit.Stream(wit.Stream.U8_2);
          const sendDone = s.send(readable);
          await writable.writeAll(utf8('x'));
          let got = 0;
          for (;;) { const c = await data.read(64); if (!c || c.length === 0) break; got += c.length; if (got === 1) writable.drop(); }
          await recvDone.read();
          await sendDone.read();
          if (got !== 1) throw 'echo lost';
        }
        await print('done ' + n);
        return;
      }
      case 'udp-echo': {
        // udp-echo IP PORT COUNT: answer COUNT datagrams to their sender.
        const s = UdpSocket.create(family(args[2]));
        s.bind(parseAddr(args[2], args[3]));
        await print('listening ' + fmtAddr(s.getLocalAddress()));
        for (let i = 0; i < Number(args[4] || 1); i++) {
          const [data, from] = await s.receive();
          await s.send(data, from);
        }
        await print('done');
        return;
      }
      case 'udp-client': {
        // udp-client IP PORT MESSAGE: send one datagram (implicit bind), print the reply.
        const s = UdpSocket.create(family(args[2]));
        await s.send(utf8(args[4]), parseAddr(args[2], args[3]));
        const [data, from] = await s.receive();
        await print('reply ' + text(data) + ' from ' + fmtAddr(from));
        return;
      }
      case 'lookup': await attempt(async () => (await lookup.resolveAddresses(args[2])).map(fmtIp).join(',')); return;
      case 'lookup-connect': {
        // lookup-connect NAME PORT: resolve, then connect to every answer; prints one line per address.
        let ips;
        try { ips = await lookup.resolveAddresses(args[2]); } catch (e) { await print('lookup err:' + tagOf(e)); return; }
        for (const ip of ips) {
          const s = TcpSocket.create(ip.tag);
          const addr = ip.tag === 'ipv4' ? { tag: 'ipv4', val: { port: Number(args[3]), address: ip.val } }
            : { tag: 'ipv6', val: { port: Number(args[3]), flowInfo: 0, address: ip.val, scopeId: 0 } };
          try { await s.connect(addr); await print(fmtIp(ip) + ' ok'); } catch (e) { await print(fmtIp(ip) + ' err:' + tagOf(e)); }
        }
        return;
      }
      case 'relookup-connect': {
        // relookup-connect NAME PORT: resolve twice, then connect to every answer of both; one line per address.
        const answers = [];
        for (let i = 0; i < 2; i++) {
          try { answers.push(...await lookup.resolveAddresses(args[2])); } catch (e) { await print('lookup err:' + tagOf(e)); return; }
        }
        for (const ip of answers) {
          const s = TcpSocket.create(ip.tag);
          const addr = ip.tag === 'ipv4' ? { tag: 'ipv4', val: { port: Number(args[3]), address: ip.val } }
            : { tag: 'ipv6', val: { port: Number(args[3]), flowInfo: 0, address: ip.val, scopeId: 0 } };
          try { await s.connect(addr); await print(fmtIp(ip) + ' ok'); } catch (e) { await print(fmtIp(ip) + ' err:' + tagOf(e)); }
        }
        return;
      }
      case 'bind': await attempt(() => { const s = TcpSocket.create(family(args[2])); s.bind(parseAddr(args[2], args[3])); return fmtAddr(s.getLocalAddress()); }); return;
      case 'listen': await attempt(() => { const s = TcpSocket.create(args[2]); s.listen(); return fmtAddr(s.getLocalAddress()); }); return;
      case 'connect': await attempt(async () => { const s = TcpSocket.create(family(args[2])); await s.connect(parseAddr(args[2], args[3])); return fmtAddr(s.getRemoteAddress()); }); return;
      case 'udp-bind': await attempt(() => { const s = UdpSocket.create(family(args[2])); s.bind(parseAddr(args[2], args[3])); return fmtAddr(s.getLocalAddress()); }); return;
      case 'udp-connect': await attempt(() => { const s = UdpSocket.create(family(args[2])); s.connect(parseAddr(args[2], args[3])); return fmtAddr(s.getLocalAddress()); }); return;
      case 'udp-send': await attempt(async () => { const s = UdpSocket.create(family(args[2])); await s.send(utf8(args[4] || 'x'), parseAddr(args[2], args[3])); }); return;
      case 'udp-recv-once': {
        // udp-recv-once IP PORT: bind, print the port, print the first datagram received (text and source).
        const s = UdpSocket.create(family(args[2]));
        s.bind(parseAddr(args[2], args[3]));
        await print('listening ' + fmtAddr(s.getLocalAddress()));
        const [data, from] = await s.receive();
        await print('got ' + text(data) + ' from ' + fmtAddr(from));
        return;
      }
      case 'accept-one': {
        // accept-one IP PORT: print the first accepted peer, read its message.
        const s = TcpSocket.create(family(args[2]));
        s.bind(parseAddr(args[2], args[3]));
        const conns = s.listen();
        await print('listening ' + fmtAddr(s.getLocalAddress()));
        for await (const conn of conns) {
          const [data, done] = conn.receive();
          const msg = await readAll(data);
          await print('accepted ' + fmtAddr(conn.getRemoteAddress()) + ' ' + text(msg));
          return;
        }
        return;
      }
      case 'options': {
        // Creation and options need no grant.
        const t = TcpSocket.create('ipv4');
        t.setKeepAliveEnabled(true); t.setKeepAliveIdleTime(42000000000); t.setHopLimit(42); t.setReceiveBufferSize(65536);
        const u = UdpSocket.create('ipv6');
        u.setUnicastHopLimit(7);
        await print([t.getKeepAliveEnabled(), t.getKeepAliveIdleTime(), t.getHopLimit(), t.getReceiveBufferSize(), u.getUnicastHopLimit()].join(' '));
        return;
      }
      case 'deny-all': {
        // Every operation that needs a grant, one line each; then wait for stdin to end.
        const a = (ip, port) => parseAddr(ip, port);
        await attempt(() => { const s = TcpSocket.create('ipv4'); s.bind(a('127.0.0.1', 0)); });
        await attempt(() => { const s = TcpSocket.create('ipv4'); s.listen(); });
        await attempt(() => TcpSocket.create('ipv6').connect(a('::1', Number(args[2] || 9))));
        await attempt(() => { const s = UdpSocket.create('ipv4'); s.bind(a('0.0.0.0', 0)); });
        await attempt(() => { const s = UdpSocket.create('ipv4'); s.connect(a('127.0.0.1', 53)); });
        await attempt(() => UdpSocket.create('ipv4').send(utf8('x'), a('127.0.0.1', 53)));
        await attempt(() => lookup.resolveAddresses('localhost'));
        await print('waiting');
        await waitStdin();
        return;
      }
      case 'idle': await print('waiting'); await waitStdin(); return;
      case 'accept-hold': {
        // accept-hold IP PORT: accept one connection and never read it until stdin ends.
        const s = TcpSocket.create(family(args[2]));
        s.bind(parseAddr(args[2], args[3]));
        const conns = s.listen();
        await print('listening ' + fmtAddr(s.getLocalAddress()));
        for await (const conn of conns) {
          const [data, done] = conn.receive();
          await print('accepted');
          await waitStdin();
          let n = 0;
          for await (const c of data) n += c.length;
          await print('read ' + n);
          return;
        }
        return;
      }
      case 'types': await print(JSON.stringify(wit.Stream.types)); return;
      default: await print('unknown command ' + cmd); throw 'usage';
    }
  },
};
`;

/** Builds (or reuses) the sockets program; undefined when the WASI 0.3 WIT is unavailable. */
export async function buildSocketsCmd(): Promise<string | undefined> {
  const dir = wasiP3WitDir();
  if (!dir) return undefined;
  const wit = `package test:sockets;

world sockets {
${IMPORTS.map((i) => `  import wasi:${i}@0.3.0;`).join('\n')}
  export wasi:cli/run@0.3.0;
}

${wasiP3DepsWit(dir)}`;
  return buildQjsComponent('wasi-sockets-cmd', wit, 'sockets', SOCKETS_JS);
}

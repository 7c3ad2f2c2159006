// Outgoing HTTP: one send per inbound request to a local upstream.
//
// A front server answers each inbound request by sending one request to an
// upstream server and relaying its body. Weir's row sends with HttpClient (the
// pool behind wasi:http client.send / outgoing-handler); the baseline does the
// same with `fetch` in plain Node. Everything is on loopback in this process;
// the load generator keeps CONCURRENCY keep-alive connections busy for a fixed
// time. The figure is inbound requests per second (higher is better).

import { createServer, Agent, request as httpRequest, type Server } from 'node:http';
import type { Bench, BenchResult } from './harness.ts';
import { HttpClient } from '../src/wasi/core/http/client.ts';
import { OutboundPolicy } from '../src/wasi/core/http/policy.ts';

const CONCURRENCY = 16;
const DURATION_MS = 2000;

function listen(s: Server): Promise<number> {
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));
}

async function load(port: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let done = 0;
  const end = Date.now() + DURATION_MS;
  const one = (): Promise<void> => new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => { done++; resolve(); });
    });
    req.on('error', reject);
    req.end();
  });
  const t0 = Date.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (Date.now() < end) await one(); }));
  const secs = (Date.now() - t0) / 1000;
  agent.destroy();
  return done / secs;
}

async function run(): Promise<BenchResult[]> {
  const payload = Buffer.from('hello from upstream\n');
  const upstream = createServer((_q, r) => { r.setHeader('content-type', 'text/plain'); r.end(payload); });
  const upPort = await listen(upstream);

  const client = new HttpClient({ policy: new OutboundPolicy([`127.0.0.1:${upPort}`]) });
  const weirFront = createServer(async (_q, r) => {
    const res = await client.send({
      method: 'GET', scheme: 'HTTP', authority: `127.0.0.1:${upPort}`, pathWithQuery: '/',
      headers: [], body: { stream: null, trailers: Promise.resolve(null) },
    });
    r.statusCode = res.status;
    for await (const chunk of res.body.stream!) r.write(chunk);
    r.end();
  });
  const fetchFront = createServer(async (_q, r) => {
    const res = await fetch(`http://127.0.0.1:${upPort}/`);
    r.statusCode = res.status;
    r.end(Buffer.from(await res.arrayBuffer()));
  });
  const weirPort = await listen(weirFront);
  const fetchPort = await listen(fetchFront);
  try {
    // Warm both paths (JIT, pools), then alternate measurements.
    await load(weirPort); await load(fetchPort);
    const w: number[] = [];
    const f: number[] = [];
    for (let i = 0; i < 2; i++) { w.push(await load(weirPort)); f.push(await load(fetchPort)); }
    const weir = Math.max(...w);
    const base = Math.max(...f);
    return [{
      name: 'http client: one outgoing send per inbound request',
      value: weir, unit: 'req/s', higherIsBetter: true,
      baseline: base, baselineLabel: 'same front server using fetch (plain Node)',
      target: '≥ 0.7× baseline', targetMet: weir >= 0.7 * base,
      note: `loopback, ${CONCURRENCY} keep-alive connections, ${DURATION_MS / 1000}s runs, best of 2`,
    }];
  } finally {
    client.close();
    for (const s of [upstream, weirFront, fetchFront]) { s.closeAllConnections(); s.close(); }
  }
}

export const benches: Bench[] = [{ name: 'http client', run }];

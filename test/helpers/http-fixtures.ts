// WASI 0.2 HTTP components for the tests: componentize-js (StarlingMonkey)
// proxies whose `fetch` event handler exports wasi:http/incoming-handler and
// whose `fetch()` goes through wasi:http/outgoing-handler, and tiny WAT
// components for the misbehaving-guest cases.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './fixtures.ts';
import { componentizeJs } from './wasi-fixtures.ts';

// StarlingMonkey in componentize-js 0.22 is built against WASI 0.2.10: its world must use that version.
const P2_WIT = '0.2.10';

/** A world with the wasi:http proxy world's imports and export (jco's bundled 0.2.10 WIT); `body` replaces the world's contents. */
export function proxyWit(world: string, body = `include wasi:http/proxy@${P2_WIT};`): string {
  const deps = ['io', 'clocks', 'random', 'filesystem', 'sockets', 'cli', 'http'].map((p) => {
    // jco bundles the full 0.2.12 text; relabel it to the engine's version. The engine was
    // built with the unstable network-error-code feature: include those items.
    let src = readFileSync(join(repoRoot, 'node_modules', '@bytecodealliance', 'jco', 'lib', 'wit', 'builtin', '0.2.12', `wasi-${p}`, 'package.wit'), 'utf8')
      .replaceAll('@0.2.12', `@${P2_WIT}`);
    if (p === 'sockets') src = src.replaceAll('@unstable(feature = network-error-code)', '');
    return `${src.replace(/^package ([^;]+);/m, 'package $1 {')}\n}\n`;
  }).join('\n');
  return `package test:${world};

world ${world} {
  ${body}
}

${deps}`;
}

/** Builds (or reuses, cached by content hash) a p2 proxy component from a JS module with a `fetch` event listener. */
export async function buildJsProxy(name: string, js: string, worldBody?: string): Promise<string> {
  return componentizeJs(name, 'proxy', proxyWit('proxy', worldBody), js);
}

/**
 * A p2 proxy in JS: `/` answers "hello" with a header and a streamed body;
 * `/proxy` fetches the URL in the `x-upstream` header and relays status and
 * body; `/post?n=N` POSTs N bytes to that URL; `/echo` echoes the request body.
 */
export const PROXY_JS = String.raw`
addEventListener('fetch', (event) => event.respondWith(handle(event.request)));
async function handle(req) {
  const url = new URL(req.url);
  if (url.pathname === '/proxy') {
    try {
      const r = await fetch(req.headers.get('x-upstream'), { method: 'GET' });
      const body = await r.text();
      return new Response('upstream ' + r.status + ' ' + body, { status: 200, headers: { 'x-upstream-status': String(r.status) } });
    } catch (e) {
      return new Response('fetch failed: ' + e, { status: 502 });
    }
  }
  if (url.pathname === '/post') {
    // An outgoing body of n bytes (bigger than every buffer between the guest and the socket).
    const n = Number(url.searchParams.get('n'));
    const r = await fetch(req.headers.get('x-upstream'), { method: 'POST', body: 'x'.repeat(n) });
    return new Response('upstream ' + r.status + ' ' + await r.text());
  }
  if (url.pathname === '/echo') {
    const body = await req.text();
    return new Response(req.method + ' ' + body, { headers: { 'x-len': String(body.length) } });
  }
  return new Response('hello from p2 ' + req.method + ' ' + url.pathname + url.search, { headers: { 'x-hello': 'p2' } });
}
`;

/** A p2 command world that may send HTTP: the proxy world's imports plus wasi:cli/run. */
export const FETCH_CMD_WORLD = `include wasi:http/imports@${P2_WIT};
  import wasi:cli/environment@${P2_WIT};
  export wasi:cli/run@${P2_WIT};`;

/** A command that fetches $URL and prints "<status> <body>" (or "error <message>"). */
export const FETCH_CMD_JS = String.raw`
import { getEnvironment } from 'wasi:cli/environment@0.2.10';
export const run = {
  async run() {
    const url = getEnvironment().find(([k]) => k === 'URL')[1];
    try {
      const r = await fetch(url);
      console.log(r.status + ' ' + await r.text());
    } catch (e) {
      console.log('error ' + e.message);
    }
  },
};
`;

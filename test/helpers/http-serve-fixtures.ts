// WASI 0.3 HTTP services built with componentize-qjs during the tests (a world
// that imports wasi:http/types and exports wasi:http/handler), and helpers to
// run `weir serve` on them.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { buildQjsComponent, repoRoot } from './fixtures.ts';
import { wasiP3DepsWit, wasiP3WitDir } from './wasi-p3-fixtures.ts';

export function serviceWit(dir: string, world: string): string {
  return `package test:${world};

world ${world} {
  import wasi:http/types@0.3.0;
  import wasi:clocks/monotonic-clock@0.3.0;
  import wasi:cli/environment@0.3.0;
  export wasi:http/handler@0.3.0;
}

${wasiP3DepsWit(dir, ['cli', 'clocks', 'filesystem', 'random', 'sockets', 'http'])}`;
}

/**
 * Routes: / hello; /sleep?ms=N waits then answers; /echo streams the request
 * body back chunk by chunk, request trailers become response trailers;
 * /trailers answers with trailers; /env answers INSTANCE_ID; /error returns
 * an error-code; /trap throws a non-error value (the lowering traps);
 * /stream?n=N&ms=M sends N chunks M ms apart; /status?code=N; /length-lie
 * declares content-length 10 and sends 4 bytes; /types prints the future types.
 */
export const SERVICE_JS = String.raw`
import types from 'wasi:http/types@0.3.0';
import mono from 'wasi:clocks/monotonic-clock@0.3.0';
import env from 'wasi:cli/environment@0.3.0';

function utf8(s) { const out = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 255; return out; }
function text(b) { let s = ''; for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]); return s; }
const FUTURES = Object.keys(wit.Future).filter((k) => /^[A-Z0-9_]+$/.test(k));
const TRAILERS = wit.Future[FUTURES.find((t) => /OPTION/.test(t))];
const COMPLETION = wit.Future[FUTURES.find((t) => /RESULT/.test(t) && !/OPTION/.test(t))];

function respond(status, headerList, chunks, trailers, delayMs) {
  const headers = types.Fields.fromList(headerList.map(([k, v]) => [k, utf8(v)]));
  const body = wit.Stream(wit.Stream.U8);
  const tr = wit.Future(TRAILERS);
  const [response, done] = types.Response.new(headers, body.readable, tr.readable);
  if (status !== 200) response.setStatusCode(status);
  (async () => {
    for (const c of chunks) {
      if (delayMs) await mono.waitFor(delayMs * 1000000);
      await body.writable.writeAll(typeof c === 'string' ? utf8(c) : c);
    }
    body.writable.drop();
    tr.writable.write({ tag: 'ok', val: trailers ? types.Fields.fromList(trailers.map(([k, v]) => [k, utf8(v)])) : null });
    const r = await done.read();
    lastCompletion = r.tag === 'ok' ? 'ok' : 'err:' + (r.val && r.val.tag);
  })();
  return response;
}
let lastCompletion = 'none';

function query(path, name) {
  const m = new RegExp('[?&]' + name + '=([^&]*)').exec(path);
  return m ? m[1] : null;
}

export const handler = {
  async handle(request) {
    const path = request.getPathWithQuery() || '/';
    const route = path.split('?')[0];
    if (route === '/') return respond(200, [['content-type', 'text/plain']], ['hello'], null, 0);
    if (route === '/sleep') {
      await mono.waitFor(Number(query(path, 'ms') || '0') * 1000000);
      const id = env.getEnvironment().find(([k]) => k === 'INSTANCE_ID');
      return respond(200, [], ['slept:' + (id ? id[1] : 'none')], null, 0);
    }
    if (route === '/info') {
      const h = request.getHeaders().copyAll().map(([k, v]) => k + '=' + text(v)).join(';');
      const s = request.getScheme();
      return respond(200, [], [JSON.stringify({ method: request.getMethod(), path, scheme: s && s.tag, authority: request.getAuthority(), headers: h })], null, 0);
    }
    if (route === '/env') {
      const id = env.getEnvironment().find(([k]) => k === 'INSTANCE_ID');
      return respond(200, [], [id ? id[1] : 'none'], null, 0);
    }
    if (route === '/completion') return respond(200, [], [lastCompletion], null, 0);
    if (route === '/echo') {
      const res = wit.Future(COMPLETION);
      const [stream, trailers] = types.Request.consumeBody(request, res.readable);
      const headers = new types.Fields();
      const body = wit.Stream(wit.Stream.U8);
      const tr = wit.Future(TRAILERS);
      const [response] = types.Response.new(headers, body.readable, tr.readable);
      (async () => {
        for await (const chunk of stream) await body.writable.writeAll(chunk);
        body.writable.drop();
        const t = await trailers.read();
        res.writable.write({ tag: 'ok' });
        tr.writable.write(t.tag === 'ok' ? { tag: 'ok', val: t.val } : { tag: 'ok', val: null });
      })();
      return response;
    }
    if (route === '/trailers') return respond(200, [], ['body'], [['x-checksum', 'abc'], ['x-parts', '1']], 0);
    if (route === '/stream') return respond(200, [], Array.from({ length: Number(query(path, 'n') || '3') }, (_, i) => 'chunk' + i + '\n'), null, Number(query(path, 'ms') || '0'));
    if (route === '/status') return respond(Number(query(path, 'code')), [], ['status'], null, 0);
    if (route === '/length-lie') return respond(200, [['content-length', '10']], ['four'], null, 0);
    if (route === '/error') throw { tag: 'internal-error', val: 'guest says no' };
    if (route === '/trap') throw 42;
    if (route === '/types') return respond(200, [], [JSON.stringify({ f: FUTURES })], null, 0);
    return respond(404, [], ['not found'], null, 0);
  },
};
`;

export async function buildService(): Promise<string | undefined> {
  const dir = wasiP3WitDir();
  if (!dir) return undefined;
  return buildQjsComponent('http-service', serviceWit(dir, 'svc'), 'svc', SERVICE_JS);
}

export const weirBin = join(repoRoot, 'dist', 'cli', 'main.js');

export interface Served {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  /** Sends SIGINT (default) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `weir serve --addr 127.0.0.1:0 …args`, resolving once the first stderr line gives the URL. */
export function startServe(args: string[], timeoutMs = 20_000): Promise<Served> {
  const child = spawn(process.execPath, [weirBin, 'serve', '--addr', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`weir serve did not start: ${err}`)); }, timeoutMs);
    child.stderr!.setEncoding('utf8');
    child.stdout!.resume();
    child.stderr!.on('data', (d: string) => {
      const before = err;
      err += d;
      if (!before.includes('\n') && err.includes('\n')) {
        clearTimeout(t);
        const first = err.slice(0, err.indexOf('\n'));
        const m = /http:\/\/\S+/.exec(first);
        if (!m) { child.kill('SIGKILL'); reject(new Error(`unexpected first line: ${first}`)); return; }
        resolve({
          url: m[0].replace(/\/$/, ''),
          child,
          stderr: () => err,
          stop: (signal = 'SIGINT') => {
            child.kill(signal);
            const k = setTimeout(() => child.kill('SIGKILL'), 10_000);
            return exited.finally(() => clearTimeout(k));
          },
        });
      }
    });
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`weir serve exited ${code}: ${err}`)); });
  });
}

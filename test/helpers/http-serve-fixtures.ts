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
    if (route === '/bad-length') return respond(200, [['content-length', 'ten']], ['four'], null, 0);
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

/** Runs `body` against a fresh `weir serve --addr 127.0.0.1:0 …args`; always stops it (SIGKILL if still running). */
export async function withServed<T>(args: string[], body: (s: Served) => Promise<T>): Promise<T> {
  const s = await startServe(args);
  try {
    return await body(s);
  } finally {
    if (s.child.exitCode === null) await s.stop('SIGKILL');
  }
}

const ERROR_CASES = `(case "DNS-timeout") (case "DNS-error" $dns) (case "destination-not-found") (case "destination-unavailable")
  (case "destination-IP-prohibited") (case "destination-IP-unroutable") (case "connection-refused") (case "connection-terminated")
  (case "connection-timeout") (case "connection-read-timeout") (case "connection-write-timeout") (case "connection-limit-reached")
  (case "TLS-protocol-error") (case "TLS-certificate-error") (case "TLS-alert-received" $tls) (case "HTTP-request-denied")
  (case "HTTP-request-length-required") (case "HTTP-request-body-size" (option u64)) (case "HTTP-request-method-invalid")
  (case "HTTP-request-URI-invalid") (case "HTTP-request-URI-too-long") (case "HTTP-request-header-section-size" (option u32))
  (case "HTTP-request-header-size" (option $fsp)) (case "HTTP-request-trailer-section-size" (option u32))
  (case "HTTP-request-trailer-size" $fsp) (case "HTTP-response-incomplete") (case "HTTP-response-header-section-size" (option u32))
  (case "HTTP-response-header-size" $fsp) (case "HTTP-response-body-size" (option u64)) (case "HTTP-response-trailer-section-size" (option u32))
  (case "HTTP-response-trailer-size" $fsp) (case "HTTP-response-transfer-coding" (option string))
  (case "HTTP-response-content-coding" (option string)) (case "HTTP-response-timeout") (case "HTTP-upgrade-failed")
  (case "HTTP-protocol-error") (case "loop-detected") (case "configuration-error") (case "internal-error" (option string))`;

/** The wasi:http/types exports `error-code` needs (its payload records, then the variant), inside an instance type. */
const ERROR_CODE_TYPES = `    (type $dns0 (record (field "rcode" (option string)) (field "info-code" (option u16))))
    (export "DNS-error-payload" (type $dns (eq $dns0)))
    (type $tls0 (record (field "alert-id" (option u8)) (field "alert-message" (option string))))
    (export "TLS-alert-received-payload" (type $tls (eq $tls0)))
    (type $fsp0 (record (field "field-name" (option string)) (field "field-size" (option u32))))
    (export "field-size-payload" (type $fsp (eq $fsp0)))
    (type $ec0 (variant ${ERROR_CASES}))
    (export "error-code" (type $ec (eq $ec0)))`;

/**
 * A WASI 0.3 middleware as a WAT component: it imports wasi:http/handler (the
 * next component's) and exports it; each request's path-with-query is
 * rewritten to `path` and the request handed on unchanged (body included);
 * the next component's response (or error-code) is returned as is.
 * Lifted and lowered synchronously (an `async func` type lets the sync call block).
 */
export function middlewareWat(path: string): string {
  const bytes = Buffer.from(path, 'latin1');
  return `(component
  (import "wasi:http/types@0.3.0" (instance $types
    (export "request" (type $req (sub resource)))
    (export "response" (type $resp (sub resource)))
${ERROR_CODE_TYPES}
    (export "[method]request.set-path-with-query" (func (param "self" (borrow $req)) (param "path-with-query" (option string)) (result (result))))))
  (alias export $types "request" (type $req))
  (alias export $types "response" (type $resp))
  (alias export $types "error-code" (type $ec))
  (type $own-req (own $req))
  (type $own-resp (own $resp))
  (type $res (result $own-resp (error $ec)))
  (type $handle-t (func async (param "request" $own-req) (result $res)))
  (import "wasi:http/handler@0.3.0" (instance $next
    (alias outer 1 $handle-t (type $h))
    (export "handle" (func (type $h)))))
  (core module $Mem
    (memory (export "mem") 1)
    (global $next (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $next) (i32.sub (local.get 2) (i32.const 1))) (i32.sub (i32.const 0) (local.get 2))))
      (global.set $next (i32.add (local.get $p) (local.get 3)))
      (local.get $p)))
  (core instance $mem (instantiate $Mem))
  (alias export $types "[method]request.set-path-with-query" (func $set-path))
  (alias export $next "handle" (func $next-handle))
  (core func $set-path' (canon lower (func $set-path) (memory (core memory $mem "mem"))))
  (core func $next-handle' (canon lower (func $next-handle) (memory (core memory $mem "mem")) (realloc (core func $mem "realloc"))))
  (core module $Main
    (import "m" "mem" (memory 1))
    (import "t" "set-path" (func $set (param i32 i32 i32 i32) (result i32)))
    (import "t" "next" (func $next (param i32 i32)))
    (data (i32.const 16) "${[...bytes].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('')}")
    (func (export "handle") (param $req i32) (result i32)
      (drop (call $set (local.get $req) (i32.const 1) (i32.const 16) (i32.const ${bytes.length})))
      (call $next (local.get $req) (i32.const 1024))
      (i32.const 1024)))
  (core instance $main (instantiate $Main
    (with "m" (instance (export "mem" (memory $mem "mem"))))
    (with "t" (instance (export "set-path" (func $set-path')) (export "next" (func $next-handle'))))))
  (func $handle (type $handle-t) (canon lift (core func $main "handle") (memory (core memory $mem "mem"))))
  (instance $h (export "handle" (func $handle)))
  (export "wasi:http/handler@0.3.0" (instance $h)))`;
}

/**
 * The smallest WASI 0.3 service, as a WAT component: every request gets 200
 * with the body `hello` (a stream<u8> written after task.return) and no
 * trailers. Async-lifted with a callback, so one instance holds any number of
 * requests at once. The one waitable set is shared by all tasks: each task
 * waits for exactly one event (its body write) and every such event is
 * handled the same way, so which task handles which does not matter.
 */
export function helloWat(opts: { backpressure?: boolean } = {}): string {
  const bp = opts.backpressure ?? false;
  return `(component
  (import "wasi:http/types@0.3.0" (instance $types
    (export "fields" (type $fields (sub resource)))
    (export "request" (type $req (sub resource)))
    (export "response" (type $resp (sub resource)))
${ERROR_CODE_TYPES}
    (export "[constructor]fields" (func (result (own $fields))))
    (export "[static]response.new" (func (param "headers" (own $fields)) (param "contents" (option (stream u8)))
      (param "trailers" (future (result (option (own $fields)) (error $ec))))
      (result (tuple (own $resp) (future (result (error $ec)))))))))
  (alias export $types "fields" (type $fields))
  (alias export $types "request" (type $req))
  (alias export $types "response" (type $resp))
  (alias export $types "error-code" (type $ec))
  (type $S (stream u8))
  (type $TF (future (result (option (own $fields)) (error $ec))))
  (type $CF (future (result (error $ec))))
  (core module $Mem (memory (export "mem") 1))
  (core instance $mem (instantiate $Mem))
  (alias export $types "[constructor]fields" (func $fields-new))
  (alias export $types "[static]response.new" (func $response-new))
  (core func $fields-new' (canon lower (func $fields-new) (memory (core memory $mem "mem"))))
  (core func $response-new' (canon lower (func $response-new) (memory (core memory $mem "mem"))))
  (core func $req-drop (canon resource.drop $req))
  (core func $snew (canon stream.new $S))
  (core func $swrite (canon stream.write $S async (memory (core memory $mem "mem"))))
  (core func $sdrop (canon stream.drop-writable $S))
  (core func $fnew (canon future.new $TF))
  (core func $fwrite (canon future.write $TF async (memory (core memory $mem "mem"))))
  (core func $fdrop (canon future.drop-writable $TF))
  (core func $cdrop (canon future.drop-readable $CF))
  (core func $tr (canon task.return (result (result (own $resp) (error $ec))) (memory (core memory $mem "mem"))))
  (core func $wsnew (canon waitable-set.new))
  (core func $join (canon waitable.join))
  (core func $bpinc (canon backpressure.inc))
  (core func $bpdec (canon backpressure.dec))
  (core module $Main
    (import "" "mem" (memory 1))
    (import "" "bpinc" (func $bpinc))
    (import "" "bpdec" (func $bpdec))
    (import "" "fields-new" (func $fields-new (result i32)))
    (import "" "response-new" (func $response-new (param i32 i32 i32 i32 i32)))
    (import "" "req-drop" (func $req-drop (param i32)))
    (import "" "snew" (func $snew (result i64)))
    (import "" "swrite" (func $swrite (param i32 i32 i32) (result i32)))
    (import "" "sdrop" (func $sdrop (param i32)))
    (import "" "fnew" (func $fnew (result i64)))
    (import "" "fwrite" (func $fwrite (param i32 i32) (result i32)))
    (import "" "fdrop" (func $fdrop (param i32)))
    (import "" "cdrop" (func $cdrop (param i32)))
    (import "" "tr" (func $tr (param i32 i32 i32 i64 i32 i32 i32 i32)))
    (import "" "wsnew" (func $wsnew (result i32)))
    (import "" "join" (func $join (param i32 i32)))
    (global $ws (mut i32) (i32.const 0))
    (data (i32.const 16) "hello")
    ;; 64..80: ok(none) for the trailers future (all zero); 128: response.new's results
    (func (export "handle") (param $req i32) (result i32) (local $s i64) (local $f i64) (local $w i32) (local $r i32)
      ${bp ? '(call $bpinc)' : ''}
      (call $req-drop (local.get $req))
      (local.set $s (call $snew))
      (local.set $f (call $fnew))
      (call $response-new (call $fields-new) (i32.const 1) (i32.wrap_i64 (local.get $s)) (i32.wrap_i64 (local.get $f)) (i32.const 128))
      (call $cdrop (i32.load (i32.const 132)))
      ;; the host reads the trailers future from response.new on: this write completes at once
      (if (i32.ne (i32.and (call $fwrite (i32.wrap_i64 (i64.shr_u (local.get $f) (i64.const 32))) (i32.const 64)) (i32.const 0xf)) (i32.const 0))
        (then unreachable))
      (call $fdrop (i32.wrap_i64 (i64.shr_u (local.get $f) (i64.const 32))))
      (call $tr (i32.const 0) (i32.load (i32.const 128)) (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
      (local.set $w (i32.wrap_i64 (i64.shr_u (local.get $s) (i64.const 32))))
      (local.set $r (call $swrite (local.get $w) (i32.const 16) (i32.const 5)))
      (if (i32.ne (local.get $r) (i32.const -1)) (then (call $sdrop (local.get $w)) ${bp ? '(call $bpdec)' : ''} (return (i32.const 0))))
      (if (i32.eqz (global.get $ws)) (then (global.set $ws (call $wsnew))))
      (call $join (local.get $w) (global.get $ws))
      (i32.or (i32.const 2) (i32.shl (global.get $ws) (i32.const 4))))
    (func (export "cb") (param $code i32) (param $idx i32) (param $p i32) (result i32)
      (call $join (local.get $idx) (i32.const 0))
      (call $sdrop (local.get $idx))
      ${bp ? '(call $bpdec)' : ''}
      (i32.const 0)))
  (core instance $main (instantiate $Main (with "" (instance
    (export "mem" (memory $mem "mem")) (export "bpinc" (func $bpinc)) (export "bpdec" (func $bpdec)) (export "fields-new" (func $fields-new')) (export "response-new" (func $response-new'))
    (export "req-drop" (func $req-drop)) (export "snew" (func $snew)) (export "swrite" (func $swrite)) (export "sdrop" (func $sdrop))
    (export "fnew" (func $fnew)) (export "fwrite" (func $fwrite)) (export "fdrop" (func $fdrop)) (export "cdrop" (func $cdrop))
    (export "tr" (func $tr)) (export "wsnew" (func $wsnew)) (export "join" (func $join))))))
  (func $handle async (param "request" (own $req)) (result (result (own $resp) (error $ec)))
    (canon lift (core func $main "handle") async (memory (core memory $mem "mem")) (callback (core func $main "cb"))))
  (instance $h (export "handle" (func $handle)))
  (export "wasi:http/handler@0.3.0" (instance $h)))`;
}

// A WASI 0.3 HTTP service (componentize-qjs) for the serve-limits tests:
//   /count?ms=N    counts the handle calls running at once in this instance,
//                  waits N ms, answers "peak=<most at once so far>"
//   /forever       waits (a monotonic-clock wait of one day) and never answers in time
//   /body          reads the whole request body, answers "<bytes> <trailers result>"
//   /fields?n=N    one host call (fields.from-list) with an N-byte value
//   /last-body     what the last /body saw (its response may have been replaced by 413)
//   /spin          loops forever in guest code (the CPU watchdog's case)
//   /spin-later    awaits a 1 ms wait, then loops forever (in a later callback, not the first call)
//   /alloc?mb=N    allocates an N MiB array in the guest: "allocated N" or "alloc failed: …" (a failed memory.grow)
//   /trap          throws a non-error value (the lowering traps; the soak's trapping case)
// Serve it with a large --max-instance-concurrent-reuse-count so every request
// lands on one instance and the counter sees them all.

import { buildQjsComponent } from './fixtures.ts';
import { wasiP3WitDir } from './wasi-p3-fixtures.ts';
import { serviceWit } from './http-serve-fixtures.ts';

const LIMITS_SERVICE_JS = String.raw`
import types from 'wasi:http/types@0.3.0';
import mono from 'wasi:clocks/monotonic-clock@0.3.0';

function utf8(s) { const out = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 255; return out; }
const FUTURES = Object.keys(wit.Future).filter((k) => /^[A-Z0-9_]+$/.test(k));
const TRAILERS = wit.Future[FUTURES.find((t) => /OPTION/.test(t))];
const COMPLETION = wit.Future[FUTURES.find((t) => /RESULT/.test(t) && !/OPTION/.test(t))];

function respond(text) {
  const body = wit.Stream(wit.Stream.U8);
  const tr = wit.Future(TRAILERS);
  const [response] = types.Response.new(new types.Fields(), body.readable, tr.readable);
  (async () => {
    await body.writable.writeAll(utf8(text));
    body.writable.drop();
    tr.writable.write({ tag: 'ok', val: null });
  })();
  return response;
}

let active = 0;
let peak = 0;
let lastBody = 'none';

export const handler = {
  async handle(request) {
    const path = request.getPathWithQuery() || '/';
    const route = path.split('?')[0];
    if (route === '/count') {
      active++;
      if (active > peak) peak = active;
      const m = /ms=([0-9]+)/.exec(path);
      try {
        await mono.waitFor(Number(m ? m[1] : '0') * 1000000);
      } finally {
        active--;
      }
      return respond('peak=' + peak);
    }
    if (route === '/forever') {
      await mono.waitFor(86400 * 1000000000);
      return respond('woke up');
    }
    if (route === '/body') {
      const res = wit.Future(COMPLETION);
      const [stream, trailers] = types.Request.consumeBody(request, res.readable);
      let n = 0;
      for await (const chunk of stream) n += chunk.length;
      const t = await trailers.read();
      res.writable.write({ tag: 'ok' });
      lastBody = n + ' ' + (t.tag === 'ok' ? 'ok' : 'err:' + (t.val && t.val.tag));
      return respond(lastBody);
    }
    if (route === '/last-body') return respond(lastBody);
    if (route === '/spin') { for (;;) {} }
    if (route === '/spin-later') { await mono.waitFor(1000000); for (;;) {} }
    if (route === '/alloc') {
      const m = /mb=([0-9]+)/.exec(path);
      const n = Number(m ? m[1] : '0') * 1048576;
      try {
        const a = new Uint8Array(n);
        a[n - 1] = 1;
        return respond('allocated ' + (n / 1048576));
      } catch (e) {
        return respond('alloc failed: ' + e);
      }
    }
    if (route === '/trap') throw 42;
    if (route === '/fields') {
      // one host call (fields.from-list) copying n bytes out of the guest
      const m = /n=([0-9]+)/.exec(path);
      const f = types.Fields.fromList([['x-big', utf8('a'.repeat(Number(m ? m[1] : '0')))]]);
      return respond('fields ' + f.copyAll().length);
    }
    return respond('hello');
  },
};
`;

export async function buildLimitsService(): Promise<string | undefined> {
  const dir = wasiP3WitDir();
  if (!dir) return undefined;
  return buildQjsComponent('serve-limits-service', serviceWit(dir, 'limitsvc'), 'limitsvc', LIMITS_SERVICE_JS);
}

/** The same service answering "PEAK=…" instead of "peak=…": a second version of it, for --watch tests. */
export async function buildLimitsServiceV2(): Promise<string | undefined> {
  const dir = wasiP3WitDir();
  if (!dir) return undefined;
  return buildQjsComponent('serve-limits-service-v2', serviceWit(dir, 'limitsvc'), 'limitsvc', LIMITS_SERVICE_JS.replace("respond('peak=' + peak)", "respond('PEAK=' + peak)"));
}

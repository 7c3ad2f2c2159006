// `npm run soak`: the serve soak of issue 10 (not part of `npm test`).
//
// Starts the built `weir serve` on worker threads with the CPU watchdog and a
// request timeout, serving the componentize-qjs limits service
// (test/helpers/serve-limits-fixtures.ts), and drives N requests over
// kept-alive connections: 1% /trap (the guest traps), 0.1% /spin (the guest
// loops forever), the rest /count?ms=0, in an order drawn from a fixed seed.
// It then checks what users rely on:
//   - every non-faulty request is answered 200; the only excused non-200s are
//     the casualties of a runaway: 503 + Retry-After from a stopped worker
//     ("collateral 503": a request the stopped worker had read, or one it
//     never read that no other worker answered in time; weir hands those to
//     another worker, src/serve/handover.ts); a reset of one caught in a
//     worker kill fails the check (until stop 22 such resets were a known
//     limit: connections queued on a stopped worker's own listener);
//   - /trap gets 500, /spin gets 500 (503 when queued behind another runaway);
//   - no request outlives max(--cpu-timeout, -W timeout) + slack;
//   - the weir process's RSS (worker threads included, sampled each second)
//     stays within ±10% of its value after warm-up (the first 10% of the
//     requests), as a level: the median of every 10 s window (single samples
//     swing with the worker restarts and are printed beside it);
//   - its open file descriptors stay flat (and return to the idle count);
//   - no worker dies on its own (watchdog restarts are counted and printed);
//   - SIGTERM at the end drains and exits 0.
// Nothing is retried. Exits 1 if a check fails, 2 if it could not run.
//
//   npm run soak -- [--requests N] [--concurrency C] [--workers W]
//     [--cpu-timeout 300ms] [--timeout 5s] [--instance-concurrency K]
//     [--seed S] [--slack-ms MS] [--kill-window-ms MS] [--max-seconds S]
//     [--max-failures N] [--stall-seconds S] [--weir-args="--max-connections 0 ..."]
//     [--weir-log FILE] [--in-place]
// WEIR_SERVE_LISTENER in the environment reaches weir (`reuseport`: a
// SO_REUSEPORT listener per worker instead of the shared socket, to compare).
// Each reset at a kill is listed with its client port and wall-clock time, to
// find it in a packet capture (`tcpdump -i lo`).
// weir runs from a copy of dist/ (and package.json) in a temporary directory:
// a replacement worker loads Weir's code from disk when it starts, so a
// rebuild of this tree during the soak would otherwise break or change the
// server under test (--in-place runs dist/ itself).
// The load stops early (and the report says so) at --max-seconds, after
// --max-failures unexcused answers, when no request got 200 for
// --stall-seconds, or on a first Ctrl-C (a second one kills).

import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Agent, request } from 'node:http';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../test/helpers/fixtures.ts';
import { weirBin } from '../test/helpers/http-serve-fixtures.ts';
import { buildLimitsService } from '../test/helpers/serve-limits-fixtures.ts';
import { mulberry32 } from '../test/helpers/prng.ts';

const parsed = (() => { try { return parseArgs({
  options: {
    requests: { type: 'string', default: '1000000' },
    concurrency: { type: 'string', default: '32' },
    workers: { type: 'string', default: '2' },
    'cpu-timeout': { type: 'string', default: '300ms' },
    timeout: { type: 'string', default: '5s' },
    // 1: a trap takes no neighbour down (a trapped instance fails every request in flight on it,
    // docs/SERVE.md "Failures"); higher values report those neighbours as "collateral 500".
    'instance-concurrency': { type: 'string', default: '1' },
    seed: { type: 'string', default: '20261130' },
    'slack-ms': { type: 'string', default: '1000' },
    'kill-window-ms': { type: 'string', default: '500' },
    'max-seconds': { type: 'string', default: '5400' },
    'trap-rate': { type: 'string', default: '0.01' },
    'spin-rate': { type: 'string', default: '0.001' },
    'max-failures': { type: 'string', default: '20000' },
    // stop when no /count got 200 for this long (the server stopped serving)
    'stall-seconds': { type: 'string', default: '30' },
    // extra `weir serve` flags, space-separated, put before the component
    'weir-args': { type: 'string', default: '' },
    // write weir's whole stderr here, each line prefixed with seconds since it started
    'weir-log': { type: 'string', default: '' },
    // write every 1 s sample (time, requests done, RSS and its parts in KiB, watchdog kills so far, fds) here as JSON lines
    samples: { type: 'string', default: '' },
    // run dist/ where it is instead of from a copy (see below)
    'in-place': { type: 'boolean', default: false },
  },
  strict: true,
}); } catch (e) {
  const first = (e as Error).message.split('\n')[0];
  console.error(`soak: ${first}${/ambiguous/.test(first) ? ' (a value that starts with a dash: --weir-args="...")' : ''}`);
  process.exit(2);
} })();
const flags = parsed.values;

function int(name: keyof typeof flags, min: number): number {
  const n = Number(flags[name]);
  if (!Number.isInteger(n) || n < min) { console.error(`soak: --${name} must be an integer >= ${min}`); process.exit(2); }
  return n;
}
function durationMs(name: keyof typeof flags): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m)?$/.exec(String(flags[name]));
  if (!m) { console.error(`soak: --${name}: a duration like 300ms or 5s`); process.exit(2); }
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
}

const N = int('requests', 1);
const C = int('concurrency', 1);
const WORKERS = int('workers', 1);
const CPU_MS = durationMs('cpu-timeout');
const TIMEOUT_MS = durationMs('timeout');
const INSTANCE_CONC = int('instance-concurrency', 1);
const SEED = int('seed', 0);
const SLACK_MS = int('slack-ms', 0);
const KILL_WINDOW_MS = int('kill-window-ms', 0);
const MAX_SECONDS = int('max-seconds', 1);
const TRAP_RATE = Number(flags['trap-rate']);
const SPIN_RATE = Number(flags['spin-rate']);
const MAX_FAILURES = int('max-failures', 0);
const STALL_MS = int('stall-seconds', 1) * 1000;
const WEIR_ARGS = String(flags['weir-args']).split(/\s+/).filter((a) => a !== '');
const BOUND_MS = Math.max(CPU_MS, TIMEOUT_MS) + SLACK_MS;

// ---- the request mix ----

const COUNT = 0, TRAP = 1, SPIN = 2;
/** The outcome code of a 503 that is not the watchdog's (no Retry-After, or another text). */
const OTHER_503 = 1503;
const CLASS_NAMES = ['/count?ms=0', '/trap', '/spin'];
const PATHS = ['/count?ms=0', '/trap', '/spin'];


const kinds = new Uint8Array(N);
{
  const rand = mulberry32(SEED); // seeded: every run sends the same sequence
  for (let i = 0; i < N; i++) {
    const r = rand();
    kinds[i] = r < SPIN_RATE ? SPIN : r < SPIN_RATE + TRAP_RATE ? TRAP : COUNT;
  }
}

// ---- the server ----

if (!existsSync(weirBin)) { console.error('soak: dist/cli/main.js is missing: run `npm run build` first'); process.exit(2); }
const wasm = await buildLimitsService();
if (!wasm) { console.error('soak: cannot build the limits service (componentize-qjs or the WASI 0.3 WIT is not available)'); process.exit(2); }

let bin = weirBin;
let snapshot: string | null = null;
if (!flags['in-place']) {
  snapshot = mkdtempSync(join(tmpdir(), 'weir-soak-'));
  cpSync(join(repoRoot, 'dist'), join(snapshot, 'dist'), { recursive: true, preserveTimestamps: true });
  copyFileSync(join(repoRoot, 'package.json'), join(snapshot, 'package.json'));
  bin = join(snapshot, 'dist', 'cli', 'main.js');
}
const removeSnapshot = () => { if (snapshot) { rmSync(snapshot, { recursive: true, force: true }); snapshot = null; } };

const serveArgs = [
  bin, 'serve', '--addr', '127.0.0.1:0', '--workers', String(WORKERS), '--cpu-timeout', String(flags['cpu-timeout']),
  '-W', `timeout=${flags.timeout}`, '--max-instance-concurrent-reuse-count', String(INSTANCE_CONC), ...WEIR_ARGS, wasm,
];
console.log(`soak: ${N} requests, concurrency ${C}, seed ${SEED}: ${(TRAP_RATE * 100).toFixed(2)}% /trap, ${(SPIN_RATE * 100).toFixed(2)}% /spin`);
console.log(`soak: cwd ${repoRoot}`);
if (snapshot) console.log(`soak: running a copy of dist/ in ${snapshot}`);
console.log(`soak: ${process.execPath} ${serveArgs.map((a) => relative(repoRoot, a).startsWith('..') ? a : (a.startsWith('/') ? relative(repoRoot, a) : a)).join(' ')}`);
try {
  console.log(`soak: WEIR_SERVE_LISTENER=${process.env.WEIR_SERVE_LISTENER ?? '(unset: one listening socket shared by the workers)'}`);
  console.log(`soak: kernel ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, net.ipv4.tcp_migrate_req=${readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim()}, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
} catch { /* not Linux */ }

const t00 = performance.now();
const child = spawn(process.execPath, serveArgs, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
const killChild = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); removeSnapshot(); };
process.on('exit', killChild);
/** Why the load stopped before N requests (null: it did not). */
let stoppedEarly: string | null = null;
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    // the first signal stops sending and reports; a second one kills
    if (interrupted || !url) { killChild(); process.exit(130); }
    interrupted = true;
    stoppedEarly ??= `stopped by ${sig}`;
  });
}
const childExit = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
child.stdout!.resume();

// What weir says on stderr: watchdog kills, unexpected worker exits, trapped instances.
const killTimes: number[] = [];
const kills: { t: number; worker: number }[] = [];
const stderrStats = {
  kills: 0, killed500: 0, killed503: 0, killedReset: 0,
  /** unread requests handed to another worker (handover.ts), and how many of those got 503 instead (no answer in time) */
  handedOver: 0, handoverLate: 0,
  /** connections between requests moved whole to another worker (handover.ts) */
  moved: 0,
  unexpectedExits: [] as string[],
  traps: 0, trapNeighbours: 0,
  other: new Map<string, number>(),
};
let url = '';
const weirLog = flags['weir-log'] ? createWriteStream(String(flags['weir-log'])) : null;
/** Lines about a worker (its error, its unexpected exit), with seconds since weir started. */
const workerTrouble: string[] = [];
const ready = new Promise<void>((resolve, reject) => {
  let buf = '';
  const timer = setTimeout(() => reject(new Error('weir serve did not print its Serving line within 120 s')), 120_000);
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const at = ((performance.now() - t00) / 1000).toFixed(3);
      weirLog?.write(`${at} ${line}\n`);
      let m;
      if (!url && (m = /^Serving HTTP on (http:\/\/\S+?)\/?$/.exec(line))) { url = m[1]; clearTimeout(timer); resolve(); continue; }
      if ((m = /worker stopped\b[^(]*\((1 request answered 500, )?(\d+) answered 503, (?:(\d+) connection\(s\) moved to another worker, )?(?:(\d+) unread handed to another worker, )?(\d+) reset\)/.exec(line))) {
        killTimes.push(performance.now());
        kills.push({ t: performance.now(), worker: Number(/worker (\d+):/.exec(line)?.[1] ?? 0) });
        stderrStats.kills++;
        if (m[1]) stderrStats.killed500++;
        stderrStats.killed503 += Number(m[2]);
        stderrStats.moved += Number(m[3] ?? 0);
        stderrStats.handedOver += Number(m[4] ?? 0);
        stderrStats.killedReset += Number(m[5]);
        continue;
      }
      if ((m = /^weir: worker \d+: (\d+) of \d+ request\(s\) handed to another worker got no answer/.exec(line))) { stderrStats.handoverLate += Number(m[1]); continue; }
      if (/worker \d+ exited \(code/.test(line)) { stderrStats.unexpectedExits.push(line); workerTrouble.push(`${at} s: ${line}`); continue; }
      if (/^weir: worker \d+: /.test(line)) workerTrouble.push(`${at} s: ${line}`);
      if ((m = /instance \d+ failed: .*\((\d+) other request\(s\) in flight on it fail\)/.exec(line))) {
        stderrStats.traps++;
        stderrStats.trapNeighbours += Number(m[1]);
        continue;
      }
      const key = line.replace(/[0-9]+/g, 'N').slice(0, 140);
      stderrStats.other.set(key, (stderrStats.other.get(key) ?? 0) + 1);
    }
  });
  child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`weir serve exited (${code ?? signal}) before serving: ${buf}`)); });
});
try {
  await ready;
} catch (e) {
  console.error(`soak: ${(e as Error).message}`);
  killChild();
  process.exit(2);
}
const pid = child.pid!;
console.log(`soak: serving on ${url} (pid ${pid}) after ${Math.round(performance.now() - t00)} ms`);

// ---- sampling RSS and fds every second ----

/** VmRSS and its parts (RssAnon: heaps and linear memories; RssFile: mapped files, the node binary's code most of all), KiB. */
function rssParts(): { rss: number; anon: number; file: number } {
  try {
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (k: string) => { const m = new RegExp(`${k}:\\s+(\\d+) kB`).exec(st); return m ? Number(m[1]) : NaN; };
    return { rss: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile') };
  } catch { return { rss: NaN, anon: NaN, file: NaN }; }
}
const rssKiB = () => rssParts().rss;
function fdCount(): number {
  try { return readdirSync(`/proc/${pid}/fd`).length; } catch { return NaN; }
}

interface Sample { t: number; done: number; rss: number; anon: number; file: number; kills: number; fds: number }
const samples: Sample[] = [];
let done = 0;
/** Answers no rule excuses, counted as they come (resets are judged at the end, by time). */
let unexcused = 0;
const warmupAt = Math.max(1, Math.floor(N / 10));
let warmupSample = null as Sample | null; // set by the sampler
const idleBefore = { rss: rssKiB(), fds: fdCount() };
const loadStart = performance.now();
let lastPrint = loadStart;
const sampler = setInterval(() => {
  const s = { t: performance.now(), done, ...rssParts(), kills: stderrStats.kills, fds: fdCount() };
  samples.push(s);
  if (!warmupSample && done >= warmupAt) warmupSample = s;
  if (s.t - lastPrint >= 15_000) {
    lastPrint = s.t;
    const secs = (s.t - loadStart) / 1000;
    console.log(`soak: ${Math.round(secs)} s: ${done}/${N} done (${Math.round(done / secs)}/s), RSS ${(s.rss / 1024).toFixed(1)} MiB, ${s.fds} fds, ${stderrStats.kills} watchdog restarts, ${unexcused} unexcused answers`);
  }
}, 1000);

// ---- the load ----

// Per request: its outcome (HTTP status, or a negative error index) and how long it took.
const outcome = new Int16Array(N);
const latency = new Float32Array(N);
const errorLabels: string[] = [];
const errorIndex = new Map<string, number>();
interface ErrorEvent { i: number; t: number; label: string; reused: boolean; localPort?: number; wall: number }
const errors: ErrorEvent[] = [];
/** Non-200 answers that are not the expected ones, with a sample body. */
const odd = new Map<string, { n: number; body: string }>();
const collateral503 = [0, 0, 0];
let plain503 = 0;
let bad200 = 0;

function errCode(label: string): number {
  let k = errorIndex.get(label);
  if (k === undefined) { k = errorLabels.length; errorLabels.push(label); errorIndex.set(label, k); }
  return -(k + 1);
}

const deadline = loadStart + MAX_SECONDS * 1000;
let next = 0;
let last200 = loadStart;

function one(i: number, agent: Agent): Promise<void> {
  const kind = kinds[i];
  const t0 = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const finish = (code: number) => {
      if (settled) return;
      settled = true;
      outcome[i] = code;
      latency[i] = performance.now() - t0;
      done++;
      resolve();
    };
    const fail = (e: unknown, phase: string) => {
      const err = e as NodeJS.ErrnoException;
      const label = `${phase}: ${err.code ?? ''}${err.code && err.message !== err.code ? ` (${err.message})` : err.code ? '' : err.message}`;
      errors.push({ i, t: performance.now(), label, reused: req.reusedSocket, localPort: req.socket?.localPort ?? lastLocalPort, wall: Date.now() });
      if (!/ECONNRESET|socket hang up|aborted|EPIPE/.test(label)) unexcused++;
      finish(errCode(label));
    };
    const req = request(`${url}${PATHS[kind]}`, { agent, timeout: BOUND_MS + 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => fail(e, 'response'));
      res.on('end', () => {
        const status = res.statusCode!;
        const body = Buffer.concat(chunks).toString('utf8');
        if (status === 200 && !body.startsWith('peak=')) bad200++;
        if (status === 200) last200 = performance.now();
        // 503 + Retry-After with the watchdog's text: a casualty of a runaway on the same worker.
        const watchdog503 = status === 503 && res.headers['retry-after'] !== undefined && body.includes('--cpu-timeout');
        if (watchdog503) collateral503[kind]++;
        else if (status === 503) plain503++;
        const expected = status === 200 ? kind === COUNT : status === 500 ? kind !== COUNT : watchdog503;
        if (!expected) {
          const key = `${CLASS_NAMES[kind]} -> ${status}`;
          const o = odd.get(key) ?? { n: 0, body: body.slice(0, 200) };
          o.n++;
          odd.set(key, o);
        }
        if (!expected) unexcused++;
        finish(status === 503 && !watchdog503 ? OTHER_503 : status);
      });
      res.on('close', () => { if (!res.complete) fail(new Error('aborted mid-response'), 'response'); });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${BOUND_MS + 10_000} ms`), { code: 'CLIENT_TIMEOUT' })));
    // The socket's local port names the connection in a packet capture (`localPort` is gone after a reset).
    let lastLocalPort: number | undefined;
    req.on('socket', (sock) => { lastLocalPort = sock.localPort; if (lastLocalPort === undefined) sock.once('connect', () => { lastLocalPort = sock.localPort; }); });
    req.on('error', (e) => fail(e, 'request'));
    req.end();
  });
}

const agents: Agent[] = [];
await Promise.all(Array.from({ length: C }, async () => {
  // One client = one kept-alive connection (a new one after a `connection: close` answer or a reset).
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(agent);
  for (;;) {
    if (stoppedEarly) return;
    if (performance.now() > deadline) { stoppedEarly = `--max-seconds ${MAX_SECONDS} reached`; return; }
    if (performance.now() - last200 > STALL_MS) { stoppedEarly = `no request answered 200 for ${STALL_MS / 1000} s`; return; }
    if (MAX_FAILURES > 0 && unexcused > MAX_FAILURES) { stoppedEarly = `more than --max-failures ${MAX_FAILURES} unexcused answers`; return; }
    const i = next++;
    if (i >= N) return;
    await one(i, agent);
  }
}));
const loadEnd = performance.now();
clearInterval(sampler);
const finalLoadSample: Sample = { t: loadEnd, done, ...rssParts(), kills: stderrStats.kills, fds: fdCount() };
samples.push(finalLoadSample);
for (const a of agents) a.destroy();
// Let the server see the closes (and its idle instances time out) before the idle counts.
await new Promise((r) => setTimeout(r, 3000));
const idleAfter = { rss: rssKiB(), fds: fdCount() };
const aliveAtEnd = child.exitCode === null && child.signalCode === null;

// ---- stop the server: SIGTERM drains; SIGKILL if it does not exit ----

child.kill('SIGTERM');
const forced = setTimeout(() => child.kill('SIGKILL'), 15_000);
const exit = await childExit;
clearTimeout(forced);
removeSnapshot();

// ---- analysis ----

const mib = (k: number) => `${(k / 1024).toFixed(1)} MiB`;

const sent = Math.min(next, N);
const secs = (loadEnd - loadStart) / 1000;
const byClass = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>()];
const lats: number[][] = [[], [], []];
const sentBy = [0, 0, 0];
let resetsInKill = 0, resetsInKillNew = 0, resetsInKillReused = 0;
const resetList: ErrorEvent[] = [];
const failuresBy = new Map<string, number>();
const fail = (what: string, n = 1) => failuresBy.set(what, (failuresBy.get(what) ?? 0) + n);

killTimes.sort((a, b) => a - b);
function nearKill(t: number): boolean {
  // binary search for the kill closest to t
  let lo = 0, hi = killTimes.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (killTimes[mid] < t) lo = mid + 1; else hi = mid; }
  for (const j of [lo - 1, lo]) if (j >= 0 && j < killTimes.length && Math.abs(killTimes[j] - t) <= KILL_WINDOW_MS) return true;
  return false;
}
const errorAt = new Map<number, ErrorEvent>();
for (const e of errors) errorAt.set(e.i, e);

for (let i = 0; i < sent; i++) {
  const kind = kinds[i];
  sentBy[kind]++;
  const o = outcome[i];
  lats[kind].push(latency[i]);
  let label: string;
  if (o > 0) {
    label = o === OTHER_503 ? '503 (not the watchdog\'s)' : String(o);
  } else {
    const e = errorAt.get(i)!;
    const base = errorLabels[-o - 1];
    const reset = /ECONNRESET|socket hang up|aborted|EPIPE/.test(base);
    if (reset && nearKill(e.t)) {
      label = `reset during a worker kill (${e.reused ? 'kept-alive' : 'new'} connection)`;
      resetsInKill++;
      resetList.push(e);
      if (e.reused) resetsInKillReused++; else resetsInKillNew++;
      // Since stop 22 none is expected (one listening socket shared by the workers): a non-faulty request
      // reset at a kill fails the check; on a faulty one (its own worker is being stopped) it is counted.
      if (kind === COUNT) fail(`${CLASS_NAMES[kind]}: ${label}`);
    } else {
      const near = nearKill(e.t) ? ` (within ±${KILL_WINDOW_MS} ms of a worker kill)` : ` (no worker kill within ±${KILL_WINDOW_MS} ms)`;
      label = `${base}${near}${e.reused ? ' [kept-alive]' : ' [new connection]'}`;
      fail(`${CLASS_NAMES[kind]}: ${label}`);
    }
  }
  byClass[kind].set(label, (byClass[kind].get(label) ?? 0) + 1);
}

// Status checks per class. collateral: 503 + Retry-After + the watchdog's body.
const statusCount = (kind: number, s: number) => byClass[kind].get(String(s)) ?? 0;
const count200 = statusCount(COUNT, 200);
const countCollateral = collateral503[COUNT];
const count500 = statusCount(COUNT, 500);
// A trap fails every request in flight on its instance (docs/SERVE.md): with --instance-concurrency > 1
// those 500s are excused up to the number weir itself reported on stderr.
const collateral500 = INSTANCE_CONC > 1 ? Math.min(count500, stderrStats.trapNeighbours) : 0;
for (const [label, n] of byClass[COUNT]) {
  if (label === '200' || label.startsWith('reset during') || (!/^\d+$/.test(label) && label !== '503 (not the watchdog\'s)')) continue;
  if (label === '503') continue; // collateral: the watchdog's answer
  if (label === '500') { if (n > collateral500) fail('/count?ms=0: 500', n - collateral500); continue; }
  fail(`/count?ms=0: ${label}`, n);
}
for (const kind of [TRAP, SPIN]) {
  for (const [label, n] of byClass[kind]) {
    if (label === '500' || label === '503' || label.startsWith('reset during') || (!/^\d+$/.test(label) && label !== '503 (not the watchdog\'s)')) continue;
    fail(`${CLASS_NAMES[kind]}: ${label}`, n);
  }
}
if (bad200) fail('200 without the service\'s "peak=" body', bad200);

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  return xs[Math.min(xs.length - 1, Math.floor((xs.length - 1) * p))];
}
for (const xs of lats) xs.sort((a, b) => a - b);

// RSS and fds.
// The warm-up value: the median of the samples taken in the second half of the warm-up
// (a single sample could land on a worker's start-up peak or its kill's dip).
const after = warmupSample ? samples.filter((s) => s.t >= warmupSample!.t) : [];
const warmupTail = samples.filter((s) => s.done >= warmupAt / 2 && s.done < warmupAt).map((s) => s.rss).sort((a, b) => a - b);
const rssW = warmupTail.length ? warmupTail[warmupTail.length >> 1] : warmupSample?.rss ?? NaN;
const meanRss = (xs: Sample[]) => xs.reduce((a, s) => a + s.rss, 0) / xs.length;
const tenth = Math.max(1, Math.floor(after.length / 10));
const rssTrend = after.length ? `mean of the first tenth after warm-up ${mib(meanRss(after.slice(0, tenth)))}, of the last tenth ${mib(meanRss(after.slice(-tenth)))}` : '';
const rssMin = Math.min(...after.map((s) => s.rss));
const rssMax = Math.max(...after.map((s) => s.rss));
// The level the check holds to ±10%: the median of each 10 s of samples. A single
// second's sample swings with the worker restarts this load causes (one worker's heap
// and instances are ~20% of the process, freed at its kill and grown again by its
// replacement within seconds; the soak kills one every ~0.6 s: docs/SERVE.md, Soak);
// a leak or a lasting step moves every window that follows it.
const RSS_WINDOW = 10;
function levels(part: (s: Sample) => number): number[] {
  const out: number[] = [];
  for (let i = 0; i + RSS_WINDOW <= after.length || (i === 0 && after.length > 0); i++) {
    const w = after.slice(i, i + RSS_WINDOW).map(part).sort((a, b) => a - b);
    out.push(w[w.length >> 1]);
  }
  return out;
}
const windows = levels((s) => s.rss);
const levelMin = Math.min(...windows);
const levelMax = Math.max(...windows);
// Which part moves (printed, not checked): anonymous memory (V8 heaps, malloc, linear memories) or mapped files.
const partRange = (part: (s: Sample) => number) => { const l = levels(part); return `${mib(Math.min(...l))}..${mib(Math.max(...l))}`; };
const rssOk = after.length > 0 && levelMin >= rssW * 0.9 && levelMax <= rssW * 1.1;
const fdW = warmupSample?.fds ?? NaN;
const fdMax = Math.max(...after.map((s) => s.fds));
const fdSlack = C + 16;
const fdOk = after.length > 0 && fdMax <= fdW + fdSlack && idleAfter.fds <= idleBefore.fds + 2;

const checks: { name: string; verdict: 'PASS' | 'FAIL' | 'INFO'; detail: string }[] = [];
const check = (name: string, ok: boolean, detail: string) => checks.push({ name, verdict: ok ? 'PASS' : 'FAIL', detail });

check('all requests sent and settled', !stoppedEarly && done === N, `${done}/${N}${stoppedEarly ? ` (load stopped: ${stoppedEarly})` : ''}`);
const countFailures = [...failuresBy].filter(([k]) => !k.startsWith('/trap') && !k.startsWith('/spin'));
check('non-faulty requests answered 200', countFailures.length === 0,
  `${count200}/${sentBy[COUNT]} 200, ${countCollateral} collateral 503${INSTANCE_CONC > 1 ? `, ${collateral500} collateral 500 (shared a trapped instance)` : ''}; failures: ${countFailures.length === 0 ? 'none' : countFailures.map(([k, n]) => `${k} ×${n}`).join('; ')}`);
const onlyFaultAnswers = (k: number) => ![...byClass[k].keys()].some((l) => l !== '500' && l !== '503' && !l.startsWith('reset during'));
check('/trap answered 500 (503 on a stopped worker)', onlyFaultAnswers(TRAP), [...byClass[TRAP]].map(([k, n]) => `${k} ×${n}`).join(', '));
check('/spin answered 500 (503 queued behind a runaway)', onlyFaultAnswers(SPIN), [...byClass[SPIN]].map(([k, n]) => `${k} ×${n}`).join(', ') || 'none sent');
const maxLat = lats.map((xs) => xs.length ? xs[xs.length - 1] : 0);
check(`no request outlives max(cpu-timeout, timeout) + ${SLACK_MS} ms = ${BOUND_MS} ms`, Math.max(...maxLat) <= BOUND_MS,
  lats.map((xs, k) => `${CLASS_NAMES[k]} max ${maxLat[k].toFixed(0)} ms`).join(', '));
const rel = (x: number) => `${x >= rssW ? '+' : ''}${((x / rssW - 1) * 100).toFixed(1)}%`;
check(`RSS level (median of each ${RSS_WINDOW} s) within ±10% of its warm-up value`, rssOk, after.length === 0 ? 'no sample after warm-up (run too short)' :
  `warm-up ${mib(rssW)} (median of ${warmupTail.length} samples), then ${RSS_WINDOW} s medians from ${mib(levelMin)} (${rel(levelMin)}) to ${mib(levelMax)} (${rel(levelMax)}); single 1 s samples from ${mib(rssMin)} (${rel(rssMin)}) to ${mib(rssMax)} (${rel(rssMax)}), final ${mib(finalLoadSample.rss)}; idle before ${mib(idleBefore.rss)}, idle after ${mib(idleAfter.rss)}; ${rssTrend}; ${RSS_WINDOW} s levels of its parts: anonymous ${partRange((s) => s.anon)}, file-backed ${partRange((s) => s.file)}`);
check('open fds flat', fdOk,
  `idle before ${idleBefore.fds}, warm-up ${fdW}, max ${fdMax} (allowed ${fdW + fdSlack}), last under load ${finalLoadSample.fds}, idle after ${idleAfter.fds} (allowed ${idleBefore.fds + 2})`);
check('no worker died on its own; weir alive until SIGTERM', stderrStats.unexpectedExits.length === 0 && aliveAtEnd,
  `${stderrStats.unexpectedExits.length} unexpected exits${aliveAtEnd ? '' : ', weir was not running at the end'}`);
check('SIGTERM drains and exits 0', exit.code === 0, `exit ${exit.code ?? exit.signal}`);
checks.push({ name: 'resets during a worker kill (a non-faulty one fails the check above)', verdict: 'INFO',
  detail: `${resetsInKill} (${resetsInKillNew} on a new connection, ${resetsInKillReused} on a kept-alive one); weir counted ${stderrStats.killedReset} reset at its kills` });

// ---- report ----

console.log('');
console.log(`soak: ${sent} requests in ${secs.toFixed(1)} s = ${Math.round(done / secs)} requests/s (concurrency ${C}, ${WORKERS} workers)`);
console.log(`soak: weir restarted ${stderrStats.kills} workers (watchdog: ${stderrStats.killed500} answered 500, ${stderrStats.killed503} answered 503, ${stderrStats.moved} connections moved whole to another worker, ${stderrStats.handedOver} unread requests handed to another worker of which ${stderrStats.handoverLate} got 503 instead, ${stderrStats.killedReset} reset); ${stderrStats.traps} trapped instances discarded (${stderrStats.trapNeighbours} neighbours failed with them)`);
console.log('');
const pad = (s: string, n: number) => s.length >= n ? s : s + ' '.repeat(n - s.length);
const rpad = (s: string, n: number) => s.length >= n ? s : ' '.repeat(n - s.length) + s;
console.log(`${pad('class', 13)}${rpad('sent', 9)}${rpad('p50 ms', 9)}${rpad('p99 ms', 9)}${rpad('max ms', 9)}  outcomes`);
for (const k of [COUNT, TRAP, SPIN]) {
  const outs = [...byClass[k]].sort((a, b) => b[1] - a[1]).map(([l, n]) => `${l === '503' ? '503 collateral' : l} ×${n}`).join(', ');
  console.log(`${pad(CLASS_NAMES[k], 13)}${rpad(String(sentBy[k]), 9)}${rpad(pct(lats[k], 0.5).toFixed(1), 9)}${rpad(pct(lats[k], 0.99).toFixed(1), 9)}${rpad(maxLat[k].toFixed(0), 9)}  ${outs}`);
}
if (odd.size) {
  console.log('');
  console.log('unexpected answers (with a sample body):');
  for (const [k, o] of odd) console.log(`  ${k} ×${o.n}: ${JSON.stringify(o.body)}`);
}
if (plain503) console.log(`503s without the watchdog's answer: ${plain503}`);
// Each reset at a kill with its client port and wall-clock time, to find it in a packet capture
// (tcpdump -i lo), and its distance from the nearest kill the soak saw on weir's stderr.
if (resetList.length) {
  console.log('');
  console.log(`resets at a kill (first 40 of ${resetList.length}): wall-clock ms, client port, ms from the nearest kill, error`);
  for (const e of resetList.slice(0, 40)) {
    const nearest = killTimes.reduce((b, k) => Math.abs(k - e.t) < Math.abs(b - e.t) ? k : b, Infinity);
    console.log(`  ${e.wall} port ${e.localPort ?? '?'} ${(e.t - nearest).toFixed(1)} ms ${e.reused ? 'kept-alive' : 'new'}: ${e.label}`);
  }
}
// Failed connections come in bursts (a client whose request fails at once sends its next one at once):
// group them into episodes (gaps under 1 s) and show the watchdog kills just before each.
{
  const failing = errors.filter((e) => !(/ECONNRESET|socket hang up|aborted|EPIPE/.test(e.label) && nearKill(e.t))).sort((a, b) => a.t - b.t);
  const episodes: { start: number; end: number; n: number; labels: Set<string> }[] = [];
  for (const e of failing) {
    const last = episodes[episodes.length - 1];
    if (last && e.t - last.end < 1000) { last.end = e.t; last.n++; last.labels.add(e.label.replace(/127\.0\.0\.1:\d+/, 'ADDR')); }
    else episodes.push({ start: e.t, end: e.t, n: 1, labels: new Set([e.label.replace(/127\.0\.0\.1:\d+/, 'ADDR')]) });
  }
  if (episodes.length) {
    console.log('');
    console.log(`failed requests (not resets at a kill) came in ${episodes.length} episode(s); the first ones, with the watchdog kills in the 3 s before:`);
    for (const ep of episodes.slice(0, 6)) {
      const before = kills.filter((k) => k.t >= ep.start - 3000 && k.t <= ep.end).map((k) => `worker ${k.worker} at ${Math.round(k.t - ep.start)} ms`);
      console.log(`  at ${((ep.start - loadStart) / 1000).toFixed(1)} s, ${Math.round(ep.end - ep.start)} ms long, ${ep.n} requests: ${[...ep.labels].join(' / ')}; kills: ${before.join(', ') || 'none'}`);
    }
  }
}
if (workerTrouble.length) {
  console.log('');
  console.log(`worker errors and unexpected exits (seconds since weir started; load began at ${((loadStart - t00) / 1000).toFixed(1)} s):`);
  for (const l of workerTrouble.slice(0, 12)) console.log(`  ${l}`);
}
const others = [...stderrStats.other].sort((a, b) => b[1] - a[1]).slice(0, 8);
if (others.length) {
  console.log('');
  console.log('other weir stderr lines (digits as N):');
  for (const [l, n] of others) console.log(`  ×${n} ${l}`);
}
console.log('');
{
  const step = Math.max(1, Math.ceil(samples.length / 40));
  const series = samples.filter((_, k) => k % step === 0 || k === samples.length - 1);
  console.log(`RSS MiB every ${step} s: ${series.map((s) => (s.rss / 1024).toFixed(0)).join(' ')}`);
  console.log(`fds every ${step} s: ${series.map((s) => s.fds).join(' ')}`);
}
console.log(`RSS samples (1/s, ${samples.length}): first ${mib(samples[0]?.rss ?? NaN)}, warm-up ${mib(rssW)}, min ${mib(rssMin)}, max ${mib(rssMax)}, final ${mib(finalLoadSample.rss)}`);
console.log('');
for (const c of checks) console.log(`${pad(c.verdict, 6)}${c.name}: ${c.detail}`);
const failed = checks.filter((c) => c.verdict === 'FAIL').length;
console.log('');
console.log(`soak: ${failed === 0 ? 'all checks passed' : `${failed} check(s) FAILED`}`);
console.log(`soak-json: ${JSON.stringify({
  requests: sent, seconds: Number(secs.toFixed(1)), rps: Math.round(done / secs), concurrency: C, workers: WORKERS,
  cpuTimeoutMs: CPU_MS, timeoutMs: TIMEOUT_MS, instanceConcurrency: INSTANCE_CONC,
  classes: CLASS_NAMES.map((n, k) => ({ class: n, sent: sentBy[k], maxMs: Math.round(maxLat[k]), p99Ms: Number(pct(lats[k], 0.99).toFixed(1)), outcomes: Object.fromEntries(byClass[k]) })),
  rssKiB: { idleBefore: idleBefore.rss, warmup: rssW, min: rssMin, max: rssMax, levelMin, levelMax, final: finalLoadSample.rss, idleAfter: idleAfter.rss },
  fds: { idleBefore: idleBefore.fds, warmup: fdW, max: fdMax, last: finalLoadSample.fds, idleAfter: idleAfter.fds },
  restarts: stderrStats.kills, moved: stderrStats.moved, handedOver: stderrStats.handedOver, handoverLate: stderrStats.handoverLate, unexpectedExits: stderrStats.unexpectedExits.length, resetsDuringKill: resetsInKill, exit: exit.code ?? exit.signal,
  failed,
})}`);
weirLog?.end();
if (flags.samples) writeFileSync(String(flags.samples), samples.map((x) => JSON.stringify({ ...x, t: Math.round(x.t - loadStart) })).join('\n') + '\n');
process.exitCode = failed === 0 ? 0 : 1;

// What the `weir serve` benches share: starting a server process and reading
// its URL from the first stderr line, and driving it with wrk (50 connections).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { median } from './harness.ts';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The built `weir` command. */
export const weir = join(root, 'dist', 'cli', 'main.js');
export const CONNECTIONS = 50;

/** wrk is there, or (as root) installed with apt-get; otherwise the note says why rows are skipped. */
export function haveWrk(): { ok: boolean; note: string } {
  if (spawnSync('wrk', ['--version']).error === undefined) return { ok: true, note: '' };
  if (process.getuid?.() === 0) {
    const r = spawnSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'ignore' });
    if (r.status === 0 && spawnSync('wrk', ['--version']).error === undefined) return { ok: true, note: 'installed wrk with apt-get' };
  }
  return { ok: false, note: 'wrk not installed (apt-get install -y wrk): skipped' };
}

export interface ServerProc {
  url: string;
  child: ChildProcess;
  pid: number;
  /** From spawn to the first stderr line. */
  startedMs: number;
  stop(): Promise<void>;
}

/**
 * Runs `node ...args` and resolves once its first stderr line names an
 * http(s) URL. Later stderr output (an access log) is drained. `stop` sends
 * `signal` (SIGKILL for benches that need no drain) and waits for the exit.
 */
export function startServer(args: string[], opts: { env?: Record<string, string>; signal?: NodeJS.Signals } = {}): Promise<ServerProc> {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
  const signal = opts.signal ?? 'SIGINT';
  let err = '';
  let found = false;
  return new Promise((res, rej) => {
    const t = setTimeout(() => { child.kill('SIGKILL'); rej(new Error(`server did not start: ${err}`)); }, 30_000);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      if (found) return;
      err += d;
      const m = /https?:\/\/\S+/.exec(err);
      if (m && err.includes('\n')) {
        found = true;
        clearTimeout(t);
        res({
          url: m[0],
          child,
          pid: child.pid!,
          startedMs: performance.now() - t0,
          stop: () => new Promise<void>((r) => {
            child.once('exit', () => r());
            child.kill(signal);
            if (signal !== 'SIGKILL') setTimeout(() => child.kill('SIGKILL'), 5000).unref();
          }),
        });
      }
    });
    child.once('exit', (c) => { clearTimeout(t); if (!found) rej(new Error(`server exited ${c}: ${err}`)); });
  });
}

/** `weir serve --addr 127.0.0.1:0 ...args`, stopped with SIGKILL. */
export function startWeirServe(args: string[]): Promise<ServerProc> {
  return startServer([weir, 'serve', '--addr', '127.0.0.1:0', ...args], { signal: 'SIGKILL' });
}

/** wrk -t2 -c50 for `seconds`: requests/s and the p99 latency in ms. */
export async function wrk(url: string, seconds: number): Promise<{ rps: number; p99ms: number }> {
  const out = await new Promise<string>((res, rej) => {
    const c = spawn('wrk', ['-t2', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', url]);
    let o = '';
    c.stdout.setEncoding('utf8');
    c.stdout.on('data', (d: string) => { o += d; });
    c.on('error', rej);
    c.on('exit', () => res(o));
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const p = /99%\s+([\d.]+)(us|ms|s)/.exec(out);
  const p99ms = p ? Number(p[1]) * (p[2] === 'us' ? 0.001 : p[2] === 's' ? 1000 : 1) : NaN;
  return { rps, p99ms };
}

/** Requests/s alone. */
export async function wrkRps(url: string, seconds: number): Promise<number> {
  return (await wrk(url, seconds)).rps;
}

/**
 * Two servers measured side by side: one warm-up run each, then `rounds`
 * alternating wrk runs of `seconds`; the best requests/s of each side is kept,
 * so a noisy neighbour hurts both alike.
 */
export async function bestOfAlternating(urlA: string, urlB: string, seconds: number, rounds = 2): Promise<{ a: number; b: number }> {
  await wrkRps(urlA, 1); await wrkRps(urlB, 1);
  let a = 0;
  let b = 0;
  for (let i = 0; i < rounds; i++) {
    a = Math.max(a, await wrkRps(urlA, seconds));
    b = Math.max(b, await wrkRps(urlB, seconds));
  }
  return { a, b };
}

/**
 * Two servers compared pair by pair: `pairs` pairs of adjacent wrk runs, the
 * order alternating (A then B, B then A, ...), and the median of the per-pair
 * ratios A/B. A slow drift of this shared machine moves both runs of a pair
 * alike, so this is steadier than comparing bests: the same configuration on
 * both sides gave 0.985-1.002.
 */
export async function pairedRatio(urlA: string, urlB: string, seconds: number, pairs: number): Promise<{ ratio: number; a: number; b: number }> {
  await wrkRps(urlA, 1); await wrkRps(urlB, 1);
  const ratios: number[] = [], as: number[] = [], bs: number[] = [];
  for (let i = 0; i < pairs; i++) {
    let a: number, b: number;
    if (i % 2 === 0) { a = await wrkRps(urlA, seconds); b = await wrkRps(urlB, seconds); } else { b = await wrkRps(urlB, seconds); a = await wrkRps(urlA, seconds); }
    ratios.push(a / b); as.push(a); bs.push(b);
  }
  return { ratio: median(ratios), a: median(as), b: median(bs) };
}

/** A process's resident set (MiB), its threads included (Linux: /proc). */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

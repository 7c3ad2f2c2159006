// What the `weir serve` benches share: starting a server process and reading
// its URL from the first stderr line, and driving it with wrk (50 connections).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
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
export function startServer(args: string[], opts: { env?: Record<string, string>; signal?: NodeJS.Signals; cpus?: string } = {}): Promise<ServerProc> {
  const t0 = performance.now();
  // taskset execs node, so the child's pid is the server's
  const [cmd, argv] = opts.cpus ? ['taskset', ['-c', opts.cpus, process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
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

/** `weir serve --addr 127.0.0.1:0 ...args`, stopped with SIGKILL; `cpus` pins it (taskset). */
export function startWeirServe(args: string[], cpus?: string): Promise<ServerProc> {
  return startServer([weir, 'serve', '--addr', '127.0.0.1:0', ...args], { signal: 'SIGKILL', cpus });
}

/**
 * Where a paired comparison pins its processes: the server on the last CPU,
 * wrk (one thread) on the others, or null (no taskset, or one CPU). Unpinned,
 * the scheduler places wrk, the server's threads and V8's helper threads anew
 * in every process, and on this 2-core machine two servers of one
 * configuration read 0.87-1.26x apart pair by pair; pinned, within ±2.5% in
 * one run, but 0.89-1.24 in a later one on a busier day: pinning removes the
 * placement noise, not the neighbours'.
 */
export function pinning(): { server: string; wrk: string } | null {
  const n = availableParallelism();
  if (process.platform !== 'linux' || n < 2 || spawnSync('taskset', ['-c', '0', 'true']).status !== 0) return null;
  return { server: String(n - 1), wrk: n === 2 ? '0' : `0-${n - 2}` };
}

/** wrk -c50 for `seconds` (2 threads, or 1 pinned to `cpus`; `extra`: more wrk arguments, e.g. a header): requests/s and the p99 latency in ms. */
export async function wrk(url: string, seconds: number, cpus?: string, extra: string[] = []): Promise<{ rps: number; p99ms: number }> {
  const out = await new Promise<string>((res, rej) => {
    const args = [cpus ? '-t1' : '-t2', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', ...extra, url];
    const c = cpus ? spawn('taskset', ['-c', cpus, 'wrk', ...args]) : spawn('wrk', args);
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
export async function wrkRps(url: string, seconds: number, cpus?: string): Promise<number> {
  return (await wrk(url, seconds, cpus)).rps;
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
 * Two servers compared pair by pair, over fresh processes: `processes` times
 * both servers are started anew (which one first alternates), warmed up,
 * compared by `pairs` pairs of adjacent wrk runs (order alternating: A then
 * B, B then A, ...) and stopped; the ratio is the median of all the per-pair
 * ratios. A slow drift of this shared machine moves both runs of a pair
 * alike. Where it can (`pinning`), both servers run on one CPU and wrk on the
 * others, so thread placement does not decide. A server process keeps the
 * JIT decisions it made while warming up for its whole life, so two processes
 * of one configuration differ; pooling pairs from several processes averages
 * that out; `perProcess` has each process pair's own median.
 */
export async function pairedRatioFresh(startA: (cpus?: string) => Promise<ServerProc>, startB: (cpus?: string) => Promise<ServerProc>, seconds: number, processes: number, pairs: number): Promise<{ ratio: number; a: number; b: number; perProcess: number[]; pinned: string | null }> {
  const ratios: number[] = [], as: number[] = [], bs: number[] = [], perProcess: number[] = [];
  const pin = pinning();
  const run = (url: string, s: number) => wrkRps(url, s, pin?.wrk);
  for (let p = 0; p < processes; p++) {
    let a: ServerProc | null = null, b: ServerProc | null = null;
    try {
      if (p % 2 === 0) { a = await startA(pin?.server); b = await startB(pin?.server); } else { b = await startB(pin?.server); a = await startA(pin?.server); }
      await run(a.url, 1); await run(b.url, 1);
      const mine: number[] = [];
      for (let i = 0; i < pairs; i++) {
        let x: number, y: number;
        if ((p + i) % 2 === 0) { x = await run(a.url, seconds); y = await run(b.url, seconds); } else { y = await run(b.url, seconds); x = await run(a.url, seconds); }
        ratios.push(x / y); mine.push(x / y); as.push(x); bs.push(y);
      }
      perProcess.push(median(mine));
    } finally {
      try { await a?.stop(); } finally { await b?.stop(); }
    }
  }
  return { ratio: median(ratios), a: median(as), b: median(bs), perProcess, pinned: pin ? `servers on CPU ${pin.server}, wrk -t1 on CPU ${pin.wrk}` : null };
}

/** A bench row's note for a pairedRatioFresh result: both sides' medians, each process pair's ratio, the pinning. */
export function pairedNote(r: { a: number; b: number; perProcess: number[]; pinned: string | null }): string {
  return `medians ${Math.round(r.a)} vs ${Math.round(r.b)} req/s; per process pair ${r.perProcess.map((x) => x.toFixed(3)).join(', ')}; ${r.pinned ?? 'unpinned (no taskset)'}`;
}

/** A process's resident set (MiB), its threads included (Linux: /proc). */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

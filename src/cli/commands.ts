// The `weir` subcommands. Loaded by main.ts only after the Node version check.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { HELP, UsageError, parseArgs, wasiFlag } from './args.ts';
import type { GuestOptions, InspectOptions, RunOptions, ServeOptions } from './args.ts';
import type { WorkerRole } from '../serve/cli.ts';
import { printWit } from '../types/wit.ts';
import { shortRunTiering } from './tiering.ts';

export { beforeCodeCache } from './tiering.ts';

/** Runs weir with `argv` (arguments after the script path); resolves to the exit status. */
export async function main(argv: string[]): Promise<number> {
  let command;
  try {
    command = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      const more = e.command ? `weir ${e.command} --help` : 'weir --help';
      process.stderr.write(`weir: ${e.message}\nRun '${more}' for usage.\n`);
      return 2;
    }
    throw e;
  }
  // `weir inspect x.wasm | head` closes stdout early: that is not an error. Only the
  // commands that print through process.stdout touch it (creating it loads node's
  // tty/net/stream modules; `run` writes the guest's output to fd 1 itself).
  if (command.cmd === 'help' || command.cmd === 'version' || command.cmd === 'inspect') {
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      throw e;
    });
  }
  switch (command.cmd) {
    case 'help':
      process.stdout.write(HELP[command.topic ?? 'main'] ?? HELP.main);
      return 0;
    case 'version':
      process.stdout.write(`weir ${version()}\n`);
      return 0;
    case 'inspect':
      return inspect(command);
    case 'run':
      return run(command);
    case 'serve':
      return serve(command);
  }
}

export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Errors that describe the user's input: printed as one line, no stack unless --verbose. */
function isInputError(e: unknown): e is Error {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && (code === 'WEIR_DECODE' || code === 'WEIR_VALIDATION' || code === 'WEIR_LINK');
}

/** Reports an error for `file`; returns the exit status. */
export function report(file: string, e: unknown, verbose: boolean): number {
  if (isInputError(e)) {
    process.stderr.write(`weir: ${file}: ${e.message}\n`);
    if (verbose && e.stack) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err === 'object' && typeof err.code === 'string' && err.syscall !== undefined) {
    // A file-system error about the user's path.
    const what = err.code === 'ENOENT' ? 'no such file'
      : err.code === 'EISDIR' ? 'is a directory'
        : err.code === 'EACCES' ? 'permission denied' : err.message;
    process.stderr.write(`weir: ${file}: ${what}\n`);
    if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
  // Anything else is a bug in weir: show everything.
  process.stderr.write(`weir: ${file}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 1;
}

async function inspect(opts: InspectOptions): Promise<number> {
  try {
    const bytes = readFileSync(opts.file);
    const { Component } = await import('../host/component.ts');
    const component = Component.compile(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    process.stdout.write(printWit(component.type, opts.world));
    const { producersReport } = await import('./toolchains.ts');
    process.stdout.write(producersReport(component.producers, component.deviations));
    return 0;
  } catch (e) {
    return report(opts.file, e, opts.verbose);
  }
}

/** Exit status for a trap: 128 + SIGABRT, as wasmtime and a C program that abort()s. */
export const EXIT_TRAP = 134;

/** The guest environment from --inherit-env and --env (later settings win). */
export function guestEnv(opts: Pick<RunOptions, 'env' | 'inheritEnv'>, hostEnv: NodeJS.ProcessEnv = process.env): [string, string][] {
  const env = new Map<string, string>();
  if (opts.inheritEnv) for (const [k, v] of Object.entries(hostEnv)) if (v !== undefined) env.set(k, v);
  for (const { name, value } of opts.env) {
    if (value !== undefined) env.set(name, value);
    else if (hostEnv[name] !== undefined) env.set(name, hostEnv[name]!);
  }
  return [...env];
}

/** The outgoing-HTTP settings of --allow-outbound and -S http (for run and serve). */
export function guestHttpConfig(opts: GuestOptions): { allowOutbound: string[]; allowAll: boolean; log?: (m: string) => void } {
  return {
    allowOutbound: opts.allowOutbound,
    allowAll: wasiFlag(opts, 'http'),
    ...(opts.verbose ? { log: (m: string) => { process.stderr.write(`weir: ${m}\n`); } } : {}),
  };
}

/** The wasi:sockets policy of -S inherit-network, -S allow-ip-name-lookup and --allow-net (for run and serve). */
export function guestNetworkConfig(opts: GuestOptions): { inheritNetwork: boolean; allowIpNameLookup: boolean; allow: string[] } {
  return {
    inheritNetwork: wasiFlag(opts, 'inherit-network'),
    allowIpNameLookup: wasiFlag(opts, 'allow-ip-name-lookup'),
    allow: opts.allowNet,
  };
}

async function run(opts: RunOptions): Promise<number> {
  if (opts.limits?.timeoutMs !== undefined) {
    const { runWithTimeout } = await import('./limits.ts');
    return runWithTimeout(opts, EXIT_TRAP, import.meta.url); // the worker loads this module (or the bundle it is in)
  }
  return runHere(opts);
}

/** `weir run` in this thread; `started` is called once the component is compiled (-W timeout starts then). */
export async function runHere(opts: RunOptions, started?: () => void): Promise<number> {
  const { Component } = await import('../host/component.ts');
  const { Trap } = await import('../errors.ts');
  const { compileLimits, instanceLimits } = await import('./limits.ts');
  const { createWasiWith, importsNetwork } = await import('../wasi/base.ts');
  const { runCommand, findRunExport } = await import('../wasi/run.ts');
  const { deviationOptions } = await import('./toolchains.ts');
  const limits = compileLimits(opts); // -W max-memory-size etc. hold for linked components too
  // The component, then each --link'ed one, compiled alike.
  const parts = [];
  for (const file of [opts.file, ...(opts.links ?? [])]) {
    try {
      const bytes = readFileSync(file);
      shortRunTiering(bytes.byteLength);
      parts.push({ name: basename(file), component: Component.compile(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
        ...deviationOptions(file, opts.strict, opts.verbose),
        ...(limits ? { limits } : {}),
      }) });
    } catch (e) {
      return report(file, e, opts.verbose);
    }
  }
  const component = parts[0]!.component;
  // The sockets and http bindings are loaded only for a component (or a linked one) that imports them.
  const net = parts.some((p) => importsNetwork(p.component.type.imports.keys()))
    ? (await import('../wasi/net.ts')).netBindings : null;
  let wasi;
  try {
    wasi = createWasiWith({
      args: [basename(opts.file), ...opts.args],
      env: guestEnv(opts),
      preopens: opts.dirs.map((d) => ({ host: d.host, guest: d.guest, readonly: d.readonly })),
      stdin: 'inherit',
      stdout: 'inherit',
      stderr: 'inherit',
      http: guestHttpConfig(opts),
      network: guestNetworkConfig(opts),
    }, net);
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  try {
    started?.();
    let instance;
    if (parts.length === 1) instance = component.instantiate(wasi.imports, { limits: instanceLimits(opts) });
    else {
      // --link: composition as for `weir serve` (src/serve/compose.ts)
      const { planComposition, instantiateComposition, CompositionError } = await import('../serve/compose.ts');
      try {
        instance = instantiateComposition(parts, planComposition(parts, wasi.imports), wasi.imports, { limits: instanceLimits(opts) })[0];
      } catch (e) {
        if (!(e instanceof CompositionError)) throw e;
        process.stderr.write(`weir: ${e.message}\n`);
        return 1;
      }
    }
    if (!findRunExport(instance)) {
      const names = Object.keys(instance.exports).join(', ') || 'nothing';
      process.stderr.write(`weir: ${opts.file}: not a command: it does not export wasi:cli/run (it exports ${names})\n`);
      return 1;
    }
    return await runCommand(instance);
  } catch (e) {
    const { ExitSignal } = await import('../wasi/core/cli.ts');
    if (e instanceof ExitSignal) return e.code; // exit during instantiation (start function)
    if (e instanceof Trap) {
      const hint = opts.limits?.trapOnGrowFailure && e.kind === 'wasm-unreachable' ? ' (or a memory.grow / table.grow that failed: -W trap-on-grow-failure)' : '';
      process.stderr.write(`weir: trap: ${e.reason}${hint}\n`);
      const frames = e.wasmStack;
      if (frames.length > 0) process.stderr.write(`wasm stack:\n${frames.map((f) => `  ${f.trim()}`).join('\n')}\n`);
      if (opts.verbose && e.stack) process.stderr.write(`${e.stack}\n`);
      return EXIT_TRAP;
    }
    return report(opts.file, e, opts.verbose);
  } finally {
    wasi.close();
  }
}

/**
 * `weir serve`: the machinery lives in src/serve/ (loaded only for this command).
 * With `--workers N` (default: one per core) the main thread supervises N
 * worker threads that each run `serveHere` (src/cli/serve-workers.ts); with
 * `--workers 0` everything runs on this thread.
 */
async function serve(opts: ServeOptions): Promise<number> {
  const { defaultWorkers, DEFAULT_CPU_TIMEOUT_MS, serveWorkers } = await import('./serve-workers.ts');
  const workers = opts.workers ?? defaultWorkers();
  const code = workers > 0
    ? await serveWorkers({ opts, workers, cpuTimeoutMs: opts.cpuTimeoutMs ?? DEFAULT_CPU_TIMEOUT_MS, commandsUrl: import.meta.url,
      log: (l) => { process.stderr.write(`${l}\n`); } })
    : await serveHere(opts);
  // Pooled outgoing connections and timers must not keep a drained server alive.
  process.exit(code);
}

/** `weir serve` on this thread; `role` when this is one of the worker threads of `--workers N`. */
export async function serveHere(opts: ServeOptions, role?: WorkerRole): Promise<number> {
  const { Component } = await import('../host/component.ts');
  const { deviationOptions } = await import('./toolchains.ts');
  const { serveCompileLimits, serveRequestTimeoutMs, instanceLimits } = await import('./limits.ts');
  // H8: every -W / -S limit reaches serve: compile limits below, counts and handles per instance
  // (instanceLimits), -W timeout per request (src/serve/limits.ts).
  const limits = serveCompileLimits(opts); // serve's defaults: 512 MiB per memory (src/cli/limits.ts)
  const components = [];
  const sources: Uint8Array[] = [];
  // H13: --watch recompiles a changed file with these same options.
  const compile = (file: string, bytes: Uint8Array) => Component.compile(bytes, {
    ...deviationOptions(file, opts.strict, opts.verbose),
    ...(limits ? { limits } : {}),
  });
  for (const [i, file] of opts.files.entries()) {
    try {
      // A worker serves the bytes its supervisor has (src/cli/serve-workers.ts: read at start, or
      // the last --watch reload), so one started later (a replacement) serves what the others do.
      let bytes = role?.served[i] ?? null;
      if (!bytes) {
        const b = readFileSync(file);
        bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
      }
      components.push(compile(file, bytes));
      sources.push(bytes);
    } catch (e) {
      return report(file, e, opts.verbose);
    }
  }
  const { serveCli } = await import('../serve/cli.ts');
  return await serveCli({
    files: opts.files,
    components,
    host: opts.host,
    port: opts.port,
    wasi: {
      args: [basename(opts.files[0])],
      env: guestEnv(opts),
      preopens: opts.dirs.map((d) => ({ host: d.host, guest: d.guest, readonly: d.readonly })),
      stdout: 'inherit',
      stderr: 'inherit',
      http: guestHttpConfig(opts),
      network: guestNetworkConfig(opts),
    },
    ...(opts.maxInstanceReuseCount !== undefined ? { maxInstanceReuseCount: opts.maxInstanceReuseCount } : {}),
    ...(opts.maxInstanceConcurrentReuseCount !== undefined ? { maxInstanceConcurrentReuseCount: opts.maxInstanceConcurrentReuseCount } : {}),
    ...(opts.idleInstanceTimeoutMs !== undefined ? { idleInstanceTimeoutMs: opts.idleInstanceTimeoutMs } : {}),
    // H9: --tls-cert/--tls-key, --metrics-addr, --log-format (src/serve/cli-extras.ts)
    tlsCert: opts.tlsCert, tlsKey: opts.tlsKey, metricsAddr: opts.metricsAddr, logFormat: opts.logFormat,
    // H8: request-level limits and the per-instance runtime limits
    limits: { ...opts.serveLimits, requestTimeoutMs: serveRequestTimeoutMs(opts) }, // 30 s unless -W timeout says otherwise
    instanceLimits: instanceLimits(opts),
    ...(opts.watch ? { watch: true, compile, sources } : {}), // H13: --watch (src/serve/watch.ts)
    verbose: opts.verbose,
    ...(role ? { role } : {}),
  });
}

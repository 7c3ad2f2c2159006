// Command-line argument parsing for `weir` (hand-written, no dependencies).

import type { ServeLimits } from '../serve/limits.ts'; // H8
import { parseOutboundPattern } from '../wasi/core/http/policy.ts';
import { parseNetRule } from '../wasi/core/sockets/policy.ts';

export interface DirMapping {
  host: string;
  guest: string;
  readonly: boolean;
}

/** `--env NAME=VALUE` sets a value; `--env NAME` copies NAME from the host environment. */
export interface EnvSetting {
  name: string;
  value: string | undefined;
}

/**
 * What `run` and `serve` let the guest use. Everything is denied unless
 * granted here (or by the embedder through the API).
 */
export interface GuestOptions {
  dirs: DirMapping[];
  env: EnvSetting[];
  inheritEnv: boolean;
  /** `-S NAME[=VALUE]` settings by name; only names in WASI_S_OPTIONS get here. */
  wasi: Record<string, string>;
  /** `--allow-net RULE`, as written (the sockets policy parses them). */
  allowNet: string[];
  /** `--allow-outbound PATTERN`, as written (the HTTP client policy parses them). */
  allowOutbound: string[];
  /** `--strict`: no toolchain-deviation fixes. */
  strict: boolean;
  verbose: boolean;
  /** `-W` limits and `-S max-resources` / `-S hostcall-fuel`; absent when none was given (see src/cli/limits.ts). */
  limits?: LimitOptions;
}

/** Limits set on the command line (parsed values; unset = the command's default). */
export interface LimitOptions {
  /** -W max-memory-size: bytes per linear memory */
  maxMemorySize?: number;
  /** -W max-table-elements: elements per table */
  maxTableElements?: number;
  /** -W trap-on-grow-failure */
  trapOnGrowFailure?: boolean;
  /** -W max-instances / max-memories / max-tables: counts per store (one top-level instantiation) */
  maxInstances?: number;
  maxMemories?: number;
  maxTables?: number;
  /** -W timeout, in milliseconds */
  timeoutMs?: number;
  /** -S max-resources: handles per component instance */
  maxResources?: number;
  /** -S hostcall-fuel: bytes one host call may copy out of the guest */
  hostcallFuel?: number;
}

export interface RunOptions extends GuestOptions {
  cmd: 'run';
  file: string;
  args: string[];
  /** `--link FILE`: components the run component's unprovided imports are linked to, in order. */
  links?: string[];
}

export interface ServeOptions extends GuestOptions {
  cmd: 'serve';
  /** The components, in command-line order: the first is served. */
  files: string[];
  host: string;
  port: number;
  /** --max-instance-reuse-count: requests one instance serves in total. */
  maxInstanceReuseCount?: number;
  /** --max-instance-concurrent-reuse-count: requests one instance holds at once. */
  maxInstanceConcurrentReuseCount?: number;
  /** --idle-instance-timeout, in milliseconds. */
  idleInstanceTimeoutMs?: number;
  /** H9: --tls-cert / --tls-key (PEM files; both or neither): HTTPS with h2 and http/1.1. */
  tlsCert?: string;
  tlsKey?: string;
  /** H9: --metrics-addr HOST:PORT: Prometheus text at /metrics. */
  metricsAddr?: { host: string; port: number };
  /** H9: --log-format text|json (json: one access-log line per request on stderr). */
  logFormat?: 'text' | 'json';
  /** H8: --max-concurrent-requests, --max-connections, --queue-timeout, body/header sizes and timeouts, --shutdown-timeout (src/serve/limits.ts). */
  serveLimits?: ServeLimits;
  /** H13: --watch: reload the components when a served file changes (src/serve/watch.ts). */
  watch?: boolean;
  /** --workers N: worker threads (0: serve on the main thread); default one per available core. */
  workers?: number;
  /** --cpu-timeout: a worker stuck in guest code this long is stopped (0: no watchdog); default 10 s. */
  cpuTimeoutMs?: number;
}

export interface InspectOptions {
  cmd: 'inspect';
  file: string;
  world: string;
  verbose: boolean;
}

export type Command =
  | { cmd: 'help'; topic: string | null }
  | { cmd: 'version' }
  | InspectOptions
  | RunOptions
  | ServeOptions;

export const COMMANDS = ['inspect', 'run', 'serve', 'help'] as const;

export const DEFAULT_ADDR = '127.0.0.1:8080';

/** A usage mistake: reported as `weir: <message>` with a pointer to --help, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  readonly code = 'WEIR_USAGE';
  readonly command: string | null;
  constructor(message: string, command: string | null = null) {
    super(message);
    this.command = command;
  }
}

/**
 * `-S` settings Weir honours, with a line of help each. A name not listed is
 * refused (a flag Weir cannot honour must never be silently ignored); each
 * subsystem adds its names here when it implements them.
 */
export const WASI_S_OPTIONS: Record<string, string> = {
  cli: 'wasi:cli is always linked (accepted for wasmtime compatibility)',
  'inherit-env': 'pass the whole host environment to the guest (same as --inherit-env)',
  http: 'allow outgoing HTTP requests to any destination (same as --allow-outbound \'*\')',
  'inherit-network': 'wasi:sockets: allow every address for every use (bind, listen, accept, connect, UDP)',
  'allow-ip-name-lookup': 'wasi:sockets: allow name lookups (ip-name-lookup.resolve-addresses)',
  'max-resources': 'N: most handles one component instance may hold (resources, streams, ...; default 1000000)',
  'hostcall-fuel': 'BYTES: most data one host call may copy out of the guest (strings, lists; default 128MiB)',
};

/**
 * `-W` settings Weir honours (wasmtime's spellings), with a line of help each.
 * Any other name is refused; WASM_W_UNSUPPORTED says why for wasmtime names
 * V8 cannot honour.
 */
export const WASM_W_OPTIONS: Record<string, string> = {
  'max-memory-size': 'BYTES: maximum size of each linear memory; memory.grow beyond it returns -1 (default: unlimited; weir serve: 512M, 0 = unlimited)',
  'max-table-elements': 'N: maximum elements of each table; table.grow beyond it returns -1 (default: unlimited)',
  'max-instances': 'N: most core instances one instantiation may create (default 10000)',
  'max-memories': 'N: most linear memories one instantiation may define (default 10000)',
  'max-tables': 'N: most tables one instantiation may define (default 10000)',
  'trap-on-grow-failure': 'a failed memory.grow or table.grow traps (unreachable) instead of returning -1',
  timeout: 'DURATION: stop the guest after this long (500ms, 2s, 1m): weir run exits 134, trap: interrupt (default: none); weir serve: 504 for a request not answered in time (default 30s, 0 = none)',
};

/** wasmtime `-W` names Weir refuses on purpose, with the reason printed. */
export const WASM_W_UNSUPPORTED: Record<string, string> = {
  fuel: 'not supported on V8: Weir cannot count executed instructions (use -W timeout to bound a run)',
  'epoch-interruption': 'not supported on V8: there are no epoch checks in V8-compiled code (-W timeout stops a run)',
  'max-wasm-stack': 'not supported on V8: the wasm stack is the thread\'s JS stack (node --stack-size)',
  'async-stack-size': 'not supported on V8: JSPI stacks are sized by V8 (--wasm-stack-switching-stack-size)',
};

function sHelp(): string {
  return Object.entries(WASI_S_OPTIONS).map(([k, v]) => `  ${k.padEnd(29)}  ${v}`).join('\n');
}

function wHelp(): string {
  const supported = Object.entries(WASM_W_OPTIONS).filter(([k]) => !(k in WASM_W_UNSUPPORTED));
  return supported.map(([k, v]) => `  ${k.padEnd(29)}  ${v}`).join('\n')
    + `\n  refused (V8 cannot honour them): ${Object.keys(WASM_W_UNSUPPORTED).join(', ')}`;
}

export const HELP: Record<string, string> = {
  main: `weir — run WebAssembly components (Component Model, WASI 0.3 and 0.2) on Node.js

Usage:
  weir <command> [options]

Commands:
  run <component.wasm> [args...]   Run a command component (wasi:cli/run)
  serve <component.wasm>           Serve an HTTP proxy component (wasi:http)
  inspect <file.wasm>              Print a component's imports and exports as WIT
  help [command]                   Show help for a command

Options:
  -h, --help       Show this help (or a command's help: weir <command> --help)
  -V, --version    Print weir's version
  -v, --verbose    Print stack traces and extra diagnostics on errors

Requires Node 24.21+ or 26 (JSPI). Run through npm (npx weir) to use the project's Node.
`,
  run: `Usage:
  weir run [options] [--] <component.wasm> [args...]

Runs a component that exports wasi:cli/run. Arguments after the component
path are passed to the guest unchanged (argv[0] is the component's file name).
The exit status is the guest's exit status.

Options:
  --dir HOST[::GUEST]            Preopen host directory HOST as GUEST in the guest
                                 (GUEST defaults to HOST). Repeatable.
  --dir-readonly HOST[::GUEST]   Like --dir, but the guest may not write to it. Repeatable.
  --env NAME=VALUE               Set environment variable NAME for the guest. Repeatable.
  --env NAME                     Pass host environment variable NAME to the guest. Repeatable.
  --inherit-env                  Pass the whole host environment to the guest
                                 (--env settings override it).
  --link FILE                    Link another component: each import of the run component
                                 that the host does not provide is linked to the same
                                 interface exported by a --link component (the first that
                                 has it; a --link component may import from later ones).
                                 Repeatable.
  -S NAME[=VALUE][,…]            WASI settings, wasmtime's spellings (see below). Repeatable.
  -W NAME[=VALUE][,…]            Limits, wasmtime's spellings (see below). Repeatable.
  --allow-outbound HOST[:PORT]   Let the guest send HTTP requests (wasi:http) to HOST.
                                 Default: every outgoing request is denied
                                 (HTTP-request-denied). HOST: a hostname or IP
                                 address (IPv6 in brackets: [::1]:8080), matched
                                 as written in the request (before DNS); '*.NAME'
                                 (any subdomain of NAME, at any depth, not NAME
                                 itself); or '*' (any host). '*' goes nowhere
                                 else: 'api.*' and '10.0.0.*' are usage errors.
                                 PORT: a number or '*' (any; also when omitted).
                                 '*' alone allows all. Repeatable.
  --allow-net KIND=HOST[:PORTS]  Let the guest use wasi:sockets with HOST. Default:
                                 sockets can be created and configured, but every
                                 bind, listen, connect, send and name lookup is
                                 access-denied. KIND: connect (TCP connect to),
                                 bind (TCP/UDP bind and TCP listen on; an implicit
                                 bind by listen is a bind of 0.0.0.0 / [::]),
                                 accept (TCP peers accepted from), udp (UDP
                                 send to / receive from). HOST: '*' (any), an
                                 IPv4 address or CIDR (10.0.0.0/8), an IPv6 one
                                 in brackets ([::1], [fd00::/8]), or, for connect
                                 and udp, a hostname (that name may be looked up;
                                 the rule allows only the addresses of the latest
                                 answer to the guest's lookup of it, each answer
                                 replacing the previous one: it trusts DNS for
                                 that name, so use IP rules to pin addresses).
                                 PORTS: N, N-M or '*' (default).
                                 Examples: connect=10.0.0.5:5432,
                                 bind=127.0.0.1:8000-8100, udp=0.0.0.0/0:53. Repeatable.
  --strict                       Apply no fixes for known toolchain deviations
  -v, --verbose                  Print stack traces and extra diagnostics on errors
  -h, --help                     Show this help
  --                             End of weir options; the next argument is the component

-S settings:
${sHelp()}

-W settings:
${wHelp()}
`,
  serve: `Usage:
  weir serve [options] <component.wasm> [<component.wasm>...]

Serves HTTP requests with a component that exports wasi:http/handler
(WASI 0.3) or wasi:http/incoming-handler (WASI 0.2). With several
components, each import the host does not provide is linked to the export
of the same interface by a later component (e.g. a middleware importing
wasi:http/handler calls the handler of the next one, no HTTP hop).
The first stderr line is 'Serving HTTP on http://ADDR:PORT/'. SIGINT and
SIGTERM stop accepting, finish the requests in flight and exit 0.

Options:
  --addr HOST:PORT   Address to listen on (default ${DEFAULT_ADDR}; port 0 picks one).
                     IPv6 hosts are written in brackets: [::1]:8080
  --watch            Reload when a served .wasm file changes (also when it is
                     replaced by a rename): new requests go to the new version,
                     requests in flight finish on the old one. A version that
                     fails to compile or instantiate is reported on stderr and
                     the previous one keeps serving. Prints 'weir: reloaded FILE'
  --workers N        Worker threads serving requests (default: one per
                     available core). Each compiles the components and keeps
                     its own instance pool, and accepts connections itself
                     from one listening socket they share (without node:ffi,
                     or with WEIR_SERVE_LISTENER=reuseport: a SO_REUSEPORT
                     listener each). 0: serve on the main thread (no CPU
                     watchdog then)
  --cpu-timeout DURATION
                     A worker stuck in guest code this long without returning
                     to its event loop is stopped: the request running gets
                     500, the others it had read 503 with Retry-After, its
                     connections between requests go on on another worker
                     (HTTPS and h2 connections are reset), and a new worker
                     takes over (default 10s; 0 turns the watchdog off)
  --max-instance-reuse-count N
                     Requests one instance serves before it is retired
                     (default 1000; WASI 0.2 components: always 1)
  --max-instance-concurrent-reuse-count N
                     Requests one instance holds at once (default 16; 0.2: 1)
  --idle-instance-timeout DURATION
                     Close an instance idle this long (default 1s; e.g. 500ms, 2s)
  --tls-cert FILE --tls-key FILE
                     Serve HTTPS (HTTP/2 and HTTP/1.1, by ALPN) with this PEM
                     certificate chain and private key; the first stderr line
                     is then 'Serving HTTPS on https://ADDR:PORT/'
  --metrics-addr HOST:PORT
                     Serve Prometheus metrics at http://HOST:PORT/metrics
                     (printed on the second stderr line)
  --log-format text|json
                     json: one JSON access-log line per request on stderr
                     (default text: no access log). Guest stdout/stderr lines
                     are always prefixed 'stdout [INSTANCE] :: '
Limits (0 turns one off):
  --max-concurrent-requests N
                     Requests handed to components at once (default 1000);
                     the others wait in a queue
  --max-connections N
                     Open client connections (default 1000); the others wait
  --queue-timeout DURATION
                     A waiting request or connection gets 503 with
                     Retry-After after this (default 10s)
  --max-request-body-size BYTES
                     413 beyond it (default 100M); the component's body
                     stream ends with error-code HTTP-request-body-size
  --max-header-size BYTES
                     431 when the request head is larger (default 16K)
  --header-timeout DURATION
                     408 when the request head takes longer (default 20s)
  --body-timeout DURATION
                     408 when the whole request takes longer to arrive
                     (default 300s)
  --idle-timeout DURATION
                     Close a kept-alive connection idle this long (default 5s)
  --shutdown-timeout DURATION
                     SIGINT/SIGTERM wait at most this long for requests in
                     flight, then exit 1 (default 30s); a second signal exits
                     at once (130)
  -W timeout=DURATION
                     504 when the component has not answered (response head)
                     within this; its task is cancelled (default 30s)
  -W max-memory-size=BYTES
                     Each linear memory of each instance: memory.grow beyond
                     it fails (weir serve: 512M by default)
  --dir, --dir-readonly, --env, --inherit-env, -S, -W, --allow-outbound, --allow-net, --strict:
                     as for weir run
  -v, --verbose      Print stack traces and extra diagnostics on errors
  -h, --help         Show this help
`,
  inspect: `Usage:
  weir inspect [options] <file.wasm>

Decodes and validates a component and prints its imports and exports as WIT.
Malformed or invalid components are reported with a byte offset (exit status 1).

Options:
  --world NAME    Name of the printed world (default: root)
  -v, --verbose   Print stack traces on errors
  -h, --help      Show this help
`,
  help: `Usage:
  weir help [command]

Shows help for weir or for one command (${COMMANDS.join(', ')}).
`,
};

/** Splits `--name=value` into its parts; other arguments pass through. */
function splitEq(arg: string): [string, string | undefined] {
  if (arg.startsWith('--')) {
    const eq = arg.indexOf('=');
    if (eq > 2) return [arg.slice(0, eq), arg.slice(eq + 1)];
  }
  return [arg, undefined];
}

class Cursor {
  readonly args: string[];
  readonly command: string | null;
  i = 0;
  constructor(args: string[], command: string | null) {
    this.args = args;
    this.command = command;
  }
  get done(): boolean { return this.i >= this.args.length; }
  peek(): string { return this.args[this.i]; }
  next(): string { return this.args[this.i++]; }
  rest(): string[] { const r = this.args.slice(this.i); this.i = this.args.length; return r; }
  /** The value of an option, from `--opt=value` or the following argument. */
  value(opt: string, inline: string | undefined): string {
    if (inline !== undefined) return inline;
    if (this.done) throw new UsageError(`option ${opt} needs a value`, this.command);
    return this.next();
  }
}

export function parseDir(spec: string, readonly: boolean, opt = '--dir'): DirMapping {
  const sep = spec.indexOf('::');
  const host = sep >= 0 ? spec.slice(0, sep) : spec;
  const guest = sep >= 0 ? spec.slice(sep + 2) : spec;
  if (host === '') throw new UsageError(`${opt} ${JSON.stringify(spec)}: missing host directory`, 'run');
  if (guest === '') throw new UsageError(`${opt} ${JSON.stringify(spec)}: missing guest directory after '::'`, 'run');
  return { host, guest, readonly };
}

export function parseEnv(spec: string): EnvSetting {
  const eq = spec.indexOf('=');
  const name = eq >= 0 ? spec.slice(0, eq) : spec;
  if (name === '') throw new UsageError(`--env ${JSON.stringify(spec)}: missing variable name`, 'run');
  return { name, value: eq >= 0 ? spec.slice(eq + 1) : undefined };
}

export function parseAddr(spec: string, opt = '--addr'): { host: string; port: number } {
  let host: string;
  let portText: string;
  const bracket = /^\[([^\]]*)\]:(.*)$/.exec(spec);
  if (bracket) {
    host = bracket[1];
    portText = bracket[2];
  } else {
    const colon = spec.lastIndexOf(':');
    if (colon < 0) throw new UsageError(`${opt} ${JSON.stringify(spec)}: expected HOST:PORT`, 'serve');
    host = spec.slice(0, colon);
    portText = spec.slice(colon + 1);
    if (host.includes(':')) throw new UsageError(`${opt} ${JSON.stringify(spec)}: write IPv6 hosts in brackets, e.g. [::1]:8080`, 'serve');
  }
  if (host === '') throw new UsageError(`${opt} ${JSON.stringify(spec)}: missing host`, 'serve');
  if (!/^[0-9]+$/.test(portText) || Number(portText) > 65535) {
    throw new UsageError(`${opt} ${JSON.stringify(spec)}: port must be a number from 0 to 65535`, 'serve');
  }
  return { host, port: Number(portText) };
}

/** Parses `weir`'s arguments (without the node and script paths). Throws UsageError. */
export function parseArgs(argv: string[]): Command {
  let verbose = false;
  let i = 0;
  // Global options before the command.
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') return { cmd: 'help', topic: null };
    if (a === '-V' || a === '--version') return { cmd: 'version' };
    if (a === '-v' || a === '--verbose') { verbose = true; continue; }
    if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    break;
  }
  if (i >= argv.length) return { cmd: 'help', topic: null };
  const command = argv[i];
  const c = new Cursor(argv.slice(i + 1), command);
  switch (command) {
    case 'help': {
      const topic = c.done ? null : c.next();
      if (topic !== null && !(topic in HELP)) throw new UsageError(`no help for unknown command ${JSON.stringify(topic)}`);
      if (!c.done) throw new UsageError(`unexpected argument ${JSON.stringify(c.peek())}`, 'help');
      return { cmd: 'help', topic };
    }
    case 'inspect': return parseInspect(c, verbose);
    case 'run': return parseRun(c, verbose);
    case 'serve': return parseServe(c, verbose);
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)} (commands: ${COMMANDS.join(', ')})`);
  }
}

function parseInspect(c: Cursor, verbose: boolean): Command {
  let world = 'root';
  let file: string | null = null;
  let optionsDone = false;
  while (!c.done) {
    const raw = c.next();
    if (!optionsDone && raw.startsWith('-') && raw !== '-') {
      const [opt, inline] = splitEq(raw);
      switch (opt) {
        case '--': optionsDone = true; continue;
        case '-h': case '--help': return { cmd: 'help', topic: 'inspect' };
        case '-v': case '--verbose': verbose = true; continue;
        case '--world': world = c.value(opt, inline); continue;
        default: throw new UsageError(`unknown option ${opt}`, 'inspect');
      }
    }
    if (file !== null) throw new UsageError(`unexpected argument ${JSON.stringify(raw)} (inspect takes one file)`, 'inspect');
    file = raw;
  }
  if (file === null) throw new UsageError('missing <file.wasm>', 'inspect');
  return { cmd: 'inspect', file, world, verbose };
}


/** Parses one `-S` argument: `NAME[=VALUE][,NAME[=VALUE]…]`, as wasmtime writes them. */
export function parseWasiSetting(spec: string, into: Record<string, string>, command: string): void {
  for (const part of spec.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq >= 0 ? part.slice(0, eq) : part;
    const value = eq >= 0 ? part.slice(eq + 1) : 'y';
    if (!Object.hasOwn(WASI_S_OPTIONS, name)) {
      throw new UsageError(`-S ${name}: not supported by weir (supported: ${Object.keys(WASI_S_OPTIONS).join(', ')})`, command);
    }
    into[name] = value;
  }
}

/**
 * Parses one `-W` argument (`NAME[=VALUE][,NAME[=VALUE]…]`) into `g.limits`.
 * Names not in WASM_W_OPTIONS, and those in WASM_W_UNSUPPORTED, are refused.
 */
export function parseWasmSetting(spec: string, g: GuestOptions, command: string): void {
  for (const part of spec.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq >= 0 ? part.slice(0, eq) : part;
    const value = eq >= 0 ? part.slice(eq + 1) : undefined;
    const why = Object.hasOwn(WASM_W_UNSUPPORTED, name) ? WASM_W_UNSUPPORTED[name] : undefined;
    if (why !== undefined) throw new UsageError(`-W ${name}: ${why}`, command);
    if (!Object.hasOwn(WASM_W_OPTIONS, name)) {
      const ok = Object.keys(WASM_W_OPTIONS).filter((k) => !(k in WASM_W_UNSUPPORTED));
      throw new UsageError(`-W ${name}: not supported by weir (supported: ${ok.join(', ')})`, command);
    }
    const l = (g.limits ??= {});
    const need = (): string => {
      if (value === undefined || value === '') throw new UsageError(`-W ${name} needs a value (-W ${name}=…)`, command);
      return value;
    };
    switch (name) {
      case 'max-memory-size': l.maxMemorySize = parseBytes(need(), `-W ${name}`, command); break;
      case 'max-table-elements': l.maxTableElements = parseLimitCount(need(), `-W ${name}`, command); break;
      case 'max-instances': l.maxInstances = parseLimitCount(need(), `-W ${name}`, command); break;
      case 'max-memories': l.maxMemories = parseLimitCount(need(), `-W ${name}`, command); break;
      case 'max-tables': l.maxTables = parseLimitCount(need(), `-W ${name}`, command); break;
      case 'trap-on-grow-failure':
        if (value !== undefined && !/^(y|yes|true|1|n|no|false|0)$/i.test(value)) throw new UsageError(`-W ${name}=${value}: expected y or n`, command);
        l.trapOnGrowFailure = value === undefined || /^(y|yes|true|1)$/i.test(value);
        break;
      case 'timeout': {
        const ms = parseDurationMs(need(), `-W ${name}`, command);
        if (ms === 0 && command === 'serve') { l.timeoutMs = 0; break; } // serve: 0 turns its default off
        if (!(ms > 0)) throw new UsageError(`-W timeout=${value}: must be more than 0`, command);
        if (ms > 2 ** 31 - 1) throw new UsageError(`-W timeout=${value}: at most 596h (the longest timer Node offers)`, command);
        l.timeoutMs = ms;
        break;
      }
    }
  }
}

/** A byte count: digits with an optional K, M or G suffix (powers of 1024; KiB/MiB/GiB too). */
export function parseBytes(v: string, opt: string, command: string): number {
  const m = /^([0-9]+)\s*(k|m|g|kib|mib|gib|b)?$/i.exec(v.trim());
  const mult = m?.[2] ? ({ k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, b: 1 } as Record<string, number>)[m[2][0].toLowerCase()] : 1;
  const n = m ? Number(m[1]) * mult : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`${opt}=${v}: expected a number of bytes (e.g. 1048576, 64M, 1G)`, command);
  return n;
}

function parseLimitCount(v: string, opt: string, command: string): number {
  if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new UsageError(`${opt}=${v}: expected a whole number`, command);
  return Number(v);
}

/** A boolean `-S` value: y/yes/true/1 or n/no/false/0. */
export function wasiFlag(opts: GuestOptions, name: string): boolean {
  const v = opts.wasi[name];
  if (v === undefined) return false;
  if (/^(y|yes|true|1)$/i.test(v)) return true;
  if (/^(n|no|false|0)$/i.test(v)) return false;
  throw new UsageError(`-S ${name}=${v}: expected y or n`);
}

/** `weir serve`'s options with the command line's defaults under `partial` (the embedding API of serve-workers.ts). */
export function serveOptions(partial: Partial<ServeOptions> & { files: string[] }): ServeOptions {
  return { ...emptyGuestOptions(false), host: '127.0.0.1', port: 0, ...partial, cmd: 'serve' };
}

function emptyGuestOptions(verbose: boolean): GuestOptions {
  return { dirs: [], env: [], inheritEnv: false, wasi: {}, allowNet: [], allowOutbound: [], strict: false, verbose };
}

/**
 * Applies one option shared by `run` and `serve` to `g`. Returns false when
 * `opt` is not one of them (the caller then tries its own options).
 */
function guestOption(g: GuestOptions, c: Cursor, opt: string, inline: string | undefined, command: string): boolean {
  switch (opt) {
    case '-v': case '--verbose': g.verbose = true; return true;
    case '--dir': g.dirs.push(parseDir(c.value(opt, inline), false, opt)); return true;
    case '--dir-readonly': g.dirs.push(parseDir(c.value(opt, inline), true, opt)); return true;
    case '--env': g.env.push(parseEnv(c.value(opt, inline))); return true;
    case '--inherit-env':
      if (inline !== undefined) throw new UsageError('--inherit-env takes no value', command);
      g.inheritEnv = true;
      return true;
    case '-S': case '--wasi': parseWasiSetting(c.value(opt, inline), g.wasi, command); return true;
    case '-W': case '--wasm': parseWasmSetting(c.value(opt, inline), g, command); return true;
    case '--allow-net': {
      const rule = c.value(opt, inline);
      try { parseNetRule(rule); } catch (e) { throw new UsageError((e as Error).message, command); }
      g.allowNet.push(rule);
      return true;
    }
    case '--allow-outbound': {
      const pattern = c.value(opt, inline);
      try { parseOutboundPattern(pattern); } catch (e) { throw new UsageError((e as Error).message, command); }
      g.allowOutbound.push(pattern);
      return true;
    }
    case '--strict':
      if (inline !== undefined) throw new UsageError('--strict takes no value', command);
      g.strict = true;
      return true;
    default: return false;
  }
}

/** `-Sname` is `-S name` (and `-Wname` is `-W name`). */
function splitShort(raw: string): [string, string | undefined] {
  if (raw.startsWith('-S') && raw.length > 2 && !raw.startsWith('--')) return ['-S', raw.slice(2)];
  if (raw.startsWith('-W') && raw.length > 2 && !raw.startsWith('--')) return ['-W', raw.slice(2)];
  return splitEq(raw);
}

function finishGuestOptions(g: GuestOptions): void {
  if (g.wasi['inherit-env'] !== undefined && wasiFlag(g, 'inherit-env')) g.inheritEnv = true;
  if (g.wasi.http !== undefined) wasiFlag(g, 'http'); // reject a malformed value up front
  for (const n of ['inherit-network', 'allow-ip-name-lookup']) if (g.wasi[n] !== undefined) wasiFlag(g, n);
  if (g.wasi['max-resources'] !== undefined) (g.limits ??= {}).maxResources = parseLimitCount(g.wasi['max-resources'], '-S max-resources', 'run');
  if (g.wasi['hostcall-fuel'] !== undefined) (g.limits ??= {}).hostcallFuel = parseBytes(g.wasi['hostcall-fuel'], '-S hostcall-fuel', 'run');
}

function parseRun(c: Cursor, verbose: boolean): Command {
  const g = emptyGuestOptions(verbose);
  const links: string[] = [];
  while (!c.done) {
    const raw = c.peek();
    if (raw === '--') {
      c.next();
      break;
    }
    if (!raw.startsWith('-') || raw === '-') break;
    c.next();
    const [opt, inline] = splitShort(raw);
    if (opt === '-h' || opt === '--help') return { cmd: 'help', topic: 'run' };
    if (opt === '--link') { links.push(c.value(opt, inline)); continue; }
    if (guestOption(g, c, opt, inline, 'run')) continue;
    throw new UsageError(`unknown option ${opt}`, 'run');
  }
  if (c.done) throw new UsageError('missing <component.wasm>', 'run');
  const file = c.next();
  finishGuestOptions(g);
  return { cmd: 'run', file, args: c.rest(), ...(links.length ? { links } : {}), ...g };
}

function parseServe(c: Cursor, verbose: boolean): Command {
  const g = emptyGuestOptions(verbose);
  let addr = DEFAULT_ADDR;
  const files: string[] = [];
  const pool: Pick<ServeOptions, 'maxInstanceReuseCount' | 'maxInstanceConcurrentReuseCount' | 'idleInstanceTimeoutMs'> = {};
  const observe: Pick<ServeOptions, 'tlsCert' | 'tlsKey' | 'metricsAddr' | 'logFormat'> = {}; // H9
  const limits: ServeLimits = {}; // H8
  let watch = false; // H13
  const threads: Pick<ServeOptions, 'workers' | 'cpuTimeoutMs'> = {};
  let optionsDone = false;
  while (!c.done) {
    const raw = c.next();
    if (!optionsDone && raw.startsWith('-') && raw !== '-') {
      const [opt, inline] = splitShort(raw);
      if (opt === '--') { optionsDone = true; continue; }
      if (opt === '-h' || opt === '--help') return { cmd: 'help', topic: 'serve' };
      if (guestOption(g, c, opt, inline, 'serve')) continue;
      switch (opt) {
        case '--addr': addr = c.value(opt, inline); continue;
        case '--watch': watch = true; continue; // H13
        case '--workers': threads.workers = parseLimitCount(c.value(opt, inline), opt, 'serve'); continue;
        case '--cpu-timeout': threads.cpuTimeoutMs = timerMs(c.value(opt, inline), opt); continue;
        case '--max-instance-reuse-count': pool.maxInstanceReuseCount = parseCount(c.value(opt, inline), opt); continue;
        case '--max-instance-concurrent-reuse-count': pool.maxInstanceConcurrentReuseCount = parseCount(c.value(opt, inline), opt); continue;
        case '--idle-instance-timeout': pool.idleInstanceTimeoutMs = parseDurationMs(c.value(opt, inline), opt); continue;
        // H8: request-level limits (src/serve/limits.ts)
        case '--max-concurrent-requests': limits.maxConcurrentRequests = parseLimitCount(c.value(opt, inline), opt, 'serve'); continue;
        case '--max-connections': limits.maxConnections = parseLimitCount(c.value(opt, inline), opt, 'serve'); continue;
        case '--queue-timeout': limits.queueTimeoutMs = timerMs(c.value(opt, inline), opt); continue;
        case '--max-request-body-size': limits.maxRequestBodySize = parseBytes(c.value(opt, inline), opt, 'serve'); continue;
        case '--max-header-size': limits.maxHeaderSize = parseBytes(c.value(opt, inline), opt, 'serve'); continue;
        case '--header-timeout': limits.headerTimeoutMs = timerMs(c.value(opt, inline), opt); continue;
        case '--body-timeout': limits.bodyTimeoutMs = timerMs(c.value(opt, inline), opt); continue;
        case '--idle-timeout': limits.idleTimeoutMs = timerMs(c.value(opt, inline), opt); continue;
        case '--shutdown-timeout': limits.shutdownTimeoutMs = timerMs(c.value(opt, inline), opt); continue;
        case '--tls-cert': observe.tlsCert = c.value(opt, inline); continue;
        case '--tls-key': observe.tlsKey = c.value(opt, inline); continue;
        case '--metrics-addr': observe.metricsAddr = parseAddr(c.value(opt, inline), opt); continue;
        case '--log-format': {
          const v = c.value(opt, inline);
          if (v !== 'text' && v !== 'json') throw new UsageError(`--log-format ${JSON.stringify(v)}: expected text or json`, 'serve');
          observe.logFormat = v;
          continue;
        }
        default: throw new UsageError(`unknown option ${opt}`, 'serve');
      }
    }
    files.push(raw);
  }
  if (files.length === 0) throw new UsageError('missing <component.wasm>', 'serve');
  if ((observe.tlsCert === undefined) !== (observe.tlsKey === undefined)) {
    throw new UsageError(observe.tlsCert === undefined ? '--tls-key needs --tls-cert' : '--tls-cert needs --tls-key', 'serve');
  }
  const { host, port } = parseAddr(addr);
  finishGuestOptions(g);
  if (limits.maxRequestBodySize !== undefined || limits.maxHeaderSize !== undefined) {
    if ((limits.maxHeaderSize ?? 0) > 2 ** 31 - 1) throw new UsageError('--max-header-size: at most 2G', 'serve');
  }
  return { cmd: 'serve', files, host, port, ...pool, ...observe, ...(Object.keys(limits).length ? { serveLimits: limits } : {}), ...(watch ? { watch } : {}), ...threads, ...g };
}

/** H8: a duration a Node timer can hold (0 allowed: off). */
function timerMs(v: string, opt: string): number {
  const ms = parseDurationMs(v, opt);
  if (ms > 2 ** 31 - 1) throw new UsageError(`${opt} ${JSON.stringify(v)}: at most 596h (the longest timer Node offers)`, 'serve');
  return Math.round(ms);
}

/** A count of at least 1 (serve's pool limits). */
function parseCount(v: string, opt: string): number {
  if (!/^[0-9]+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) throw new UsageError(`${opt} ${JSON.stringify(v)}: expected a whole number of at least 1`, 'serve');
  return Number(v);
}

/** A duration as wasmtime writes them: 500ms, 1s, 2m, 1h; a plain number is seconds. */
function parseDurationMs(v: string, opt: string, command = 'serve'): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new UsageError(`${opt} ${JSON.stringify(v)}: expected a duration such as 500ms, 1s or 2m`, command);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
}

// Command-line argument parsing for `weir` (hand-written, no dependencies).

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

export interface RunOptions {
  cmd: 'run';
  file: string;
  args: string[];
  dirs: DirMapping[];
  env: EnvSetting[];
  inheritEnv: boolean;
  verbose: boolean;
}

export interface ServeOptions {
  cmd: 'serve';
  file: string;
  host: string;
  port: number;
  verbose: boolean;
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
  readonly command: string | null;
  constructor(message: string, command: string | null = null) {
    super(message);
    this.command = command;
  }
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
  -v, --verbose                  Print stack traces and extra diagnostics on errors
  -h, --help                     Show this help
  --                             End of weir options; the next argument is the component
`,
  serve: `Usage:
  weir serve [options] <component.wasm>

Serves HTTP requests with a component that exports wasi:http/handler
(WASI 0.3) or wasi:http/incoming-handler (WASI 0.2).

Options:
  --addr HOST:PORT   Address to listen on (default ${DEFAULT_ADDR}).
                     IPv6 hosts are written in brackets: [::1]:8080
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

export function parseAddr(spec: string): { host: string; port: number } {
  let host: string;
  let portText: string;
  const bracket = /^\[([^\]]*)\]:(.*)$/.exec(spec);
  if (bracket) {
    host = bracket[1];
    portText = bracket[2];
  } else {
    const colon = spec.lastIndexOf(':');
    if (colon < 0) throw new UsageError(`--addr ${JSON.stringify(spec)}: expected HOST:PORT`, 'serve');
    host = spec.slice(0, colon);
    portText = spec.slice(colon + 1);
    if (host.includes(':')) throw new UsageError(`--addr ${JSON.stringify(spec)}: write IPv6 hosts in brackets, e.g. [::1]:8080`, 'serve');
  }
  if (host === '') throw new UsageError(`--addr ${JSON.stringify(spec)}: missing host`, 'serve');
  if (!/^[0-9]+$/.test(portText) || Number(portText) > 65535) {
    throw new UsageError(`--addr ${JSON.stringify(spec)}: port must be a number from 0 to 65535`, 'serve');
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

function parseRun(c: Cursor, verbose: boolean): Command {
  const dirs: DirMapping[] = [];
  const env: EnvSetting[] = [];
  let inheritEnv = false;
  while (!c.done) {
    const raw = c.peek();
    if (raw === '--') {
      c.next();
      break;
    }
    if (!raw.startsWith('-') || raw === '-') break;
    c.next();
    const [opt, inline] = splitEq(raw);
    switch (opt) {
      case '-h': case '--help': return { cmd: 'help', topic: 'run' };
      case '-v': case '--verbose': verbose = true; break;
      case '--dir': dirs.push(parseDir(c.value(opt, inline), false, opt)); break;
      case '--dir-readonly': dirs.push(parseDir(c.value(opt, inline), true, opt)); break;
      case '--env': env.push(parseEnv(c.value(opt, inline))); break;
      case '--inherit-env':
        if (inline !== undefined) throw new UsageError('--inherit-env takes no value', 'run');
        inheritEnv = true;
        break;
      default: throw new UsageError(`unknown option ${opt}`, 'run');
    }
  }
  if (c.done) throw new UsageError('missing <component.wasm>', 'run');
  const file = c.next();
  return { cmd: 'run', file, args: c.rest(), dirs, env, inheritEnv, verbose };
}

function parseServe(c: Cursor, verbose: boolean): Command {
  let addr = DEFAULT_ADDR;
  let file: string | null = null;
  let optionsDone = false;
  while (!c.done) {
    const raw = c.next();
    if (!optionsDone && raw.startsWith('-') && raw !== '-') {
      const [opt, inline] = splitEq(raw);
      switch (opt) {
        case '--': optionsDone = true; continue;
        case '-h': case '--help': return { cmd: 'help', topic: 'serve' };
        case '-v': case '--verbose': verbose = true; continue;
        case '--addr': addr = c.value(opt, inline); continue;
        default: throw new UsageError(`unknown option ${opt}`, 'serve');
      }
    }
    if (file !== null) throw new UsageError(`unexpected argument ${JSON.stringify(raw)} (serve takes one component)`, 'serve');
    file = raw;
  }
  if (file === null) throw new UsageError('missing <component.wasm>', 'serve');
  const { host, port } = parseAddr(addr);
  return { cmd: 'serve', file, host, port, verbose };
}

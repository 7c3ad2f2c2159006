// Command-line world: arguments, environment, exit, stdio and terminals.
// Default deny: no environment variables, only the arguments given, stdin empty.

import {
  BufferSource, CallbackSink, EMPTY_SOURCE, FdSink, FdSource, NullSink,
  type ByteSink, type ByteSource,
} from './streams.ts';

/** Where the guest's stdin comes from. */
export type StdinConfig = 'inherit' | 'null' | string | Uint8Array | { fd: number };
/** Where the guest's stdout/stderr go: a callback receives each write. */
export type OutputConfig = 'inherit' | 'null' | ((chunk: Uint8Array) => void) | { fd: number };

export interface CliConfig {
  /** argv as the guest sees it (argv[0] is the program name). Default: []. */
  args?: string[];
  /** Environment variables. Default: none. */
  env?: Record<string, string> | Iterable<readonly [string, string]>;
  /** Guest's initial working directory (wasi:cli/environment.initial-cwd). Default: none. */
  cwd?: string;
  /** Default: empty. */
  stdin?: StdinConfig;
  /** Default: 'inherit' (this process's stdout). */
  stdout?: OutputConfig;
  /** Default: 'inherit' (this process's stderr). */
  stderr?: OutputConfig;
}

/**
 * Thrown by wasi:cli/exit to unwind the guest; caught by the runner, which
 * turns it into an exit status. Embedders calling exports directly may catch it too.
 */
export class ExitSignal extends Error {
  override name = 'ExitSignal';
  readonly code: number;
  constructor(code: number) {
    super(`guest exited with status ${code}`);
    this.code = code;
  }
}

export class Cli {
  readonly args: string[];
  readonly env: [string, string][];
  readonly cwd: string | undefined;
  readonly stdin: ByteSource;
  readonly stdout: ByteSink;
  readonly stderr: ByteSink;
  /** the host fd behind each stdio stream, when it is one (for terminal queries) */
  readonly stdioFds: [number | null, number | null, number | null];

  constructor(config: CliConfig = {}) {
    this.args = [...(config.args ?? [])].map(String);
    const env = config.env ?? {};
    const pairs = Symbol.iterator in env ? [...(env as Iterable<readonly [string, string]>)] : Object.entries(env);
    this.env = pairs.map(([k, v]) => [String(k), String(v)]);
    this.cwd = config.cwd;
    const [stdin, inFd] = makeSource(config.stdin ?? 'null');
    const [stdout, outFd] = makeSink(config.stdout ?? 'inherit', 1);
    const [stderr, errFd] = makeSink(config.stderr ?? 'inherit', 2);
    this.stdin = stdin;
    this.stdout = stdout;
    this.stderr = stderr;
    this.stdioFds = [inFd, outFd, errFd];
  }

  /** Whether stdio stream `i` (0, 1, 2) is a terminal. */
  isTerminal(i: 0 | 1 | 2): boolean {
    const fd = this.stdioFds[i];
    // node:tty is loaded on first use (it brings node's stream stack; start-up time)
    return fd !== null && process.getBuiltinModule('node:tty').isatty(fd);
  }

  exit(code: number): never {
    throw new ExitSignal(code);
  }
}

function makeSource(c: StdinConfig): [ByteSource, number | null] {
  if (c === 'inherit') return [new FdSource(0, null), 0];
  if (c === 'null') return [EMPTY_SOURCE, null];
  if (typeof c === 'string') return [new BufferSource(new TextEncoder().encode(c)), null];
  if (c instanceof Uint8Array) return [new BufferSource(c), null];
  return [new FdSource(c.fd, null), c.fd];
}

function makeSink(c: OutputConfig, inheritFd: number): [ByteSink, number | null] {
  if (c === 'inherit') return [new FdSink(inheritFd, null), inheritFd];
  if (c === 'null') return [new NullSink(), null];
  if (typeof c === 'function') return [new CallbackSink(c), null];
  return [new FdSink(c.fd, null), c.fd];
}

// wasi:cli@0.2 (environment, exit, stdin/stdout/stderr, terminal-*) over the cli core.

import { HostResource } from '../../runtime/resources.ts';
import type { Cli } from '../core/cli.ts';
import { InputStream, OutputStream, type IoResources } from './io.ts';

/** A terminal handle carries nothing: the interfaces only say "this is a terminal". */
class Terminal {
  readonly fd: number;
  constructor(fd: number) { this.fd = fd; }
}

export function cliImports(cli: Cli, io: IoResources, version: string): Record<string, Record<string, unknown>> {
  const terminalInput = new HostResource('terminal-input');
  const terminalOutput = new HostResource('terminal-output');
  // Each get-std* call hands out a new handle the guest may drop; they share the core stream.
  const stdin = () => new InputStream({ readSync: (n) => cli.stdin.readSync(n), ready: () => cli.stdin.ready(), close() {} });
  const stdout = () => new OutputStream(sharedSink(cli.stdout));
  const stderr = () => new OutputStream(sharedSink(cli.stderr));
  return {
    [`wasi:cli/environment@${version}`]: {
      'get-environment': () => cli.env.map(([k, v]) => [k, v]),
      'get-arguments': () => cli.args.slice(),
      'initial-cwd': () => cli.cwd,
    },
    [`wasi:cli/exit@${version}`]: {
      exit: (status: { tag: 'ok' | 'err' }) => cli.exit(status.tag === 'ok' ? 0 : 1),
      'exit-with-code': (code: number) => cli.exit(code),
    },
    [`wasi:cli/stdin@${version}`]: { 'input-stream': io.inputStream, 'get-stdin': stdin },
    [`wasi:cli/stdout@${version}`]: { 'output-stream': io.outputStream, 'get-stdout': stdout },
    [`wasi:cli/stderr@${version}`]: { 'output-stream': io.outputStream, 'get-stderr': stderr },
    [`wasi:cli/terminal-input@${version}`]: { 'terminal-input': terminalInput },
    [`wasi:cli/terminal-output@${version}`]: { 'terminal-output': terminalOutput },
    [`wasi:cli/terminal-stdin@${version}`]: {
      'terminal-input': terminalInput,
      'get-terminal-stdin': () => (cli.isTerminal(0) ? new Terminal(0) : undefined),
    },
    [`wasi:cli/terminal-stdout@${version}`]: {
      'terminal-output': terminalOutput,
      'get-terminal-stdout': () => (cli.isTerminal(1) ? new Terminal(1) : undefined),
    },
    [`wasi:cli/terminal-stderr@${version}`]: {
      'terminal-output': terminalOutput,
      'get-terminal-stderr': () => (cli.isTerminal(2) ? new Terminal(2) : undefined),
    },
  };
}

/** Dropping a stdout handle must not close the process's stdout: wrap with a no-op close. */
function sharedSink(s: Cli['stdout']): Cli['stdout'] {
  return { writeSync: (b) => s.writeSync(b), flushSync: () => s.flushSync(), close() {} };
}

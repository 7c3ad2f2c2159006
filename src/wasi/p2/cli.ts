// wasi:cli@0.2 (environment, exit, stdin/stdout/stderr, terminal-*) over the cli core.

import { terminalImports } from '../terminal.ts';
import type { Cli } from '../core/cli.ts';
import { InputStream, OutputStream, type IoResources } from './io.ts';


export function cliImports(cli: Cli, io: IoResources, version: string): Record<string, Record<string, unknown>> {
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
    ...terminalImports(cli, version),
  };
}

/** Dropping a stdout handle must not close the process's stdout: wrap with a no-op close. */
function sharedSink(s: Cli['stdout']): Cli['stdout'] {
  return { writeSync: (b) => s.writeSync(b), flushSync: () => s.flushSync(), close() {} };
}

// wasi:cli@0.2 (environment, exit, stdin/stdout/stderr, terminal-*) over the cli core.

import { terminalImports } from '../terminal.ts';
import type { Cli } from '../core/cli.ts';
import type { ByteSource } from '../core/streams.ts';
import { InputStream, OutputStream, SinkWriter, type IoResources } from './io.ts';


export function cliImports(cli: Cli, io: IoResources, version: string): Record<string, Record<string, unknown>> {
  // Each get-std* call hands out a new handle the guest may drop; they share the core stream
  // (and, for output, one write queue, so bytes from several handles stay in order).
  const stdinSource = unclosable(cli.stdin);
  const stdoutWriter = new SinkWriter(cli.stdout);
  const stderrWriter = new SinkWriter(cli.stderr);
  const stdin = () => new InputStream(stdinSource);
  const stdout = () => new OutputStream(stdoutWriter);
  const stderr = () => new OutputStream(stderrWriter);
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

/** Dropping a stdin handle must not close the process's stdin. */
function unclosable(s: ByteSource): ByteSource {
  const out: ByteSource = { readSync: (n) => s.readSync(n), ready: () => s.ready(), close() {} };
  if (s.read) out.read = (n) => s.read!(n);
  if (s.readNow) out.readNow = (n) => s.readNow!(n);
  if (s.whenReadable) out.whenReadable = (sig) => s.whenReadable!(sig);
  return out;
}

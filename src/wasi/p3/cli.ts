// wasi:cli@0.3 (environment, exit, stdin/stdout/stderr as streams, terminal-*) over the cli core.

import { terminalImports } from '../terminal.ts';
import type { Cli } from '../core/cli.ts';
import type { FsErrorCode } from '../core/errors.ts';
import type { ByteSink } from '../core/streams.ts';
import { pumpToSink, sourceToStream } from './streams.ts';
import { err, ok, type Result } from '../wit-values.ts';
import { streamHandles } from '../../runtime/call.ts';
import type { GuestByteStream } from '../../runtime/host-streams.ts';

/** wasi:cli/types.error-code */
type CliErrorCode = 'io' | 'illegal-byte-sequence' | 'pipe';

function cliCode(code: FsErrorCode): CliErrorCode {
  return code === 'pipe' || code === 'illegal-byte-sequence' ? code : 'io';
}

const STDIN_CHUNK = 1 << 20;


export function cliImports(cli: Cli, version: string): Record<string, Record<string, unknown>> {
  // Every read-via-stream shares the one stdin; the core source stays open when a stream over it ends.
  const stdin = { readSync: (n: number) => cli.stdin.readSync(n), read: cli.stdin.read ? (n: number) => cli.stdin.read!(n) : undefined, ready: () => cli.stdin.ready(), close() {} };
  // The guest's stream arrives as a GuestByteStream (streamHandles), not a web
  // ReadableStream: pumpToSink reads it directly anyway, and making the first
  // web stream of a run costs ~3 ms of loading node's webstreams modules.
  const writeVia = (sink: ByteSink) => streamHandles(async (data: GuestByteStream): Promise<Result<undefined, CliErrorCode>> => {
    const code = await pumpToSink(data, sink, false);
    return code === null ? ok(undefined) : err(cliCode(code));
  });
  return {
    [`wasi:cli/environment@${version}`]: {
      'get-environment': () => cli.env.map(([k, v]) => [k, v]),
      'get-arguments': () => cli.args.slice(),
      'get-initial-cwd': () => cli.cwd,
    },
    [`wasi:cli/exit@${version}`]: {
      exit: (status: { tag: 'ok' | 'err' }) => cli.exit(status.tag === 'ok' ? 0 : 1),
      'exit-with-code': (code: number) => cli.exit(code),
    },
    [`wasi:cli/types@${version}`]: {},
    [`wasi:cli/stdin@${version}`]: {
      'read-via-stream': () => {
        const [stream, done] = sourceToStream(stdin, STDIN_CHUNK);
        return [stream, done.then((code) => (code === null ? ok(undefined) : err(cliCode(code))))];
      },
    },
    [`wasi:cli/stdout@${version}`]: { 'write-via-stream': writeVia(cli.stdout) },
    [`wasi:cli/stderr@${version}`]: { 'write-via-stream': writeVia(cli.stderr) },
    ...terminalImports(cli, version),
  };
}

// The `weir` subcommands. Loaded by main.ts only after the Node version check.

import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { HELP, UsageError, parseArgs } from './args.ts';
import type { InspectOptions, RunOptions, ServeOptions } from './args.ts';
import { printWit } from '../types/wit.ts';
import { DecodeError, ValidationError } from '../errors.ts';

/** Runs weir with `argv` (arguments after the script path); resolves to the exit status. */
export async function main(argv: string[]): Promise<number> {
  // `weir inspect x.wasm | head` closes stdout early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
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
  return e instanceof DecodeError || e instanceof ValidationError
    || (e instanceof Error && (e.name === 'DecodeError' || e.name === 'ValidationError' || e.name === 'LinkError'));
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
    const bytes = await readFile(opts.file);
    const { Component } = await import('../index.ts');
    const component = Component.compile(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    process.stdout.write(printWit(component.type, opts.world));
    return 0;
  } catch (e) {
    return report(opts.file, e, opts.verbose);
  }
}

// TODO(lead): wire `run` to the WASI hosts (preopens from opts.dirs, environment from
// opts.env / opts.inheritEnv, argv = [basename(opts.file), ...opts.args]).
async function run(opts: RunOptions): Promise<number> {
  void opts;
  process.stderr.write('weir run: not implemented yet\n');
  return 1;
}

// TODO(lead): wire `serve` to wasi:http (listen on opts.host:opts.port).
async function serve(opts: ServeOptions): Promise<number> {
  void opts;
  process.stderr.write('weir serve: not implemented yet\n');
  return 1;
}

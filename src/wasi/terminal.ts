// wasi:cli terminal-* interfaces: the same shape in WASI 0.2 and 0.3, so one
// binding serves both versions.

import { HostResource } from '../runtime/resources.ts';
import type { Cli } from './core/cli.ts';

/** A terminal handle carries nothing: the interfaces only say "this is a terminal". */
class Terminal {
  readonly fd: number;
  constructor(fd: number) { this.fd = fd; }
}

export function terminalImports(cli: Cli, version: string): Record<string, Record<string, unknown>> {
  const terminalInput = new HostResource('terminal-input');
  const terminalOutput = new HostResource('terminal-output');
  const terminal = (fd: 0 | 1 | 2) => () => (cli.isTerminal(fd) ? new Terminal(fd) : undefined);
  return {
    [`wasi:cli/terminal-input@${version}`]: { 'terminal-input': terminalInput },
    [`wasi:cli/terminal-output@${version}`]: { 'terminal-output': terminalOutput },
    [`wasi:cli/terminal-stdin@${version}`]: { 'terminal-input': terminalInput, 'get-terminal-stdin': terminal(0) },
    [`wasi:cli/terminal-stdout@${version}`]: { 'terminal-output': terminalOutput, 'get-terminal-stdout': terminal(1) },
    [`wasi:cli/terminal-stderr@${version}`]: { 'terminal-output': terminalOutput, 'get-terminal-stderr': terminal(2) },
  };
}

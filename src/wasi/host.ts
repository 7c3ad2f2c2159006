// One WASI host: the OS-facing cores (cli, clocks, random, fs) configured
// once, faced by the p2 bindings (and the p3 ones, which share the same
// cores). Capability policy lives here: default deny.

import { Cli, ExitSignal, type CliConfig } from './core/cli.ts';
import { Clocks, type ClockConfig } from './core/clocks.ts';
import { Filesystem, type PreopenConfig } from './core/fs.ts';
import { Random, type RandomConfig } from './core/random.ts';

export interface WasiConfig extends CliConfig, ClockConfig, RandomConfig {
  /**
   * Directories the guest may use. Default: none. Either a list of
   * { host, guest, readonly? } or an object { guestPath: hostPath }.
   */
  preopens?: PreopenConfig[] | Record<string, string>;
}

export class WasiHost {
  readonly cli: Cli;
  readonly clocks: Clocks;
  readonly random: Random;
  readonly fs: Filesystem;
  constructor(config: WasiConfig = {}) {
    this.cli = new Cli(config);
    this.clocks = new Clocks(config);
    this.random = new Random(config);
    this.fs = new Filesystem(normalizePreopens(config.preopens));
  }
  /** Release host resources (preopened directory fds). */
  close(): void { this.fs.close(); }
}

function normalizePreopens(p: WasiConfig['preopens']): PreopenConfig[] {
  if (!p) return [];
  if (Array.isArray(p)) return p;
  return Object.entries(p).map(([guest, host]) => ({ host, guest }));
}

export { ExitSignal };

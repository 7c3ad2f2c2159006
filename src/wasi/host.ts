// One WASI host: the OS-facing cores (cli, clocks, random, fs) configured
// once, faced by the p2 bindings (and the p3 ones, which share the same
// cores). Capability policy lives here: default deny.

import { Cli, ExitSignal, type CliConfig } from './core/cli.ts';
import { Clocks, type ClockConfig } from './core/clocks.ts';
import { Filesystem, type PreopenConfig } from './core/fs.ts';
import { Random, type RandomConfig } from './core/random.ts';
import { HttpClient } from './core/http/client.ts';
import { OutboundPolicy } from './core/http/policy.ts';
import { Network } from './core/sockets/network.ts';
import type { NetworkConfig } from './core/sockets/policy.ts';

/** Outgoing HTTP (wasi:http client / outgoing-handler). Default: every request denied. */
export interface HttpConfig {
  /** Destinations a guest may send to: `HOST[:PORT]` patterns, `*` wildcards (see core/http/policy.ts). */
  allowOutbound?: string[];
  /** Allow every destination (`-S http`). */
  allowAll?: boolean;
  /** Receives one-line warnings (denied requests); the CLI passes a stderr writer under --verbose. */
  log?: (message: string) => void;
  /** Share one client (one connection pool) between hosts, e.g. every instance of a serve pool. */
  client?: HttpClient;
}

export interface WasiConfig extends CliConfig, ClockConfig, RandomConfig {
  /**
   * Directories the guest may use. Default: none. Either a list of
   * { host, guest, readonly? } or an object { guestPath: hostPath }.
   */
  preopens?: PreopenConfig[] | Record<string, string>;
  /** Outgoing HTTP policy and client. Default: deny all. */
  http?: HttpConfig;
  /**
   * wasi:sockets policy (src/wasi/core/sockets/policy.ts). Default: sockets may be
   * created and configured, but every bind/connect/listen/send and name lookup
   * is access-denied and no OS socket is opened.
   */
  network?: NetworkConfig;
}

export class WasiHost {
  readonly cli: Cli;
  readonly clocks: Clocks;
  readonly random: Random;
  readonly fs: Filesystem;
  /** wasi:sockets core: policy, resolver and the guest's sockets (shared by 0.2 and 0.3). */
  readonly network: Network;
  private readonly httpConfig: HttpConfig;
  private readonly httpPolicy: OutboundPolicy;
  private httpClient: HttpClient | null;
  constructor(config: WasiConfig = {}) {
    this.httpConfig = config.http ?? {};
    // Parsed now so a malformed pattern is reported before the guest runs.
    this.httpPolicy = new OutboundPolicy(this.httpConfig.allowOutbound ?? [], this.httpConfig.allowAll ?? false);
    this.httpClient = this.httpConfig.client ?? null;
    this.cli = new Cli(config);
    this.clocks = new Clocks(config);
    this.random = new Random(config);
    this.fs = new Filesystem(normalizePreopens(config.preopens));
    this.network = new Network(config.network); // parses the rules: a bad one throws NetRuleError now
  }
  /** The outgoing HTTP client, created on first use (its transport loads on the first send). */
  get http(): HttpClient {
    this.httpClient ??= new HttpClient({ policy: this.httpPolicy, log: this.httpConfig.log });
    return this.httpClient;
  }
  /** Release host resources (preopened directory fds, an owned HTTP pool). */
  close(): void {
    this.fs.close();
    this.network.close();
    if (this.httpClient && this.httpClient !== this.httpConfig.client) this.httpClient.close();
  }
}

function normalizePreopens(p: WasiConfig['preopens']): PreopenConfig[] {
  if (!p) return [];
  if (Array.isArray(p)) return p;
  return Object.entries(p).map(([guest, host]) => ({ host, guest }));
}

export { ExitSignal };

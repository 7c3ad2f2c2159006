// WASI hosts for Weir: createWasi(config) builds the cores once and returns
// import objects for the WASI versions Weir implements.

import type { Imports } from '../host/component.ts';
import { WasiHost, type WasiConfig } from './host.ts';
import { p2Imports } from './p2/index.ts';
import { p3Imports } from './p3/index.ts';

export { WasiHost, type WasiConfig, type HttpConfig } from './host.ts';
export { HttpClient, type HttpClientOptions, type RawRequest, type RawResponse, type FieldEntries } from './core/http/client.ts';
export { OutboundPolicy } from './core/http/policy.ts';
export { HttpError, type ErrorCode } from './core/http/errors.ts';
export { ExitSignal, type StdinConfig, type OutputConfig, type CliConfig } from './core/cli.ts';
export type { PreopenConfig } from './core/fs.ts';
export { WasiError, type FsErrorCode } from './core/errors.ts';
export { runCommand, findRunExport } from './run.ts';
export { NetRuleError, type NetworkConfig, type SocketAddrCheck, type SocketAddrUse, type CheckedAddress } from './core/sockets/policy.ts';

export interface Wasi {
  /** WASI 0.2 imports (keys `wasi:*@0.2.12`, matching any 0.2.x import). */
  readonly p2: Imports;
  /** WASI 0.3 imports (keys `wasi:*@0.3.0`, matching any 0.3.x import). */
  readonly p3: Imports;
  /** All imports this host offers: pass to Component.instantiate. */
  readonly imports: Imports;
  readonly host: WasiHost;
  /** Close preopened directories. */
  close(): void;
}

/** Build a WASI host. Default deny: no preopens, empty environment, only `args`, empty stdin. */
export function createWasi(config: WasiConfig = {}): Wasi {
  const host = new WasiHost(config);
  const p2 = p2Imports(host);
  const p3 = p3Imports(host);
  return { p2, p3, imports: { ...p2, ...p3 }, host, close: () => host.close() };
}

/** WASI 0.3 imports alone. */
export function createWasiP3Imports(config: WasiConfig = {}): Imports {
  return createWasi(config).p3;
}

/** WASI 0.2 imports alone. */
export function createWasiP2Imports(config: WasiConfig = {}): Imports {
  return createWasi(config).p2;
}

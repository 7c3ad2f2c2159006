// WASI hosts for Weir: createWasi(config) builds the cores once and returns
// import objects for the WASI versions Weir implements (base.ts, with every
// interface: the network bindings of net.ts included).

import type { Imports } from '../host/component.ts';
import type { WasiConfig } from './host.ts';
import { createWasiWith, type Wasi } from './base.ts';
import { netBindings } from './net.ts';

export { WasiHost, type WasiConfig, type HttpConfig } from './host.ts';
export { HttpClient, type HttpClientOptions, type RawRequest, type RawResponse, type FieldEntries } from './core/http/client.ts';
export { OutboundPolicy } from './core/http/policy.ts';
export { HttpError, type ErrorCode } from './core/http/errors.ts';
export { ExitSignal, type StdinConfig, type OutputConfig, type CliConfig } from './core/cli.ts';
export type { PreopenConfig } from './core/fs.ts';
export { WasiError, type FsErrorCode } from './core/errors.ts';
export { runCommand, findRunExport } from './run.ts';
export { NetRuleError, type NetworkConfig, type SocketAddrCheck, type SocketAddrUse, type CheckedAddress } from './core/sockets/policy.ts';

export type { Wasi } from './base.ts';

/** Build a WASI host. Default deny: no preopens, empty environment, only `args`, empty stdin. */
export function createWasi(config: WasiConfig = {}): Wasi {
  return createWasiWith(config, netBindings);
}

/** WASI 0.3 imports alone. */
export function createWasiP3Imports(config: WasiConfig = {}): Imports {
  return createWasi(config).p3;
}

/** WASI 0.2 imports alone. */
export function createWasiP2Imports(config: WasiConfig = {}): Imports {
  return createWasi(config).p2;
}

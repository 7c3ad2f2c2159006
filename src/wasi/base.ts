// A WASI host with or without the network bindings: the cores configured
// once, faced by the 0.2 and 0.3 bindings. index.ts's createWasi passes every
// binding; `weir run` passes the network ones (net.ts, loaded on demand) only
// to a component that imports wasi:sockets or wasi:http.

import type { Imports } from '../host/component.ts';
import { WasiHost, type WasiConfig } from './host.ts';
import type { NetBindings } from './net.ts';
import { p2Imports } from './p2/index.ts';
import { p3Imports } from './p3/index.ts';

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

/** A WASI host whose imports include wasi:sockets and wasi:http only when `net` is given. */
export function createWasiWith(config: WasiConfig, net: NetBindings | null): Wasi {
  const host = new WasiHost(config);
  const p2 = p2Imports(host, net);
  const p3 = p3Imports(host, net);
  return { p2, p3, imports: { ...p2, ...p3 }, host, close: () => host.close() };
}

/** Whether a component importing `names` needs the network bindings (a wasi:sockets or wasi:http interface, any version). */
export function importsNetwork(names: Iterable<string>): boolean {
  for (const n of names) if (n.startsWith('wasi:sockets/') || n.startsWith('wasi:http/')) return true;
  return false;
}

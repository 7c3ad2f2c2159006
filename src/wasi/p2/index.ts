// WASI 0.2 imports: thin bindings over the shared cores.

import type { WasiHost } from '../host.ts';
import { cliImports } from './cli.ts';
import { clocksImports, randomImports } from './clocks.ts';
import { filesystemImports } from './filesystem.ts';
import { createIoResources, ioImports } from './io.ts';
import type { NetBindings } from '../net.ts';

/**
 * The version the keys carry. Imports match by semver, so these serve a
 * component importing any wasi:*@0.2.x.
 */
export const P2_VERSION = '0.2.12';

/** `net`: the sockets and http bindings (../net.ts), or null to leave those interfaces out. */
export function p2Imports(host: WasiHost, net: NetBindings | null): Record<string, Record<string, unknown>> {
  const io = createIoResources();
  return {
    ...ioImports(io, P2_VERSION),
    ...cliImports(host.cli, io, P2_VERSION),
    ...clocksImports(host.clocks, io, P2_VERSION),
    ...randomImports(host.random, P2_VERSION),
    ...filesystemImports(host.fs, io, P2_VERSION),
    ...(net ? net.p2(host, io, P2_VERSION) : {}),
  };
}

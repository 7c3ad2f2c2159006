// WASI 0.2 imports: thin bindings over the shared cores.

import type { WasiHost } from '../host.ts';
import { cliImports } from './cli.ts';
import { clocksImports, randomImports } from './clocks.ts';
import { filesystemImports } from './filesystem.ts';
import { createHttpResources, httpImports } from './http.ts';
import { createIoResources, ioImports } from './io.ts';
import { socketsImports } from './sockets.ts';

/**
 * The version the keys carry. Imports match by semver, so these serve a
 * component importing any wasi:*@0.2.x.
 */
export const P2_VERSION = '0.2.12';

export function p2Imports(host: WasiHost): Record<string, Record<string, unknown>> {
  return bindings(host);
}

function bindings(host: WasiHost): Record<string, Record<string, unknown>> {
  const io = createIoResources();
  return {
    ...ioImports(io, P2_VERSION),
    ...cliImports(host.cli, io, P2_VERSION),
    ...clocksImports(host.clocks, io, P2_VERSION),
    ...randomImports(host.random, P2_VERSION),
    ...filesystemImports(host.fs, io, P2_VERSION),
    ...socketsImports(host.network, io, P2_VERSION),
    ...httpImports(io, createHttpResources(), () => host.http, P2_VERSION),
  };
}

// WASI 0.3 imports: thin bindings over the same cores as the 0.2 ones.

import type { WasiHost } from '../host.ts';
import { cliImports } from './cli.ts';
import { clocksImports, randomImports } from './clocks.ts';
import { filesystemImports } from './filesystem.ts';
import { httpImports } from './http.ts';
import { socketsImports } from './sockets.ts';

/**
 * The version the keys carry. Imports match by semver, so these serve a
 * component importing any wasi:*@0.3.x (and no pre-release such as 0.3.0-rc-…).
 */
export const P3_VERSION = '0.3.0';

export function p3Imports(host: WasiHost): Record<string, Record<string, unknown>> {
  return {
    ...cliImports(host.cli, P3_VERSION),
    ...clocksImports(host.clocks, P3_VERSION),
    ...randomImports(host.random, P3_VERSION),
    ...filesystemImports(host.fs, P3_VERSION),
    ...socketsImports(host.network, P3_VERSION),
    ...httpImports({ client: () => host.http, version: P3_VERSION }),
  };
}

// WASI 0.3 imports: thin bindings over the same cores as the 0.2 ones.

import type { WasiHost } from '../host.ts';
import { cliImports } from './cli.ts';
import { clocksImports, randomImports } from './clocks.ts';
import { filesystemImports } from './filesystem.ts';
import type { NetBindings } from '../net.ts';

/**
 * The version the keys carry. Imports match by semver, so these serve a
 * component importing any wasi:*@0.3.x (and no pre-release such as 0.3.0-rc-…).
 */
export const P3_VERSION = '0.3.0';

/** `net`: the sockets and http bindings (../net.ts), or null to leave those interfaces out. */
export function p3Imports(host: WasiHost, net: NetBindings | null): Record<string, Record<string, unknown>> {
  return {
    ...cliImports(host.cli, P3_VERSION),
    ...clocksImports(host.clocks, P3_VERSION),
    ...randomImports(host.random, P3_VERSION),
    ...filesystemImports(host.fs, P3_VERSION),
    ...(net ? net.p3(host, P3_VERSION) : {}),
  };
}

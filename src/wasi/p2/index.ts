// WASI 0.2 imports: thin bindings over the shared cores.

import type { WasiHost } from '../host.ts';
import { cliImports } from './cli.ts';
import { clocksImports, randomImports } from './clocks.ts';
import { filesystemImports } from './filesystem.ts';
import { createIoResources, ioImports } from './io.ts';
import { socketsImports } from './sockets.ts';

/**
 * The version the keys carry. Imports match by semver, so these serve a
 * component importing any wasi:*@0.2.x.
 */
export const P2_VERSION = '0.2.12';

/**
 * Non-resource types each interface exports (or `use`s). Workaround: the
 * embedding API (src/host/component.ts) leaves a type export out of a host
 * instance unless the host object names it, and a component that aliases such
 * a type (e.g. wall-clock's `datetime`) then fails to link with "instance has
 * no export". Naming them here with a placeholder is harmless once fixed.
 */
const TYPE_EXPORTS: Record<string, string[]> = {
  'wasi:clocks/monotonic-clock': ['instant', 'duration'],
  'wasi:clocks/wall-clock': ['datetime'],
  'wasi:filesystem/types': [
    'filesize', 'descriptor-type', 'descriptor-flags', 'descriptor-stat', 'path-flags', 'open-flags', 'link-count',
    'new-timestamp', 'directory-entry', 'error-code', 'advice', 'metadata-hash-value', 'datetime',
  ],
  'wasi:io/streams': ['stream-error'],
  'wasi:sockets/network': [
    'error-code', 'ip-address-family', 'ipv4-address', 'ipv6-address', 'ip-address', 'ipv4-socket-address',
    'ipv6-socket-address', 'ip-socket-address',
  ],
  'wasi:sockets/ip-name-lookup': ['error-code', 'ip-address'],
  'wasi:sockets/tcp-create-socket': ['error-code', 'ip-address-family'],
  'wasi:sockets/tcp': ['shutdown-type', 'duration', 'error-code', 'ip-socket-address', 'ip-address-family'],
  'wasi:sockets/udp-create-socket': ['error-code', 'ip-address-family'],
  'wasi:sockets/udp': ['incoming-datagram', 'outgoing-datagram', 'error-code', 'ip-socket-address', 'ip-address-family'],
};
const TYPE_PLACEHOLDER = Object.freeze({});

export function p2Imports(host: WasiHost): Record<string, Record<string, unknown>> {
  const all = bindings(host);
  for (const [iface, names] of Object.entries(TYPE_EXPORTS)) {
    const obj = all[`${iface}@${P2_VERSION}`];
    if (!obj) continue;
    // (the sockets objects are Proxies over plain targets: plain assignment works)
    for (const n of names) if (!Object.prototype.hasOwnProperty.call(obj, n)) obj[n] = TYPE_PLACEHOLDER;
  }
  return all;
}

function bindings(host: WasiHost): Record<string, Record<string, unknown>> {
  const io = createIoResources();
  return {
    ...ioImports(io, host.clocks, P2_VERSION),
    ...cliImports(host.cli, io, P2_VERSION),
    ...clocksImports(host.clocks, io, P2_VERSION),
    ...randomImports(host.random, P2_VERSION),
    ...filesystemImports(host.fs, io, P2_VERSION),
    ...socketsImports(io, P2_VERSION),
  };
}

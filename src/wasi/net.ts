// The wasi:sockets and wasi:http bindings (0.2 and 0.3), kept apart from the
// rest of the WASI faces so that `weir run` loads them only for a component
// that imports one of those interfaces: scripts/bundle-cli.ts puts what only
// this module reaches in a chunk of its own, and a run of a command without
// them (most) reads, compiles and caches ~80 KB less (hello: ~2 ms of ~30).
// The library entry (./index.ts) imports it statically: createWasi offers
// every interface, as before.

import type { WasiHost } from './host.ts';
import type { IoResources } from './p2/io.ts';
import { createHttpResources, httpImports as p2HttpImports } from './p2/http.ts';
import { socketsImports as p2SocketsImports } from './p2/sockets.ts';
import { httpImports as p3HttpImports } from './p3/http.ts';
import { socketsImports as p3SocketsImports } from './p3/sockets.ts';

type ImportRecord = Record<string, Record<string, unknown>>;

/** Builds the network interfaces' imports for p2Imports / p3Imports. */
export interface NetBindings {
  p2(host: WasiHost, io: IoResources, version: string): ImportRecord;
  p3(host: WasiHost, version: string): ImportRecord;
}

export const netBindings: NetBindings = {
  p2: (host, io, version) => ({
    ...p2SocketsImports(host.network, io, version),
    ...p2HttpImports(io, createHttpResources(), () => host.http, version),
  }),
  p3: (host, version) => ({
    ...p3SocketsImports(host.network, version),
    ...p3HttpImports({ client: () => host.http, version }),
  }),
};


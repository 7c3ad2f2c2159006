// wasi:sockets@0.2, default deny: a guest may import the interfaces (most
// toolchains' command worlds do) but every attempt to create a socket or
// resolve a name fails with `access-denied`. No socket resource can ever
// exist, so their methods are unreachable and trap if called anyway.
// TODO(wasi): network grants (address/port rules) once the sockets core exists.

import { Trap } from '../../errors.ts';
import { HostResource } from '../../runtime/resources.ts';
import type { IoResources } from './io.ts';

const denied = { tag: 'err', val: 'access-denied' } as const;

/** An instance whose resource methods (`[method]…`, `[static]…`, `[constructor]…`) all trap. */
function unreachableMethods(fixed: Record<string, unknown>): Record<string, unknown> {
  const trapFn = (name: string) => () => { throw new Trap(`${name}: no such socket (network access is denied)`); };
  return new Proxy(fixed, {
    getOwnPropertyDescriptor(target, key) {
      if (typeof key === 'string' && key.startsWith('[') && !(key in target)) {
        return { value: trapFn(key), writable: false, enumerable: true, configurable: true };
      }
      return Reflect.getOwnPropertyDescriptor(target, key);
    },
    get(target, key, recv) {
      if (typeof key === 'string' && key.startsWith('[') && !(key in target)) return trapFn(key);
      return Reflect.get(target, key, recv);
    },
  });
}

export function socketsImports(io: IoResources, version: string): Record<string, Record<string, unknown>> {
  const network = new HostResource('network');
  const tcpSocket = new HostResource('tcp-socket');
  const udpSocket = new HostResource('udp-socket');
  const theNetwork = Object.freeze({ kind: 'network' });
  return {
    [`wasi:sockets/network@${version}`]: {
      network,
      error: io.error,
      'network-error-code': () => undefined,
    },
    [`wasi:sockets/instance-network@${version}`]: { network, 'instance-network': () => theNetwork },
    [`wasi:sockets/ip-name-lookup@${version}`]: unreachableMethods({
      network,
      pollable: io.pollable,
      'resolve-address-stream': new HostResource('resolve-address-stream'),
      'resolve-addresses': () => denied,
    }),
    [`wasi:sockets/tcp-create-socket@${version}`]: { network, 'tcp-socket': tcpSocket, 'create-tcp-socket': () => denied },
    [`wasi:sockets/tcp@${version}`]: unreachableMethods({
      network, 'tcp-socket': tcpSocket, pollable: io.pollable, 'input-stream': io.inputStream, 'output-stream': io.outputStream,
    }),
    [`wasi:sockets/udp-create-socket@${version}`]: { network, 'udp-socket': udpSocket, 'create-udp-socket': () => denied },
    [`wasi:sockets/udp@${version}`]: unreachableMethods({
      network, 'udp-socket': udpSocket, pollable: io.pollable,
      'incoming-datagram-stream': new HostResource('incoming-datagram-stream'),
      'outgoing-datagram-stream': new HostResource('outgoing-datagram-stream'),
    }),
  };
}

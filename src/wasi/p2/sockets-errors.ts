// wasi:sockets@0.2 error codes and the network capability handle.

import { LookupError, SocketError, socketErrorCode } from '../core/sockets/index.ts';

/** wasi:sockets/network@0.2 error-code: one flat enum. */
export type P2ErrorCode =
  | 'unknown' | 'access-denied' | 'not-supported' | 'invalid-argument' | 'out-of-memory' | 'timeout'
  | 'concurrency-conflict' | 'not-in-progress' | 'would-block' | 'invalid-state' | 'new-socket-limit'
  | 'address-not-bindable' | 'address-in-use' | 'remote-unreachable' | 'connection-refused'
  | 'connection-reset' | 'connection-aborted' | 'datagram-too-large' | 'name-unresolvable'
  | 'temporary-resolver-failure' | 'permanent-resolver-failure';

/** A 0.3-named code of the core as 0.2 has it: 0.2 has no `connection-broken` and no `other` (both `unknown`). */
export function p2Code(code: string): P2ErrorCode {
  return code === 'connection-broken' || code === 'other' ? 'unknown' : code as P2ErrorCode;
}

/** Any failure of a core call as a 0.2 error-code (nothing of the host's error reaches the guest). */
export function p2ErrorCode(e: unknown): P2ErrorCode {
  if (e instanceof SocketError || e instanceof LookupError) return p2Code(e.code);
  return p2Code(socketErrorCode(e));
}

/** The `network` resource: 0.2's capability handle. One per host; the grants live in the core's policy. */
export class P2Network {}

export { SocketError };

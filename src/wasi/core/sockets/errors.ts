// Errors of the sockets core: the wasi:sockets@0.3 `error-code` case names,
// and the ONE table that maps Node/libuv error codes onto them. A core
// operation never lets a Node error (whose message names host addresses or
// syscalls) reach a face: it throws a SocketError that carries only the code.
//
// 0.2 faces: the 0.2 enum has no `connection-broken` and no `other`; map both
// to `unknown` (as wasmtime does). `would-block`, `not-in-progress`,
// `concurrency-conflict` are 0.2 face states, never produced here.

/** wasi:sockets/types@0.3.0 error-code (`other` carries no text: Weir never leaks host detail). */
export type SocketErrorCode =
  | 'access-denied' | 'not-supported' | 'invalid-argument' | 'out-of-memory' | 'timeout'
  | 'invalid-state' | 'address-not-bindable' | 'address-in-use' | 'remote-unreachable'
  | 'connection-refused' | 'connection-broken' | 'connection-reset' | 'connection-aborted'
  | 'datagram-too-large' | 'other';

/** wasi:sockets/ip-name-lookup error-code (0.3); 0.2 uses the same names in its flat enum. */
export type LookupErrorCode =
  | 'access-denied' | 'invalid-argument' | 'name-unresolvable'
  | 'temporary-resolver-failure' | 'permanent-resolver-failure' | 'other';

export class SocketError extends Error {
  override name = 'SocketError';
  readonly code: SocketErrorCode;
  constructor(code: SocketErrorCode) {
    super(code);
    this.code = code;
  }
}

export class LookupError extends Error {
  override name = 'LookupError';
  readonly code: LookupErrorCode;
  constructor(code: LookupErrorCode) {
    super(code);
    this.code = code;
  }
}

/** Node/libuv `err.code` → wasi:sockets error-code. The only such table in Weir. */
export const NODE_SOCKET_ERRORS: Readonly<Record<string, SocketErrorCode>> = {
  EACCES: 'access-denied',
  EPERM: 'access-denied',
  ERR_IP_BLOCKED: 'access-denied',
  ENOTSUP: 'not-supported',
  EOPNOTSUPP: 'not-supported',
  ENOSYS: 'not-supported',
  EAFNOSUPPORT: 'not-supported',
  EPROTONOSUPPORT: 'not-supported',
  EINVAL: 'invalid-argument',
  EDESTADDRREQ: 'invalid-argument',
  ERR_SOCKET_BAD_PORT: 'invalid-argument',
  ERR_INVALID_ARG_VALUE: 'invalid-argument',
  ERR_INVALID_ARG_TYPE: 'invalid-argument',
  ERR_OUT_OF_RANGE: 'invalid-argument',
  ERR_SOCKET_BAD_BUFFER_SIZE: 'invalid-argument',
  ENOMEM: 'out-of-memory',
  ENOBUFS: 'out-of-memory',
  EMFILE: 'out-of-memory',
  ENFILE: 'out-of-memory',
  ETIMEDOUT: 'timeout',
  EALREADY: 'invalid-state',
  EISCONN: 'invalid-state',
  ENOTCONN: 'invalid-state',
  EINPROGRESS: 'invalid-state',
  EBADF: 'invalid-state',
  ERR_SOCKET_ALREADY_BOUND: 'invalid-state',
  ERR_SOCKET_DGRAM_IS_CONNECTED: 'invalid-state',
  ERR_SOCKET_DGRAM_NOT_CONNECTED: 'invalid-state',
  ERR_SOCKET_DGRAM_NOT_RUNNING: 'invalid-state',
  ERR_SOCKET_CLOSED: 'invalid-state',
  ERR_SOCKET_HANDLE_ADOPTED: 'invalid-state',
  ERR_STREAM_DESTROYED: 'connection-broken',
  ERR_STREAM_WRITE_AFTER_END: 'invalid-state',
  EADDRNOTAVAIL: 'address-not-bindable',
  EADDRINUSE: 'address-in-use',
  EHOSTUNREACH: 'remote-unreachable',
  ENETUNREACH: 'remote-unreachable',
  EHOSTDOWN: 'remote-unreachable',
  ENETDOWN: 'remote-unreachable',
  ENONET: 'remote-unreachable',
  ECONNREFUSED: 'connection-refused',
  EPIPE: 'connection-broken',
  ERR_SOCKET_CLOSED_BEFORE_CONNECTION: 'connection-aborted',
  ECONNRESET: 'connection-reset',
  ENETRESET: 'connection-reset',
  ECONNABORTED: 'connection-aborted',
  EMSGSIZE: 'datagram-too-large',
};

/** Map any error (Node system error, Node ERR_*, SocketError) to a code; unknown ones are `other`. */
export function socketErrorCode(e: unknown): SocketErrorCode {
  if (e instanceof SocketError) return e.code;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && Object.hasOwn(NODE_SOCKET_ERRORS, code)) return NODE_SOCKET_ERRORS[code];
  return 'other';
}

export function toSocketError(e: unknown): SocketError {
  return e instanceof SocketError ? e : new SocketError(socketErrorCode(e));
}

/** getaddrinfo / c-ares codes → ip-name-lookup error-code. */
export const NODE_LOOKUP_ERRORS: Readonly<Record<string, LookupErrorCode>> = {
  ENOTFOUND: 'name-unresolvable',
  EAI_NONAME: 'name-unresolvable',
  EAI_NODATA: 'name-unresolvable',
  ENODATA: 'name-unresolvable',
  EAI_AGAIN: 'temporary-resolver-failure',
  ETIMEOUT: 'temporary-resolver-failure',
  ECONNREFUSED: 'temporary-resolver-failure',
  ESERVFAIL: 'temporary-resolver-failure',
  EAI_FAIL: 'permanent-resolver-failure',
  EREFUSED: 'permanent-resolver-failure',
  EBADNAME: 'invalid-argument',
  EBADFAMILY: 'invalid-argument',
  ERR_INVALID_ARG_VALUE: 'invalid-argument',
};

export function lookupErrorCode(e: unknown): LookupErrorCode {
  if (e instanceof LookupError) return e.code;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && Object.hasOwn(NODE_LOOKUP_ERRORS, code)) return NODE_LOOKUP_ERRORS[code];
  return 'other';
}

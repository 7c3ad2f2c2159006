// Errors of the OS-facing cores, named by the WASI `error-code` cases that
// both wasi:filesystem@0.2 and @0.3 share. A core never lets a host error
// (with its message, which may carry a host path) reach a binding: it throws
// a WasiError whose only payload is the code.

import { isWeirError } from '../../errors.ts';

/** The `error-code` enum of wasi:filesystem (identical in 0.2 and 0.3). */
export type FsErrorCode =
  | 'access' | 'would-block' | 'already' | 'bad-descriptor' | 'busy' | 'deadlock' | 'quota'
  | 'exist' | 'file-too-large' | 'illegal-byte-sequence' | 'in-progress' | 'interrupted'
  | 'invalid' | 'io' | 'is-directory' | 'loop' | 'too-many-links' | 'message-size'
  | 'name-too-long' | 'no-device' | 'no-entry' | 'no-lock' | 'insufficient-memory'
  | 'insufficient-space' | 'not-directory' | 'not-empty' | 'not-recoverable' | 'unsupported'
  | 'no-tty' | 'no-such-device' | 'overflow' | 'not-permitted' | 'pipe' | 'read-only'
  | 'invalid-seek' | 'text-file-busy' | 'cross-device';

/** A failure reported to the guest as a WASI error code. Carries no host detail. */
export class WasiError extends Error {
  override name = 'WasiError';
  readonly code: FsErrorCode;
  constructor(code: FsErrorCode) {
    super(code);
    this.code = code;
  }
}

const ERRNO: Record<string, FsErrorCode> = {
  EACCES: 'access', EAGAIN: 'would-block', EWOULDBLOCK: 'would-block', EALREADY: 'already',
  EBADF: 'bad-descriptor', EBUSY: 'busy', EDEADLK: 'deadlock', EDQUOT: 'quota', EEXIST: 'exist',
  EFBIG: 'file-too-large', EILSEQ: 'illegal-byte-sequence', EINPROGRESS: 'in-progress',
  EINTR: 'interrupted', EINVAL: 'invalid', EIO: 'io', EISDIR: 'is-directory', ELOOP: 'loop',
  EMLINK: 'too-many-links', EMSGSIZE: 'message-size', ENAMETOOLONG: 'name-too-long',
  ENODEV: 'no-device', ENOENT: 'no-entry', ENOLCK: 'no-lock', ENOMEM: 'insufficient-memory',
  ENOSPC: 'insufficient-space', ENOTDIR: 'not-directory', ENOTEMPTY: 'not-empty',
  ENOTRECOVERABLE: 'not-recoverable', ENOTSUP: 'unsupported', EOPNOTSUPP: 'unsupported',
  ENOSYS: 'unsupported', ENOTTY: 'no-tty', ENXIO: 'no-such-device', EOVERFLOW: 'overflow',
  EPERM: 'not-permitted', EPIPE: 'pipe', EROFS: 'read-only', ESPIPE: 'invalid-seek',
  ETXTBSY: 'text-file-busy', EXDEV: 'cross-device', EMFILE: 'insufficient-memory',
  ENFILE: 'insufficient-memory',
};

/**
 * Is `e` a host failure to report to the guest as an error code: a core's
 * WasiError or an error with a string `code` (Node system errors, the sockets
 * core's SocketError)? Weir's own errors (a Trap …, code 'WEIR_…'), ExitSignal
 * and bugs are not: they propagate.
 */
export function isHostError(e: unknown): boolean {
  if (e instanceof WasiError) return true;
  return typeof (e as { code?: unknown } | null)?.code === 'string' && !isWeirError(e) && (e as Error).name !== 'ExitSignal';
}

/** Map a Node system error (err.code = 'ENOENT', ...) to a WASI error code. */
export function errnoToCode(e: unknown): FsErrorCode {
  if (e instanceof WasiError) return e.code;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code in ERRNO) return ERRNO[code];
  if (e instanceof RangeError || e instanceof TypeError) return 'invalid';
  return 'io';
}

/** Rethrow anything as a WasiError (never a host message). */
export function toWasiError(e: unknown): WasiError {
  return e instanceof WasiError ? e : new WasiError(errnoToCode(e));
}

/** Run `f`, converting host errors into WasiErrors. */
export function sys<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw toWasiError(e);
  }
}

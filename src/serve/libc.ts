// The few C library calls serve needs that Node has no API for, through
// node:ffi (Node 26; experimental, so its one warning is kept off the
// server's stderr). Each is null where node:ffi, the library or the call is
// missing (another C library, FFI turned off or not permitted): callers have
// a way without it.

type Fn = (...args: unknown[]) => unknown;
interface Ffi { dlopen(path: string, defs: Record<string, { arguments: string[]; return: string }>): { functions: Record<string, Fn> } }

export interface Libc {
  /** dup(2): a second descriptor of the same open file (here: one listening socket for every worker). */
  dup(fd: number): number;
  /** dup2(2): makes `to` a descriptor of what `from` is (closing what `to` was, in one step). */
  dup2(from: number, to: number): number;
  /** close(2) */
  close(fd: number): number;
  /**
   * recv(2) with MSG_PEEK | MSG_DONTWAIT: copies what is waiting on socket `fd`
   * into `into` without taking it. The count, 0 if the peer closed, -1 if
   * nothing is waiting (or an error).
   */
  peek(fd: number, into: Buffer): number;
  /** glibc's malloc_trim(3); null on another C library. */
  mallocTrim: ((pad: number) => number) | null;
}

let cached: Libc | null | undefined;

const MSG_PEEK = 0x2;
const MSG_DONTWAIT_LINUX = 0x40;
const MSG_DONTWAIT_DARWIN = 0x80;

/** The process runs on glibc (Linux; Node's report names the runtime's glibc version). */
export function glibcRuntime(): boolean {
  if (process.platform !== 'linux') return false;
  const report = process.report?.getReport?.() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return !!report?.header?.glibcVersionRuntime;
}

/** The C library's calls, or null without node:ffi or a known C library. */
export function libc(): Libc | null {
  if (cached !== undefined) return cached;
  cached = null;
  const glibc = glibcRuntime();
  const path = glibc ? 'libc.so.6' : process.platform === 'darwin' ? '/usr/lib/libSystem.B.dylib' : null;
  if (!path) return null;
  const emitWarning = process.emitWarning;
  process.emitWarning = ((w: string | Error, ...rest: unknown[]) => {
    if (/\bFFI\b/.test(typeof w === 'string' ? w : w.message)) return;
    (emitWarning as (...a: unknown[]) => void).call(process, w, ...rest);
  }) as typeof process.emitWarning;
  try {
    const ffi = process.getBuiltinModule('node:ffi') as Ffi | undefined;
    if (!ffi) return null;
    const int = { arguments: ['int32'], return: 'int32' };
    const f = ffi.dlopen(path, {
      dup: int, dup2: { arguments: ['int32', 'int32'], return: 'int32' }, close: int,
      recv: { arguments: ['int32', 'buffer', 'uint64', 'int32'], return: 'int64' },
      ...(glibc ? { malloc_trim: { arguments: ['uint64'], return: 'int32' } } : {}),
    }).functions;
    const trim = f.malloc_trim;
    if (typeof f.dup !== 'function' || typeof f.dup2 !== 'function' || typeof f.close !== 'function' || typeof f.recv !== 'function') return null;
    const peekFlags = MSG_PEEK | (process.platform === 'darwin' ? MSG_DONTWAIT_DARWIN : MSG_DONTWAIT_LINUX);
    cached = {
      dup: (fd) => f.dup(fd) as number,
      dup2: (from, to) => f.dup2(from, to) as number,
      close: (fd) => f.close(fd) as number,
      peek: (fd, into) => Number(f.recv(fd, into, BigInt(into.length), peekFlags) as bigint),
      mallocTrim: typeof trim === 'function' ? (pad) => trim(BigInt(pad)) as number : null,
    };
  } catch {
    cached = null;
  } finally {
    process.emitWarning = emitWarning;
  }
  return cached;
}

// The filesystem core: preopened directories and a race-free sandbox over them.
//
// Node has no openat(2), but on Linux `/proc/self/fd/N/name` is resolved by
// the kernel as "look up `name` in the directory open as fd N", whatever
// path that directory has now. Weir resolves every guest path one component
// at a time this way, from an already-open directory fd:
//
//  - each intermediate component is opened with O_PATH|O_DIRECTORY|O_NOFOLLOW
//    relative to the fd of the previous one, so a directory swapped for a
//    symlink mid-walk fails the open (ENOTDIR/ELOOP) instead of being followed;
//  - a component that is a symlink is read with readlink(2) and expanded by
//    Weir itself, in guest terms: absolute targets are refused, `..` pops the
//    stack of open directory fds and may never pop the preopen itself,
//    chains and loops are bounded (40 expansions, then `loop`);
//  - the final component is opened/stat'ed/unlinked with no-follow syscalls
//    relative to its parent's fd, so nothing the guest names is ever followed
//    by the kernel;
//  - as defence in depth, every newly opened descriptor is re-verified: its
//    /proc/self/fd link must lie under the preopen root's, else it is closed
//    and the call fails with `not-permitted`.
//
// Errors are WasiError codes only; host paths never reach the guest (not in
// errors, not in readlink results: absolute link targets are refused).

import {
  closeSync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, futimesSync, linkSync, lstatSync,
  lutimesSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, renameSync, rmdirSync,
  symlinkSync, unlinkSync, writeSync, constants as C, existsSync, type BigIntStats, type Dirent,
} from 'node:fs';
import { WasiError, sys, toWasiError } from './errors.ts';
import { FdSink, FdSource, MAX_READ, type ByteSink, type ByteSource } from './streams.ts';

export interface PreopenConfig {
  /** directory on the host */
  host: string;
  /** name the guest sees (e.g. "/" or "/data" or ".") */
  guest: string;
  /** when true the guest may not create, change or delete anything under it */
  readonly?: boolean;
}

export type DescriptorType =
  | 'unknown' | 'block-device' | 'character-device' | 'directory' | 'fifo'
  | 'symbolic-link' | 'regular-file' | 'socket';

export interface DescriptorFlags {
  read?: boolean;
  write?: boolean;
  fileIntegritySync?: boolean;
  dataIntegritySync?: boolean;
  requestedWriteSync?: boolean;
  mutateDirectory?: boolean;
}

export interface OpenFlags {
  create?: boolean;
  directory?: boolean;
  exclusive?: boolean;
  truncate?: boolean;
}

export interface Stat {
  type: DescriptorType;
  linkCount: bigint;
  size: bigint;
  /** nanoseconds since the epoch */
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** A new timestamp for set-times: leave it, set it to now, or set it to `ns`. */
export type NewTimestamp = { kind: 'no-change' } | { kind: 'now' } | { kind: 'at'; ns: bigint };

const O_PATH = 0o10000000; // Linux (x86, arm, riscv, ...): not in fs.constants
const MAX_SYMLINK_EXPANSIONS = 40;

let sandboxChecked: boolean | undefined;
/** Whether this platform supports the race-free resolution above (asked on the first preopen, not at load: a stat every run does not need). */
export function sandboxSupported(): boolean {
  return sandboxChecked ??= process.platform === 'linux' && existsSync('/proc/self/fd');
}

function at(fd: number, name: string): string {
  return `/proc/self/fd/${fd}/${name}`;
}

/** One preopen: its root fd and its policy. Shared by every descriptor opened under it. */
export class Sandbox {
  readonly rootFd: number;
  readonly readonly: boolean;
  /** every fd opened under this preopen and not yet closed */
  readonly openFds = new Set<OpenFd>();
  constructor(rootFd: number, readonly: boolean) {
    this.rootFd = rootFd;
    this.readonly = readonly;
  }
  /** The current host path of the root (for verification only; never shown to the guest). */
  rootPath(): string {
    return readlinkSync(`/proc/self/fd/${this.rootFd}`);
  }
}

/** A host fd shared by descriptors and streams; closed when the last user lets go. */
class OpenFd {
  readonly fd: number;
  private refs = 0;
  private registry: Set<OpenFd> | null;
  closed = false;
  constructor(fd: number, registry: Set<OpenFd> | null) {
    this.fd = fd;
    this.registry = registry;
    registry?.add(this);
  }
  ref(): () => void {
    this.refs++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.refs === 0) this.forceClose();
    };
  }
  /** Close now, whoever still refers to it (the host is shutting the filesystem down). */
  forceClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.registry?.delete(this);
    try { closeSync(this.fd); } catch { /* already gone */ }
  }
}

/** An open file or directory. The fd stays open while streams over it are alive. */
export class Descriptor {
  readonly type: DescriptorType;
  readonly flags: DescriptorFlags;
  readonly sandbox: Sandbox;
  private readonly file: OpenFd;
  private readonly unref: () => void;
  private dropped = false;
  constructor(file: OpenFd | number, type: DescriptorType, flags: DescriptorFlags, sandbox: Sandbox) {
    this.file = typeof file === 'number' ? new OpenFd(file, sandbox.openFds) : file;
    this.unref = this.file.ref();
    this.type = type;
    this.flags = flags;
    this.sandbox = sandbox;
  }
  get fd(): number { return this.file.fd; }
  get closed(): boolean { return this.dropped || this.file.closed; }
  /** For streams: whether the fd is still this descriptor's file. */
  readonly alive = (): boolean => !this.file.closed;
  get isDirectory(): boolean { return this.type === 'directory'; }
  canRead(): boolean { return !!this.flags.read; }
  canWrite(): boolean { return !!this.flags.write && !this.sandbox.readonly; }
  canMutate(): boolean { return !this.sandbox.readonly; }
  /** Keep the fd open for a stream; returns the release function. */
  retain(): () => void { return this.file.ref(); }
  /** Another descriptor for the same open file (each is closed separately). */
  clone(): Descriptor { return new Descriptor(this.file, this.type, this.flags, this.sandbox); }
  /** The guest dropped the descriptor. */
  close(): void {
    if (this.dropped) return;
    this.dropped = true;
    this.unref();
  }
  check(): void {
    if (this.dropped || this.file.closed) throw new WasiError('bad-descriptor');
  }
}

/** Result of walking a guest path: the parent directory fd and the last component. */
interface Walk {
  /** fd of the directory holding `name` */
  fd: number;
  /** a plain name (no '/'), or '.' for the directory itself */
  name: string;
  /** the guest path ended with '/' */
  trailingSlash: boolean;
  /** fds opened during the walk (closed by release) */
  owned: number[];
}

function release(w: Walk): void {
  for (const fd of w.owned) { try { closeSync(fd); } catch { /* ignore */ } }
  w.owned.length = 0;
}

function splitPath(p: string): string[] {
  const out: string[] = [];
  for (const c of p.split('/')) if (c !== '' && c !== '.') out.push(c);
  return out;
}

function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isBlockDevice(): boolean; isCharacterDevice(): boolean; isFIFO(): boolean; isSocket(): boolean }): DescriptorType {
  if (st.isFile()) return 'regular-file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symbolic-link';
  if (st.isCharacterDevice()) return 'character-device';
  if (st.isBlockDevice()) return 'block-device';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  return 'unknown';
}

function toStat(st: BigIntStats): Stat {
  return {
    type: typeOf(st),
    linkCount: st.nlink,
    size: st.size,
    atimeNs: st.atimeNs,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  };
}

function direntType(d: Dirent): DescriptorType {
  return typeOf(d);
}

export interface DirectoryEntry { type: DescriptorType; name: string }

export class Filesystem {
  /** The preopens, owned by this filesystem: hand out `getDirectories()` clones to guests. */
  readonly preopens: [Descriptor, string][] = [];
  private readonly sandboxes: Sandbox[] = [];

  /** Opens every preopen now; throws a host-facing Error if one cannot be opened. */
  constructor(preopens: PreopenConfig[] = []) {
    if (preopens.length > 0 && !sandboxSupported()) {
      throw new Error('weir: preopened directories need Linux (/proc/self/fd) for race-free path resolution');
    }
    try {
      for (const p of preopens) {
        let fd: number;
        try {
          fd = openSync(p.host, C.O_RDONLY | C.O_DIRECTORY);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          throw new Error(`cannot preopen ${JSON.stringify(p.host)}: ${code === 'ENOENT' ? 'no such directory' : code === 'ENOTDIR' ? 'not a directory' : code ?? String(e)}`);
        }
        const sb = new Sandbox(fd, !!p.readonly);
        this.sandboxes.push(sb);
        const flags: DescriptorFlags = { read: true, mutateDirectory: !p.readonly };
        // The preopen descriptor gets its own fd so that dropping it never closes the root.
        const dfd = openSync(`/proc/self/fd/${fd}`, C.O_RDONLY | C.O_DIRECTORY);
        this.preopens.push([new Descriptor(dfd, 'directory', flags, sb), p.guest]);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Fresh descriptors for the preopens (the guest owns and drops them). */
  getDirectories(): [Descriptor, string][] {
    return this.preopens.map(([d, name]) => [d.clone(), name]);
  }

  /** Close every host fd this filesystem opened for its preopens. */
  close(): void {
    for (const [d] of this.preopens) d.close();
    for (const s of this.sandboxes) {
      for (const f of [...s.openFds]) f.forceClose();
      try { closeSync(s.rootFd); } catch { /* ignore */ }
    }
    this.preopens.length = 0;
    this.sandboxes.length = 0;
  }

  // ---- path resolution -------------------------------------------------

  /**
   * Walk `path` from directory `dir`. With `follow`, a symlink in the last
   * position is expanded too (so is one followed by a trailing slash).
   */
  private walk(dir: Descriptor, path: string, follow: boolean): Walk {
    dir.check();
    if (!dir.isDirectory) throw new WasiError('not-directory');
    if (path.includes('\0')) throw new WasiError('invalid');
    if (path === '') throw new WasiError('no-entry');
    if (path.startsWith('/')) throw new WasiError('not-permitted');
    const trailingSlash = path.endsWith('/');
    if (trailingSlash) follow = true;
    const stack: number[] = [dir.fd];
    const owned: number[] = [];
    const w: Walk = { fd: dir.fd, name: '.', trailingSlash, owned };
    // components still to resolve, last one first
    const todo = splitPath(path).reverse();
    let expansions = 0;
    const expand = (target: string) => {
      if (++expansions > MAX_SYMLINK_EXPANSIONS) throw new WasiError('loop');
      if (target.startsWith('/')) throw new WasiError('not-permitted');
      const parts = splitPath(target);
      for (let i = parts.length - 1; i >= 0; i--) todo.push(parts[i]);
    };
    try {
      while (todo.length > 0) {
        const c = todo.pop()!;
        const top = stack[stack.length - 1];
        if (c === '..') {
          if (stack.length === 1) throw new WasiError('not-permitted');
          stack.pop();
          const fd = owned.pop()!;
          closeSync(fd);
          continue;
        }
        if (todo.length === 0 && !follow) {
          w.fd = top;
          w.name = c;
          return w;
        }
        if (todo.length === 0) {
          const target = readlinkOrNull(top, c);
          if (target === null) {
            w.fd = top;
            w.name = c;
            return w;
          }
          expand(target);
          continue;
        }
        let fd: number;
        try {
          fd = openSync(at(top, c), O_PATH | C.O_DIRECTORY | C.O_NOFOLLOW);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'ENOTDIR' && code !== 'ELOOP') throw toWasiError(e);
          const target = readlinkOrNull(top, c);
          if (target === null) {
            // Not a symlink (any more): if it is a directory now, it was swapped back
            // meanwhile; try this component again (bounded like symlink expansions).
            const now = kindAt(top, c);
            if (now === 'directory') {
              if (++expansions > MAX_SYMLINK_EXPANSIONS) throw new WasiError('loop');
              todo.push(c);
              continue;
            }
            throw now === 'missing' ? new WasiError('no-entry') : toWasiError(e);
          }
          expand(target);
          continue;
        }
        stack.push(fd);
        owned.push(fd);
      }
      // Everything cancelled out: the directory on top of the stack itself.
      w.fd = stack[stack.length - 1];
      w.name = '.';
      return w;
    } catch (e) {
      release(w);
      throw toWasiError(e);
    }
  }

  private withWalk<T>(dir: Descriptor, path: string, follow: boolean, f: (p: string, w: Walk) => T): T {
    const w = this.walk(dir, path, follow);
    try {
      return f(at(w.fd, w.name), w);
    } catch (e) {
      throw toWasiError(e);
    } finally {
      release(w);
    }
  }

  /** Refuse if `fd` is not (any longer) under the sandbox root. */
  private verify(fd: number, sb: Sandbox): void {
    let ok = false;
    try {
      const root = sb.rootPath();
      const p = readlinkSync(`/proc/self/fd/${fd}`);
      ok = root === '/' || p === root || p.startsWith(root + '/');
    } catch { ok = false; }
    if (!ok) {
      closeSync(fd);
      throw new WasiError('not-permitted');
    }
  }

  // ---- descriptor operations -------------------------------------------

  openAt(dir: Descriptor, follow: boolean, path: string, open: OpenFlags, flags: DescriptorFlags): Descriptor {
    dir.check();
    if (!dir.isDirectory) throw new WasiError('not-directory');
    // Access defaults: no read/write requested means read; `create` implies write.
    flags = { ...flags };
    if (!flags.read && !flags.write) flags.read = true;
    if (open.create) flags.write = true;
    const wantsMutation = !!(flags.write || flags.mutateDirectory || open.create || open.truncate);
    if (wantsMutation && !dir.canMutate()) throw new WasiError('not-permitted');
    if (open.directory && (open.create || open.truncate || flags.write)) {
      // A directory can be neither created by open nor opened for writing.
      if (open.create || flags.write) throw new WasiError(open.create ? 'invalid' : 'is-directory');
      throw new WasiError('invalid');
    }
    let oflags = C.O_NOFOLLOW;
    oflags |= flags.write ? (flags.read ? C.O_RDWR : C.O_WRONLY) : C.O_RDONLY;
    if (open.create) oflags |= C.O_CREAT;
    if (open.exclusive) oflags |= C.O_EXCL;
    if (open.truncate) oflags |= C.O_TRUNC;
    if (open.directory) oflags |= C.O_DIRECTORY;
    if (flags.fileIntegritySync || flags.requestedWriteSync) oflags |= C.O_SYNC;
    if (flags.dataIntegritySync) oflags |= C.O_DSYNC;
    // A symlink may be swapped in between the walk and the open: O_NOFOLLOW makes
    // that open fail with ELOOP, and then the walk is simply redone (bounded).
    for (let attempt = 0; ; attempt++) {
      const w = this.walk(dir, path, follow);
      try {
        if (w.trailingSlash) oflags |= C.O_DIRECTORY;
        let fd: number;
        try {
          fd = openSync(at(w.fd, w.name), oflags, 0o666);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ELOOP' && follow && attempt < MAX_SYMLINK_EXPANSIONS) continue;
          throw toWasiError(e);
        }
        this.verify(fd, dir.sandbox);
        let st: BigIntStats;
        try { st = fstatSync(fd, { bigint: true }); } catch (e) { closeSync(fd); throw toWasiError(e); }
        const type = typeOf(st);
        const granted: DescriptorFlags = {
          read: !!flags.read,
          write: !!flags.write,
          fileIntegritySync: !!flags.fileIntegritySync,
          dataIntegritySync: !!flags.dataIntegritySync,
          requestedWriteSync: !!flags.requestedWriteSync,
          mutateDirectory: type === 'directory' && !!flags.mutateDirectory && dir.canMutate(),
        };
        return new Descriptor(fd, type, granted, dir.sandbox);
      } finally {
        release(w);
      }
    }
  }

  stat(d: Descriptor): Stat {
    d.check();
    return sys(() => toStat(fstatSync(d.fd, { bigint: true })));
  }

  statAt(dir: Descriptor, follow: boolean, path: string): Stat {
    return this.withWalk(dir, path, follow, (p, w) => {
      const st = lstatSync(p, { bigint: true });
      if (w.trailingSlash && !st.isDirectory()) throw new WasiError('not-directory');
      return toStat(st);
    });
  }

  setTimes(d: Descriptor, atime: NewTimestamp, mtime: NewTimestamp): void {
    d.check();
    if (!d.canWrite() && !d.canMutate()) throw new WasiError('not-permitted');
    sys(() => {
      const cur = needsCurrent(atime, mtime) ? fstatSync(d.fd, { bigint: true }) : null;
      futimesSync(d.fd, tsArg(atime, cur?.atimeNs), tsArg(mtime, cur?.mtimeNs));
    });
  }

  setTimesAt(dir: Descriptor, follow: boolean, path: string, atime: NewTimestamp, mtime: NewTimestamp): void {
    if (!dir.canMutate()) throw new WasiError('not-permitted');
    this.withWalk(dir, path, follow, (p) => {
      // lutimes: the last component was resolved by the walk and is never followed by the kernel.
      const cur = needsCurrent(atime, mtime) ? lstatSync(p, { bigint: true }) : null;
      lutimesSync(p, tsArg(atime, cur?.atimeNs), tsArg(mtime, cur?.mtimeNs));
    });
  }

  setSize(d: Descriptor, size: bigint): void {
    d.check();
    if (d.isDirectory) throw new WasiError('is-directory');
    if (!d.canWrite()) throw new WasiError('bad-descriptor');
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new WasiError('file-too-large');
    sys(() => ftruncateSync(d.fd, Number(size)));
  }

  read(d: Descriptor, length: bigint, offset: bigint): [Uint8Array, boolean] {
    d.check();
    if (d.isDirectory) throw new WasiError('is-directory');
    if (!d.canRead()) throw new WasiError('bad-descriptor');
    const n = length > BigInt(MAX_READ) ? MAX_READ : Number(length);
    if (n === 0) return [new Uint8Array(0), false];
    const buf = new Uint8Array(n);
    const got = sys(() => readSync(d.fd, buf, 0, n, offset));
    return [got === n ? buf : buf.slice(0, got), got < n];
  }

  write(d: Descriptor, bytes: Uint8Array, offset: bigint): bigint {
    d.check();
    if (d.isDirectory) throw new WasiError('is-directory');
    if (!d.canWrite()) throw new WasiError('bad-descriptor');
    if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw new WasiError('file-too-large');
    return BigInt(sys(() => writeSync(d.fd, bytes, 0, bytes.length, Number(offset))));
  }

  readStream(d: Descriptor, offset: bigint): ByteSource {
    d.check();
    if (d.isDirectory) throw new WasiError('is-directory');
    if (!d.canRead()) throw new WasiError('bad-descriptor');
    return new FdSource(d.fd, offset, d.retain(), d.alive);
  }

  writeStream(d: Descriptor, offset: bigint): ByteSink {
    d.check();
    if (d.isDirectory) throw new WasiError('is-directory');
    if (!d.canWrite()) throw new WasiError('bad-descriptor');
    return new FdSink(d.fd, offset, d.retain(), d.alive);
  }

  appendStream(d: Descriptor): ByteSink {
    d.check();
    if (d.isDirectory) throw new WasiError('is-directory');
    if (!d.canWrite()) throw new WasiError('bad-descriptor');
    const release = d.retain();
    // Positional writes at the current end: stat before each write.
    return new FdSink(d.fd, 'append', release, d.alive);
  }

  readDirectory(d: Descriptor): DirectoryEntry[] {
    d.check();
    if (!d.isDirectory) throw new WasiError('not-directory');
    const entries = sys(() => readdirSync(`/proc/self/fd/${d.fd}`, { withFileTypes: true }));
    return entries.map((e) => ({ type: direntType(e), name: e.name }));
  }

  sync(d: Descriptor): void {
    d.check();
    sys(() => fsyncSync(d.fd));
  }

  syncData(d: Descriptor): void {
    d.check();
    sys(() => fdatasyncSync(d.fd));
  }

  advise(d: Descriptor): void {
    d.check();
    if (d.isDirectory) throw new WasiError('bad-descriptor');
  }

  createDirectoryAt(dir: Descriptor, path: string): void {
    if (!dir.canMutate()) throw new WasiError('not-permitted');
    this.withWalk(dir, path, false, (p) => mkdirSync(p, 0o777));
  }

  removeDirectoryAt(dir: Descriptor, path: string): void {
    if (!dir.canMutate()) throw new WasiError('not-permitted');
    this.withWalk(dir, path, false, (p) => rmdirSync(p));
  }

  unlinkFileAt(dir: Descriptor, path: string): void {
    if (!dir.canMutate()) throw new WasiError('not-permitted');
    this.withWalk(dir, path, false, (p, w) => {
      if (w.trailingSlash) {
        const st = lstatSync(p);
        throw new WasiError(st.isDirectory() ? 'is-directory' : 'not-directory');
      }
      unlinkSync(p);
    });
  }

  readlinkAt(dir: Descriptor, path: string): string {
    return this.withWalk(dir, path, false, (p) => {
      const target = readlinkSync(p);
      // An absolute target names a host path: never shown to the guest.
      if (target.startsWith('/')) throw new WasiError('not-permitted');
      return target;
    });
  }

  symlinkAt(dir: Descriptor, target: string, path: string): void {
    if (!dir.canMutate()) throw new WasiError('not-permitted');
    if (target.includes('\0')) throw new WasiError('invalid');
    if (target.startsWith('/')) throw new WasiError('not-permitted');
    this.withWalk(dir, path, false, (p, w) => {
      if (w.trailingSlash) throw new WasiError('no-entry');
      symlinkSync(target, p);
    });
  }

  renameAt(dir: Descriptor, oldPath: string, newDir: Descriptor, newPath: string): void {
    if (!dir.canMutate() || !newDir.canMutate()) throw new WasiError('not-permitted');
    this.withWalk(dir, oldPath, false, (from) => {
      this.withWalk(newDir, newPath, false, (to) => renameSync(from, to));
    });
  }

  linkAt(dir: Descriptor, follow: boolean, oldPath: string, newDir: Descriptor, newPath: string): void {
    if (!newDir.canMutate()) throw new WasiError('not-permitted');
    this.withWalk(dir, oldPath, follow, (from) => {
      // link(2) does not follow a symlink in `from`: with `follow` the walk already expanded it.
      this.withWalk(newDir, newPath, false, (to) => linkSync(from, to));
    });
  }

  isSameObject(a: Descriptor, b: Descriptor): boolean {
    a.check();
    b.check();
    if (a === b) return true;
    const sa = sys(() => fstatSync(a.fd, { bigint: true }));
    const sb = sys(() => fstatSync(b.fd, { bigint: true }));
    return sa.dev === sb.dev && sa.ino === sb.ino;
  }

  metadataHash(d: Descriptor): { lower: bigint; upper: bigint } {
    d.check();
    return hashOf(sys(() => fstatSync(d.fd, { bigint: true })));
  }

  metadataHashAt(dir: Descriptor, follow: boolean, path: string): { lower: bigint; upper: bigint } {
    return this.withWalk(dir, path, follow, (p) => hashOf(lstatSync(p, { bigint: true })));
  }
}

function readlinkOrNull(dirFd: number, name: string): string | null {
  try {
    return readlinkSync(at(dirFd, name));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EINVAL' || code === 'ENOENT') return null;
    throw toWasiError(e);
  }
}

function kindAt(dirFd: number, name: string): 'directory' | 'missing' | 'other' {
  try {
    return lstatSync(at(dirFd, name)).isDirectory() ? 'directory' : 'other';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'other';
  }
}

function needsCurrent(a: NewTimestamp, m: NewTimestamp): boolean {
  return a.kind === 'no-change' || m.kind === 'no-change';
}

function tsArg(t: NewTimestamp, current: bigint | undefined): number {
  switch (t.kind) {
    case 'now': return Date.now() / 1000;
    case 'no-change': return Number(current ?? 0n) / 1e9;
    case 'at': return Number(t.ns) / 1e9;
  }
}

// Per-process key: metadata hashes identify files without exposing device/inode numbers.
// node:crypto is loaded on first use: loading it costs every `weir run` several ms.
let hashKey: Uint8Array | null = null;

function hashOf(st: BigIntStats): { lower: bigint; upper: bigint } {
  const { createHash, randomBytes } = process.getBuiltinModule('node:crypto');
  hashKey ??= randomBytes(16);
  const h = createHash('sha256').update(hashKey).update(`${st.dev}:${st.ino}:${st.mtimeNs}:${st.size}`).digest();
  const v = new DataView(h.buffer, h.byteOffset, 16);
  return { lower: v.getBigUint64(0, true), upper: v.getBigUint64(8, true) };
}

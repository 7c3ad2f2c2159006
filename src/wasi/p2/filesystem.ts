// wasi:filesystem@0.2 (types, preopens) over the filesystem core.

import { HostResource } from '../../runtime/resources.ts';
import { toWasiError, type FsErrorCode } from '../core/errors.ts';
import {
  type Descriptor, type DescriptorFlags, type DirectoryEntry, type Filesystem,
  type OpenFlags, type Stat,
} from '../core/fs.ts';
import { datetime, hostResult, newTimestamp, ok, type Result, type WitNewTimestamp } from '../wit-values.ts';
import { InputStream, IoError, OutputStream, type IoResources } from './io.ts';

const fsCode = (e: unknown): FsErrorCode => toWasiError(e).code;

/** Run a core operation; host failures become `err(error-code)`, anything else propagates. */
const fsResult = <T>(f: () => T): Result<T, FsErrorCode> => hostResult(f, fsCode);

function statToP2(s: Stat) {
  return {
    type: s.type,
    linkCount: s.linkCount,
    size: s.size,
    dataAccessTimestamp: datetime(s.atimeNs),
    dataModificationTimestamp: datetime(s.mtimeNs),
    statusChangeTimestamp: datetime(s.ctimeNs),
  };
}

/** wasi:filesystem directory-entry-stream: a snapshot taken by read-directory. */
class DirectoryEntryStream {
  private readonly entries: DirectoryEntry[];
  private i = 0;
  constructor(entries: DirectoryEntry[]) { this.entries = entries; }
  next(): DirectoryEntry | undefined { return this.i < this.entries.length ? this.entries[this.i++] : undefined; }
}

type PathFlags = { symlinkFollow?: boolean };

export function filesystemImports(fs: Filesystem, io: IoResources, version: string): Record<string, Record<string, unknown>> {
  const descriptor = new HostResource('descriptor', { drop: (d: Descriptor) => d.close() });
  const dirStream = new HostResource('directory-entry-stream');
  const f = (p: PathFlags) => !!p.symlinkFollow;
  const types: Record<string, unknown> = {
    descriptor,
    'directory-entry-stream': dirStream,
    'input-stream': io.inputStream,
    'output-stream': io.outputStream,
    error: io.error,
    '[method]descriptor.read-via-stream': (d: Descriptor, off: bigint) => fsResult(() => new InputStream(fs.readStream(d, off))),
    '[method]descriptor.write-via-stream': (d: Descriptor, off: bigint) => fsResult(() => new OutputStream(fs.writeStream(d, off))),
    '[method]descriptor.append-via-stream': (d: Descriptor) => fsResult(() => new OutputStream(fs.appendStream(d))),
    '[method]descriptor.advise': (d: Descriptor) => fsResult(() => fs.advise(d)),
    '[method]descriptor.sync-data': (d: Descriptor) => fsResult(() => fs.syncData(d)),
    '[method]descriptor.get-flags': (d: Descriptor) => fsResult(() => { d.check(); return { ...d.flags } as DescriptorFlags; }),
    '[method]descriptor.get-type': (d: Descriptor) => fsResult(() => { d.check(); return d.type; }),
    '[method]descriptor.set-size': (d: Descriptor, size: bigint) => fsResult(() => fs.setSize(d, size)),
    '[method]descriptor.set-times': (d: Descriptor, a: WitNewTimestamp, m: WitNewTimestamp) =>
      fsResult(() => fs.setTimes(d, newTimestamp(a), newTimestamp(m))),
    '[method]descriptor.read': (d: Descriptor, len: bigint, off: bigint) => fsResult(() => fs.read(d, len, off)),
    '[method]descriptor.write': (d: Descriptor, buf: Uint8Array, off: bigint) => fsResult(() => fs.write(d, buf, off)),
    '[method]descriptor.read-directory': (d: Descriptor) => fsResult(() => new DirectoryEntryStream(fs.readDirectory(d))),
    '[method]descriptor.sync': (d: Descriptor) => fsResult(() => fs.sync(d)),
    '[method]descriptor.create-directory-at': (d: Descriptor, path: string) => fsResult(() => fs.createDirectoryAt(d, path)),
    '[method]descriptor.stat': (d: Descriptor) => fsResult(() => statToP2(fs.stat(d))),
    '[method]descriptor.stat-at': (d: Descriptor, pf: PathFlags, path: string) => fsResult(() => statToP2(fs.statAt(d, f(pf), path))),
    '[method]descriptor.set-times-at': (d: Descriptor, pf: PathFlags, path: string, a: WitNewTimestamp, m: WitNewTimestamp) =>
      fsResult(() => fs.setTimesAt(d, f(pf), path, newTimestamp(a), newTimestamp(m))),
    '[method]descriptor.link-at': (d: Descriptor, pf: PathFlags, oldPath: string, nd: Descriptor, newPath: string) =>
      fsResult(() => fs.linkAt(d, f(pf), oldPath, nd, newPath)),
    '[method]descriptor.open-at': (d: Descriptor, pf: PathFlags, path: string, of: OpenFlags, fl: DescriptorFlags) =>
      fsResult(() => fs.openAt(d, f(pf), path, of, fl)),
    '[method]descriptor.readlink-at': (d: Descriptor, path: string) => fsResult(() => fs.readlinkAt(d, path)),
    '[method]descriptor.remove-directory-at': (d: Descriptor, path: string) => fsResult(() => fs.removeDirectoryAt(d, path)),
    '[method]descriptor.rename-at': (d: Descriptor, oldPath: string, nd: Descriptor, newPath: string) =>
      fsResult(() => fs.renameAt(d, oldPath, nd, newPath)),
    '[method]descriptor.symlink-at': (d: Descriptor, target: string, path: string) => fsResult(() => fs.symlinkAt(d, target, path)),
    '[method]descriptor.unlink-file-at': (d: Descriptor, path: string) => fsResult(() => fs.unlinkFileAt(d, path)),
    '[method]descriptor.is-same-object': (d: Descriptor, o: Descriptor) => {
      try { return fs.isSameObject(d, o); } catch { return false; }
    },
    '[method]descriptor.metadata-hash': (d: Descriptor) => fsResult(() => fs.metadataHash(d)),
    '[method]descriptor.metadata-hash-at': (d: Descriptor, pf: PathFlags, path: string) => fsResult(() => fs.metadataHashAt(d, f(pf), path)),
    '[method]directory-entry-stream.read-directory-entry': (s: DirectoryEntryStream) => ok(s.next()),
    'filesystem-error-code': (e: IoError) => e.code,
  };
  return {
    [`wasi:filesystem/types@${version}`]: types,
    [`wasi:filesystem/preopens@${version}`]: {
      descriptor,
      'get-directories': () => fs.getDirectories(),
    },
  };
}

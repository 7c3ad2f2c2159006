// wasi:filesystem@0.3 (types, preopens) over the filesystem core: the same
// race-free sandbox as 0.2; file contents flow as stream<u8>, directory
// listings as stream<directory-entry>.

import { HostResource } from '../../runtime/resources.ts';
import { isHostError, toWasiError, type FsErrorCode } from '../core/errors.ts';
import {
  type Descriptor, type DescriptorFlags, type DescriptorType, type DirectoryEntry, type Filesystem,
  type OpenFlags, type Stat,
} from '../core/fs.ts';
import { MAX_READ } from '../core/streams.ts';
import { datetime, err, hostResult, newTimestamp, ok, type Datetime as Instant, type Result, type WitNewTimestamp } from '../wit-values.ts';
import { pumpToSink, sourceToStream } from './streams.ts';

/** error-code is a variant in 0.3 (it gained `other(option<string>)`). */
type P3ErrorCode = { tag: FsErrorCode } | { tag: 'other'; val: string | undefined };
type P3DescriptorType = { tag: Exclude<DescriptorType, 'unknown'> } | { tag: 'other'; val: string | undefined };
type PathFlags = { symlinkFollow?: boolean };

const code = (c: FsErrorCode): P3ErrorCode => ({ tag: c });
const fsCode = (e: unknown): P3ErrorCode => code(toWasiError(e).code);

/** Run a core operation; its failures become `err(error-code)`, anything else (bugs, traps) propagates. */
const fsResult = <T>(f: () => T): Result<T, P3ErrorCode> => hostResult(f, fsCode);

function descriptorType(t: DescriptorType): P3DescriptorType {
  return t === 'unknown' ? { tag: 'other', val: undefined } : { tag: t };
}

function statToP3(s: Stat) {
  return {
    type: descriptorType(s.type),
    linkCount: s.linkCount,
    size: s.size,
    dataAccessTimestamp: datetime(s.atimeNs) as Instant | undefined,
    dataModificationTimestamp: datetime(s.mtimeNs) as Instant | undefined,
    statusChangeTimestamp: datetime(s.ctimeNs) as Instant | undefined,
  };
}

const ALL_FLAGS = ['read', 'write', 'fileIntegritySync', 'dataIntegritySync', 'requestedWriteSync', 'mutateDirectory'] as const;

function flagsOf(d: Descriptor): Required<DescriptorFlags> {
  const out = {} as Required<DescriptorFlags>;
  for (const k of ALL_FLAGS) out[k] = !!d.flags[k];
  return out;
}

/** The (stream, future) pair of a failed stream-returning call: an empty stream and the error. */
function failedStream<T>(e: unknown): [Iterable<T>, Promise<Result<undefined, P3ErrorCode>>] {
  if (!isHostError(e)) throw e;
  return [[], Promise.resolve(err(fsCode(e)))];
}

const asResult = (c: FsErrorCode | null): Result<undefined, P3ErrorCode> => (c === null ? ok(undefined) : err(code(c)));

export function filesystemImports(fs: Filesystem, version: string): Record<string, Record<string, unknown>> {
  const descriptor = new HostResource('descriptor', { drop: (d: Descriptor) => d.close() });
  const f = (p: PathFlags) => !!p.symlinkFollow;
  const types: Record<string, unknown> = {
    descriptor,
    '[method]descriptor.read-via-stream': (d: Descriptor, offset: bigint) => {
      try {
        const [stream, done] = sourceToStream(fs.readStream(d, offset), MAX_READ);
        return [stream, done.then(asResult)];
      } catch (e) {
        return failedStream<Uint8Array>(e);
      }
    },
    '[method]descriptor.write-via-stream': (d: Descriptor, data: ReadableStream<Uint8Array>, offset: bigint) => {
      try {
        return pumpToSink(data, fs.writeStream(d, offset), true).then(asResult);
      } catch (e) {
        if (!isHostError(e)) throw e;
        data.cancel().catch(() => {});
        return Promise.resolve(err(fsCode(e)));
      }
    },
    '[method]descriptor.append-via-stream': (d: Descriptor, data: ReadableStream<Uint8Array>) => {
      try {
        return pumpToSink(data, fs.appendStream(d), true).then(asResult);
      } catch (e) {
        if (!isHostError(e)) throw e;
        data.cancel().catch(() => {});
        return Promise.resolve(err(fsCode(e)));
      }
    },
    '[method]descriptor.advise': (d: Descriptor) => fsResult(() => fs.advise(d)),
    '[method]descriptor.sync-data': (d: Descriptor) => fsResult(() => fs.syncData(d)),
    '[method]descriptor.get-flags': (d: Descriptor) => fsResult(() => { d.check(); return flagsOf(d); }),
    '[method]descriptor.get-type': (d: Descriptor) => fsResult(() => { d.check(); return descriptorType(d.type); }),
    '[method]descriptor.set-size': (d: Descriptor, size: bigint) => fsResult(() => fs.setSize(d, size)),
    '[method]descriptor.set-times': (d: Descriptor, a: WitNewTimestamp, m: WitNewTimestamp) =>
      fsResult(() => fs.setTimes(d, newTimestamp(a), newTimestamp(m))),
    '[method]descriptor.read-directory': (d: Descriptor) => {
      let entries: DirectoryEntry[];
      try {
        entries = fs.readDirectory(d);
      } catch (e) {
        return failedStream(e);
      }
      return [entries.map((e) => ({ type: descriptorType(e.type), name: e.name })), Promise.resolve(ok(undefined))];
    },
    '[method]descriptor.sync': (d: Descriptor) => fsResult(() => fs.sync(d)),
    '[method]descriptor.create-directory-at': (d: Descriptor, path: string) => fsResult(() => fs.createDirectoryAt(d, path)),
    '[method]descriptor.stat': (d: Descriptor) => fsResult(() => statToP3(fs.stat(d))),
    '[method]descriptor.stat-at': (d: Descriptor, pf: PathFlags, path: string) => fsResult(() => statToP3(fs.statAt(d, f(pf), path))),
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
    '[method]descriptor.symlink-at': (d: Descriptor, oldPath: string, newPath: string) => fsResult(() => fs.symlinkAt(d, oldPath, newPath)),
    '[method]descriptor.unlink-file-at': (d: Descriptor, path: string) => fsResult(() => fs.unlinkFileAt(d, path)),
    '[method]descriptor.is-same-object': (d: Descriptor, o: Descriptor) => {
      try { return fs.isSameObject(d, o); } catch { return false; }
    },
    '[method]descriptor.metadata-hash': (d: Descriptor) => fsResult(() => fs.metadataHash(d)),
    '[method]descriptor.metadata-hash-at': (d: Descriptor, pf: PathFlags, path: string) => fsResult(() => fs.metadataHashAt(d, f(pf), path)),
  };
  return {
    [`wasi:filesystem/types@${version}`]: types,
    [`wasi:filesystem/preopens@${version}`]: {
      descriptor,
      'get-directories': () => fs.getDirectories(),
    },
  };
}

// Random numbers: secure bytes from the platform CSPRNG, plus the "insecure"
// interfaces (same source, it is cheap enough) and a per-instance seed.

import { WasiError } from './errors.ts';

/** A guest may ask for at most this many bytes in one call. */
export const MAX_RANDOM_BYTES = 64 << 20;

export interface RandomConfig {
  /** Override the byte source (for deterministic tests). */
  getRandomBytes?: (n: number) => Uint8Array;
}

export class Random {
  private readonly source: (n: number) => Uint8Array;
  private seed: [bigint, bigint] | null = null;
  constructor(config: RandomConfig = {}) {
    this.source = config.getRandomBytes ?? secureBytes;
  }
  bytes(len: bigint | number): Uint8Array {
    const n = Number(len);
    if (!(n >= 0) || n > MAX_RANDOM_BYTES) throw new WasiError('insufficient-memory');
    return this.source(n);
  }
  u64(): bigint {
    const b = this.source(8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }
  insecureBytes(len: bigint | number): Uint8Array { return this.bytes(len); }
  insecureU64(): bigint { return this.u64(); }
  /** The insecure seed: fixed for the lifetime of this host, as the interface asks. */
  insecureSeed(): [bigint, bigint] {
    return (this.seed ??= [this.u64(), this.u64()]);
  }
}

function secureBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  // getRandomValues fills at most 65536 bytes per call.
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

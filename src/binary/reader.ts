// A bounds-checked cursor over a byte buffer, shared by the core-module parser
// and the component decoder. Every failure throws DecodeError with the absolute
// byte offset of the problem (never a RangeError, never a hang).

import { DecodeError } from '../errors.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const TWO_28 = 2 ** 28;
const TWO_32 = 2 ** 32;

export class Reader {
  /** The whole underlying buffer (shared with sub-readers). */
  readonly buf: Uint8Array;
  /** Absolute offset of `buf[0]` in the original input, for error reporting. */
  readonly base: number;
  /** Current index into `buf`. */
  pos: number;
  /** Index into `buf` one past the last readable byte. */
  end: number;
  private dv: DataView | null = null;

  /**
   * @param bytes  the buffer to read
   * @param base   absolute offset of bytes[0] in the original input
   * @param pos    index in `bytes` to start reading at (default 0)
   * @param end    index in `bytes` to stop at (default bytes.length)
   */
  constructor(bytes: Uint8Array, base = 0, pos = 0, end = bytes.length) {
    this.buf = bytes;
    this.base = base;
    this.pos = pos;
    this.end = end;
  }

  /** Absolute offset of the next byte to be read. */
  get offset(): number {
    return this.base + this.pos;
  }

  /** True when no bytes remain. */
  get eof(): boolean {
    return this.pos >= this.end;
  }

  /** Number of bytes left. */
  get remaining(): number {
    return this.end - this.pos;
  }

  /** Throw a DecodeError at the current offset (or at `offset` if given). */
  fail(expected: string, offset: number = this.base + this.pos): never {
    throw new DecodeError(offset, expected);
  }

  byte(): number {
    const pos = this.pos;
    if (pos >= this.end) throw new DecodeError(this.base + pos, 'a byte (unexpected end of input)');
    this.pos = pos + 1;
    return this.buf[pos]!;
  }

  /** The next byte without consuming it. */
  peek(): number {
    const pos = this.pos;
    if (pos >= this.end) throw new DecodeError(this.base + pos, 'a byte (unexpected end of input)');
    return this.buf[pos]!;
  }

  /** Consume one byte that must equal `b`. */
  expectByte(b: number, what: string): void {
    const pos = this.pos;
    if (pos >= this.end) throw new DecodeError(this.base + pos, `${what} (unexpected end of input)`);
    if (this.buf[pos] !== b) throw new DecodeError(this.base + pos, what);
    this.pos = pos + 1;
  }

  /** Throw unless the reader is exhausted. */
  expectEnd(what = 'end of section'): void {
    if (this.pos !== this.end) throw new DecodeError(this.base + this.pos, what);
  }

  /** Unsigned LEB128, at most 5 bytes, value < 2^32. */
  u32(): number {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    if (pos < end) {
      const b = buf[pos]!;
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= end) throw new DecodeError(this.base + pos, 'u32 (unexpected end of input)');
      const b = buf[pos++]!;
      if (shift === 28) {
        if (b & 0x80) throw new DecodeError(this.base + pos - 1, 'u32 (integer representation too long)');
        if (b & 0x70) throw new DecodeError(this.base + pos - 1, 'u32 (integer too large)');
        result += b * TWO_28;
        break;
      }
      result |= (b & 0x7f) << shift;
      if (!(b & 0x80)) break;
      shift += 7;
    }
    this.pos = pos;
    return result;
  }

  /** Signed LEB128, at most 5 bytes, value in int32 range. */
  s32(): number {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= end) throw new DecodeError(this.base + pos, 's32 (unexpected end of input)');
      const b = buf[pos++]!;
      if (shift === 28) {
        if (b & 0x80) throw new DecodeError(this.base + pos - 1, 's32 (integer representation too long)');
        const rest = b & 0x70;
        if ((b & 0x08) ? rest !== 0x70 : rest !== 0) {
          throw new DecodeError(this.base + pos - 1, 's32 (integer too large)');
        }
        result |= b << 28;
        break;
      }
      result |= (b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80)) {
        if (b & 0x40) result |= -1 << shift;
        break;
      }
    }
    this.pos = pos;
    return result;
  }

  /** Signed LEB128, at most 5 bytes, value in 33-bit signed range (as a number). */
  s33(): number {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    if (pos < end) {
      const b = buf[pos]!;
      if (b < 0x80) {
        this.pos = pos + 1;
        return b & 0x40 ? b - 0x80 : b;
      }
    }
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= end) throw new DecodeError(this.base + pos, 's33 (unexpected end of input)');
      const b = buf[pos++]!;
      if (shift === 28) {
        if (b & 0x80) throw new DecodeError(this.base + pos - 1, 's33 (integer representation too long)');
        const rest = b & 0x60;
        const neg = (b & 0x10) !== 0;
        if (neg ? rest !== 0x60 : rest !== 0) {
          throw new DecodeError(this.base + pos - 1, 's33 (integer too large)');
        }
        result += (b & 0x0f) * TWO_28;
        if (neg) result -= TWO_32;
        break;
      }
      result |= (b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80)) {
        if (b & 0x40) result -= 2 ** shift;
        break;
      }
    }
    this.pos = pos;
    return result;
  }

  /** Signed LEB128, at most 10 bytes, value in int64 range. */
  s64(): bigint {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    // Fast path: up to 7 bytes (49 bits) are exact in a double.
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 7; i++) {
      if (pos >= end) throw new DecodeError(this.base + pos, 's64 (unexpected end of input)');
      const b = buf[pos++]!;
      result += (b & 0x7f) * mul;
      mul *= 128;
      if (!(b & 0x80)) {
        if (b & 0x40) result -= mul;
        this.pos = pos;
        return BigInt(result);
      }
    }
    let big = BigInt(result);
    let shift = 49n;
    for (let i = 7; ; i++) {
      if (pos >= end) throw new DecodeError(this.base + pos, 's64 (unexpected end of input)');
      const b = buf[pos++]!;
      if (i === 9) {
        if (b & 0x80) throw new DecodeError(this.base + pos - 1, 's64 (integer representation too long)');
        if (b !== 0 && b !== 0x7f) throw new DecodeError(this.base + pos - 1, 's64 (integer too large)');
        big |= BigInt(b & 1) << 63n;
        this.pos = pos;
        return BigInt.asIntN(64, big);
      }
      big |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if (!(b & 0x80)) {
        if (b & 0x40) big -= 1n << shift;
        this.pos = pos;
        return big;
      }
    }
  }

  /** Unsigned LEB128, at most 10 bytes, value < 2^64. */
  u64(): bigint {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 7; i++) {
      if (pos >= end) throw new DecodeError(this.base + pos, 'u64 (unexpected end of input)');
      const b = buf[pos++]!;
      result += (b & 0x7f) * mul;
      mul *= 128;
      if (!(b & 0x80)) {
        this.pos = pos;
        return BigInt(result);
      }
    }
    let big = BigInt(result);
    let shift = 49n;
    for (let i = 7; ; i++) {
      if (pos >= end) throw new DecodeError(this.base + pos, 'u64 (unexpected end of input)');
      const b = buf[pos++]!;
      if (i === 9) {
        if (b & 0x80) throw new DecodeError(this.base + pos - 1, 'u64 (integer representation too long)');
        if (b & 0x7e) throw new DecodeError(this.base + pos - 1, 'u64 (integer too large)');
        big |= BigInt(b) << 63n;
        this.pos = pos;
        return big;
      }
      big |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if (!(b & 0x80)) {
        this.pos = pos;
        return big;
      }
    }
  }

  /** Skip a LEB128 integer of at most `maxBytes` bytes without decoding it. */
  skipLeb(maxBytes: number, what = 'LEB128 integer'): void {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    for (let i = 0; i < maxBytes; i++) {
      if (pos >= end) throw new DecodeError(this.base + pos, `${what} (unexpected end of input)`);
      if (!(buf[pos++]! & 0x80)) {
        this.pos = pos;
        return;
      }
    }
    throw new DecodeError(this.base + pos - 1, `${what} (integer representation too long)`);
  }

  private view(): DataView {
    return (this.dv ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength));
  }

  f32(): number {
    const pos = this.pos;
    if (this.end - pos < 4) throw new DecodeError(this.base + pos, 'f32 (unexpected end of input)');
    this.pos = pos + 4;
    return this.view().getFloat32(pos, true);
  }

  f64(): number {
    const pos = this.pos;
    if (this.end - pos < 8) throw new DecodeError(this.base + pos, 'f64 (unexpected end of input)');
    this.pos = pos + 8;
    return this.view().getFloat64(pos, true);
  }

  /** `n` raw bytes (a view into the buffer, not a copy). */
  bytes(n: number, what = 'bytes'): Uint8Array {
    const pos = this.pos;
    if (n > this.end - pos) throw new DecodeError(this.base + pos, `${n} ${what} (unexpected end of input)`);
    this.pos = pos + n;
    return this.buf.subarray(pos, pos + n);
  }

  /** Advance over `n` bytes. */
  skip(n: number, what = 'bytes'): void {
    const pos = this.pos;
    if (n > this.end - pos) throw new DecodeError(this.base + pos, `${n} ${what} (unexpected end of input)`);
    this.pos = pos + n;
  }

  /** A name: u32 byte length followed by valid UTF-8. */
  name(): string {
    const start = this.offset;
    const len = this.u32();
    const pos = this.pos;
    if (len > this.end - pos) throw new DecodeError(start, `name of ${len} bytes (unexpected end of input)`);
    const buf = this.buf;
    const stop = pos + len;
    if (len <= 64) {
      // ASCII fast path
      let s = '';
      let i = pos;
      for (; i < stop; i++) {
        const c = buf[i]!;
        if (c >= 0x80) break;
        s += String.fromCharCode(c);
      }
      if (i === stop) {
        this.pos = stop;
        return s;
      }
    }
    let str: string;
    try {
      str = utf8.decode(buf.subarray(pos, stop));
    } catch {
      throw new DecodeError(this.base + pos, 'name (malformed UTF-8 encoding)');
    }
    this.pos = stop;
    return str;
  }

  /**
   * A vector: u32 length, then that many elements read by `f`. Each element
   * takes at least one byte, so a length above the remaining byte count is
   * rejected before anything is allocated.
   */
  vec<T>(f: (r: Reader, i: number) => T, what = 'vector'): T[] {
    const start = this.offset;
    const n = this.u32();
    if (n > this.end - this.pos) throw new DecodeError(start, `${what} of ${n} elements (length out of bounds)`);
    const out: T[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = f(this, i);
    return out;
  }

  /** Read a vector length, checked against the remaining bytes (for callers that loop themselves). */
  vecLen(what = 'vector'): number {
    const start = this.offset;
    const n = this.u32();
    if (n > this.end - this.pos) throw new DecodeError(start, `${what} of ${n} elements (length out of bounds)`);
    return n;
  }

  /** A sub-reader over the next `len` bytes (same absolute offsets); advances past them. */
  sub(len: number, what = 'section'): Reader {
    const pos = this.pos;
    if (len > this.end - pos) {
      throw new DecodeError(this.base + pos, `${what} of ${len} bytes (unexpected end of input)`);
    }
    this.pos = pos + len;
    return new Reader(this.buf, this.base, pos, pos + len);
  }
}

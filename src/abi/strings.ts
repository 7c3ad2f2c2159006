// Strings (CanonicalABI.md "Loading" load_string*, "Storing" store_string*).
// JS strings are UTF-16 code-unit sequences, so when lowering a host string the
// source encoding is 'utf16' in the spec's case analysis (store_utf16_to_utf8,
// store_string_copy, store_string_to_latin1_or_utf16), including its realloc sizing.

import { Buffer } from 'node:buffer';
import { trap } from '../errors.ts';
import { allocate, checkRange, reallocate, spendFuel, type LiftLowerContext } from './context.ts';
import { MAX_STRING_BYTE_LENGTH } from '../types/layout.ts';

/** Undocumented but long-standing fast Buffer methods (no intermediate views). */
interface BufferFast {
  latin1Slice(start: number, end: number): string;
  ucs2Slice(start: number, end: number): string;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf16Decoder = new TextDecoder('utf-16le', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

const probe = Buffer.alloc(2) as unknown as Partial<BufferFast>;
const HAVE_FAST_SLICE = typeof probe.latin1Slice === 'function' && typeof probe.ucs2Slice === 'function';
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Strings up to this many bytes take hand-written loops instead of native calls. */
const SHORT = 64;

function nodeBuf(cx: LiftLowerContext): BufferFast {
  return cx.nb as unknown as BufferFast;
}

export const UTF16_TAG_32 = 0x8000_0000;
export const UTF16_TAG_64 = 1n << 63n;

/** utf16_tag(ptr_type) */
export function utf16Tag(memory64: boolean): number | bigint {
  return memory64 ? UTF16_TAG_64 : UTF16_TAG_32;
}

// ---------------------------------------------------------------- loading

/**
 * load_string_from_range. `tagged` is the raw second string word (a uint32 number
 * for 32-bit memories, a bigint for 64-bit ones).
 */
export function loadStringFromRange(cx: LiftLowerContext, ptr: number, tagged: number | bigint): string {
  const enc = cx.opts.stringEncoding;
  if (typeof tagged === 'bigint') {
    if (enc === 'latin1+utf16' && tagged >= UTF16_TAG_64) return loadUtf16(cx, ptr, Number(tagged - UTF16_TAG_64));
    const n = Number(tagged);
    return enc === 'utf8' ? loadUtf8(cx, ptr, n) : enc === 'utf16' ? loadUtf16(cx, ptr, n) : loadLatin1(cx, ptr, n);
  }
  if (enc === 'utf8') return loadUtf8(cx, ptr, tagged);
  if (enc === 'utf16') return loadUtf16(cx, ptr, tagged);
  if (tagged >= UTF16_TAG_32) return loadUtf16(cx, ptr, tagged - UTF16_TAG_32);
  return loadLatin1(cx, ptr, tagged);
}

function tooLong(byteLength: number): never {
  trap('string-too-long', byteLength);
}

export function loadUtf8(cx: LiftLowerContext, ptr: number, n: number): string {
  if (n > MAX_STRING_BYTE_LENGTH) tooLong(n);
  spendFuel(cx, n);
  const u8 = cx.u8;
  if (ptr + n > u8.length) checkRange(cx, ptr, 1, n);
  if (n <= SHORT && HAVE_FAST_SLICE) {
    let i = ptr;
    const end = ptr + n;
    while (i < end && u8[i]! < 0x80) i++;
    if (i === end) return nodeBuf(cx).latin1Slice(ptr, end);
  }
  try {
    return utf8Decoder.decode(u8.subarray(ptr, ptr + n));
  } catch {
    trap('invalid-utf8');
  }
}

export function loadUtf16(cx: LiftLowerContext, ptr: number, units: number): string {
  const byteLength = 2 * units;
  if (byteLength > MAX_STRING_BYTE_LENGTH) tooLong(byteLength);
  spendFuel(cx, byteLength);
  checkRange(cx, ptr, 2, byteLength);
  if (HAVE_FAST_SLICE && LITTLE_ENDIAN) {
    const s = nodeBuf(cx).ucs2Slice(ptr, ptr + byteLength);
    if (!s.isWellFormed()) trap('invalid-utf16');
    return s;
  }
  try {
    return utf16Decoder.decode(cx.u8.subarray(ptr, ptr + byteLength));
  } catch {
    trap('invalid-utf16');
  }
}

export function loadLatin1(cx: LiftLowerContext, ptr: number, n: number): string {
  if (n > MAX_STRING_BYTE_LENGTH) tooLong(n);
  spendFuel(cx, n);
  // latin1+utf16 strings are 2-aligned regardless of the dynamic choice.
  checkRange(cx, ptr, 2, n);
  if (HAVE_FAST_SLICE) return nodeBuf(cx).latin1Slice(ptr, ptr + n);
  let s = '';
  const u8 = cx.u8;
  for (let i = ptr, e = ptr + n; i < e; i += 4096) {
    s += String.fromCharCode.apply(null, u8.subarray(i, Math.min(e, i + 4096)) as unknown as number[]);
  }
  return s;
}

// ---------------------------------------------------------------- storing

/**
 * store_string_into_range for a host (UTF-16) string. Returns the pointer; the
 * (untagged) code-unit count goes to cx.strUnits and the UTF-16 tag to cx.strUtf16.
 */
export function storeStringIntoRange(cx: LiftLowerContext, s: string): number {
  const enc = cx.opts.stringEncoding;
  if (enc === 'utf8') return storeUtf16ToUtf8(cx, s);
  if (enc === 'utf16') return storeUtf16Copy(cx, s);
  return storeStringToLatin1OrUtf16(cx, s);
}

function checkSourceLength(units: number, unitSize: number): void {
  if (units * unitSize > MAX_STRING_BYTE_LENGTH) {
    trap('string-units-too-long', units);
  }
}

/** store_utf16_to_utf8 → store_string_to_utf8 with worst_case_size = 3 * code units. */
export function storeUtf16ToUtf8(cx: LiftLowerContext, s: string): number {
  const n = s.length;
  checkSourceLength(n, 1);
  let ptr = allocate(cx, 1, n);
  if (ptr + n > cx.u8.length) checkRange(cx, ptr, 1, n);
  let u8 = cx.u8;
  cx.strUtf16 = false;
  if (n <= SHORT) {
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      u8[ptr + i] = c;
    }
    if (i === n) { cx.strUnits = n; return ptr; }
  } else {
    const r = utf8Encoder.encodeInto(s, u8.subarray(ptr, ptr + n));
    if (r.read === n) { cx.strUnits = n; return ptr; }
  }
  // Non-ASCII: grow to the worst case, encode, then shrink to the exact size.
  const worst = 3 * n;
  ptr = reallocate(cx, ptr, n, 1, worst);
  if (ptr + worst > cx.u8.length) checkRange(cx, ptr, 1, worst);
  u8 = cx.u8;
  const written = utf8Encoder.encodeInto(s, u8.subarray(ptr, ptr + worst)).written;
  if (worst > written) {
    ptr = reallocate(cx, ptr, worst, 1, written);
    if (ptr + written > cx.u8.length) checkRange(cx, ptr, 1, written);
  }
  cx.strUnits = written;
  return ptr;
}

function writeUtf16(cx: LiftLowerContext, s: string, from: number, ptr: number): void {
  const u8 = cx.u8;
  const n = s.length;
  for (let i = from, p = ptr + 2 * from; i < n; i++, p += 2) {
    const c = s.charCodeAt(i);
    u8[p] = c & 0xff;
    u8[p + 1] = c >>> 8;
  }
}

/** store_string_copy(src, code_units, 2, 2, 'utf-16-le'): lone surrogates are kept as code units. */
export function storeUtf16Copy(cx: LiftLowerContext, s: string): number {
  const n = s.length;
  checkSourceLength(n, 2);
  const byteLength = 2 * n;
  const ptr = allocate(cx, 2, byteLength);
  checkRange(cx, ptr, 2, byteLength);
  writeUtf16(cx, s, 0, ptr);
  cx.strUnits = n;
  cx.strUtf16 = false;
  return ptr;
}

/** store_string_to_latin1_or_utf16 */
export function storeStringToLatin1OrUtf16(cx: LiftLowerContext, s: string): number {
  const n = s.length;
  checkSourceLength(n, 2);
  let ptr = allocate(cx, 2, n);
  checkRange(cx, ptr, 2, n);
  let u8 = cx.u8;
  let j = 0;
  for (; j < n; j++) {
    const c = s.charCodeAt(j);
    if (c >= 0x100) break;
    u8[ptr + j] = c;
  }
  if (j === n) {
    cx.strUnits = n;
    cx.strUtf16 = false;
    return ptr;
  }
  const worst = 2 * n;
  ptr = reallocate(cx, ptr, n, 2, worst);
  checkRange(cx, ptr, 2, worst);
  u8 = cx.u8;
  for (let k = j - 1; k >= 0; k--) {
    u8[ptr + 2 * k] = u8[ptr + k]!;
    u8[ptr + 2 * k + 1] = 0;
  }
  writeUtf16(cx, s, j, ptr);
  // The encoded size equals worst_case_size for a UTF-16 source, so no shrinking realloc.
  cx.strUnits = n;
  cx.strUtf16 = true;
  return ptr;
}

// S-expression reader for .wast files.
//
// Splits source text into top-level forms while keeping byte offsets into the
// original text, so that a component form can be handed verbatim to a text
// assembler and so that every command can report a line:column position.

export interface SList { kind: 'list'; items: SExpr[]; start: number; end: number }
/** Keywords, numbers, and `$ids` (an id keeps its leading `$`). */
export interface SAtom { kind: 'atom'; text: string; start: number; end: number }
/** A string literal: `bytes` are the decoded contents (escapes resolved). */
export interface SString { kind: 'string'; bytes: Uint8Array; start: number; end: number }
export type SExpr = SList | SAtom | SString;

export class WastSyntaxError extends Error {
  override name = 'WastSyntaxError';
  offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.offset = offset;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** Text of a string literal (lossy for invalid UTF-8). */
export function stringText(s: SString): string {
  return utf8.decode(s.bytes);
}

/** Text of a string literal, or null if it is not valid UTF-8. */
export function stringTextStrict(s: SString): string | null {
  try {
    return utf8Strict.decode(s.bytes);
  } catch {
    return null;
  }
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0c;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Reads a whole .wast source into its top-level forms. */
export function readSExprs(src: string): SExpr[] {
  const r = new Reader(src);
  return r.readAll();
}

class Reader {
  src: string;
  pos = 0;
  constructor(src: string) {
    this.src = src;
  }

  readAll(): SExpr[] {
    const out: SExpr[] = [];
    for (;;) {
      this.skipTrivia();
      if (this.pos >= this.src.length) return out;
      if (this.src.charCodeAt(this.pos) === 0x29 /* ) */) {
        throw new WastSyntaxError('unexpected `)`', this.pos);
      }
      out.push(this.readExpr());
    }
  }

  skipTrivia(): void {
    const s = this.src;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (isSpace(c)) {
        this.pos++;
      } else if (c === 0x3b /* ; */ && s.charCodeAt(this.pos + 1) === 0x3b) {
        const nl = s.indexOf('\n', this.pos);
        this.pos = nl < 0 ? s.length : nl + 1;
      } else if (c === 0x28 /* ( */ && s.charCodeAt(this.pos + 1) === 0x3b) {
        this.skipBlockComment();
      } else {
        return;
      }
    }
  }

  skipBlockComment(): void {
    const s = this.src;
    const start = this.pos;
    let depth = 0;
    while (this.pos < s.length) {
      if (s.startsWith('(;', this.pos)) {
        depth++;
        this.pos += 2;
      } else if (s.startsWith(';)', this.pos)) {
        depth--;
        this.pos += 2;
        if (depth === 0) return;
      } else {
        this.pos++;
      }
    }
    throw new WastSyntaxError('unterminated block comment', start);
  }

  readExpr(): SExpr {
    const s = this.src;
    const c = s.charCodeAt(this.pos);
    if (c === 0x28 /* ( */) {
      const start = this.pos++;
      const items: SExpr[] = [];
      for (;;) {
        this.skipTrivia();
        if (this.pos >= s.length) throw new WastSyntaxError('unterminated list', start);
        if (s.charCodeAt(this.pos) === 0x29) {
          this.pos++;
          return { kind: 'list', items, start, end: this.pos };
        }
        items.push(this.readExpr());
      }
    }
    if (c === 0x22 /* " */) {
      const start = this.pos;
      const bytes = this.readString();
      return { kind: 'string', bytes, start, end: this.pos };
    }
    if (c === 0x24 /* $ */ && s.charCodeAt(this.pos + 1) === 0x22) {
      // `$"quoted id"`
      const start = this.pos++;
      const bytes = this.readString();
      return { kind: 'atom', text: '$' + utf8.decode(bytes), start, end: this.pos };
    }
    const start = this.pos;
    while (this.pos < s.length) {
      const d = s.charCodeAt(this.pos);
      if (isSpace(d) || d === 0x28 || d === 0x29 || d === 0x22) break;
      if (d === 0x3b && s.charCodeAt(this.pos + 1) === 0x3b) break;
      this.pos++;
    }
    if (this.pos === start) throw new WastSyntaxError(`unexpected character ${JSON.stringify(s[start])}`, start);
    return { kind: 'atom', text: s.slice(start, this.pos), start, end: this.pos };
  }

  /** Reads a `"..."` literal at `pos`, resolving escapes into raw bytes. */
  readString(): Uint8Array {
    const s = this.src;
    const start = this.pos;
    this.pos++; // opening quote
    const out: number[] = [];
    for (;;) {
      if (this.pos >= s.length) throw new WastSyntaxError('unterminated string', start);
      const c = s.charCodeAt(this.pos);
      if (c === 0x22) {
        this.pos++;
        return Uint8Array.from(out);
      }
      if (c === 0x0a) throw new WastSyntaxError('newline in string', this.pos);
      if (c !== 0x5c /* \ */) {
        // Copy a run of plain characters as UTF-8.
        let end = this.pos;
        while (end < s.length) {
          const d = s.charCodeAt(end);
          if (d === 0x22 || d === 0x5c || d === 0x0a) break;
          end++;
        }
        for (const b of encoder.encode(s.slice(this.pos, end))) out.push(b);
        this.pos = end;
        continue;
      }
      const e = s[this.pos + 1];
      switch (e) {
        case 'n': out.push(0x0a); this.pos += 2; break;
        case 't': out.push(0x09); this.pos += 2; break;
        case 'r': out.push(0x0d); this.pos += 2; break;
        case '\\': out.push(0x5c); this.pos += 2; break;
        case '"': out.push(0x22); this.pos += 2; break;
        case "'": out.push(0x27); this.pos += 2; break;
        case 'u': {
          if (s[this.pos + 2] !== '{') throw new WastSyntaxError('malformed \\u escape', this.pos);
          const close = s.indexOf('}', this.pos + 3);
          if (close < 0) throw new WastSyntaxError('malformed \\u escape', this.pos);
          const hex = s.slice(this.pos + 3, close).replace(/_/g, '');
          if (!/^[0-9a-fA-F]+$/.test(hex)) throw new WastSyntaxError('malformed \\u escape', this.pos);
          const cp = parseInt(hex, 16);
          if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) {
            throw new WastSyntaxError('invalid code point in \\u escape', this.pos);
          }
          for (const b of encoder.encode(String.fromCodePoint(cp))) out.push(b);
          this.pos = close + 1;
          break;
        }
        default: {
          const h1 = hexVal(s.charCodeAt(this.pos + 1));
          const h2 = hexVal(s.charCodeAt(this.pos + 2));
          if (h1 < 0 || h2 < 0) throw new WastSyntaxError(`unknown escape \\${e ?? ''}`, this.pos);
          out.push(h1 * 16 + h2);
          this.pos += 3;
        }
      }
    }
  }
}

/** Maps offsets to 1-based line:column. */
export class LineMap {
  private starts: number[] = [0];
  constructor(src: string) {
    for (let i = 0; i < src.length; i++) if (src.charCodeAt(i) === 0x0a) this.starts.push(i + 1);
  }
  position(offset: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - this.starts[lo]! + 1 };
  }
}

// ---- small helpers for walking forms ----

export function isAtom(e: SExpr | undefined, text?: string): e is SAtom {
  return e !== undefined && e.kind === 'atom' && (text === undefined || e.text === text);
}

export function isId(e: SExpr | undefined): e is SAtom {
  return e !== undefined && e.kind === 'atom' && e.text.startsWith('$');
}

export function isString(e: SExpr | undefined): e is SString {
  return e !== undefined && e.kind === 'string';
}

export function isList(e: SExpr | undefined, head?: string): e is SList {
  return e !== undefined && e.kind === 'list' && (head === undefined || isAtom(e.items[0], head));
}

/** The keyword at the head of a list, or undefined. */
export function headOf(e: SExpr | undefined): string | undefined {
  if (e === undefined || e.kind !== 'list') return undefined;
  const h = e.items[0];
  return h !== undefined && h.kind === 'atom' ? h.text : undefined;
}

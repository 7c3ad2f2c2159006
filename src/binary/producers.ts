// The `producers` custom section (WebAssembly tool-conventions,
// ProducersSection.md): which languages, tools and SDKs made a module or
// component. Weir reads it only to recognise toolchains with known deviations
// from the Component Model spec (src/runtime/deviations.ts); a malformed
// section is ignored, never an error, since custom sections carry no semantics.
//
//   producers := vec(field)        field := name vec(name version)
//   field names: "language", "processed-by", "sdk"

import { Reader } from './reader.ts';
import type { ComponentAst } from './ast.ts';

export interface Producer {
  /** "language" | "processed-by" | "sdk" (others are kept as written) */
  field: string;
  name: string;
  version: string;
}

/** Parse the payload of a producers section (the bytes after its name); [] if malformed. */
export function readProducers(bytes: Uint8Array, start: number, end: number): Producer[] {
  const out: Producer[] = [];
  try {
    const r = new Reader(bytes, 0, start, end);
    const nfields = r.u32();
    for (let i = 0; i < nfields; i++) {
      const field = r.name();
      const nvals = r.u32();
      for (let j = 0; j < nvals; j++) {
        const name = r.name();
        const version = r.name();
        out.push({ field, name, version });
      }
    }
  } catch {
    return [];
  }
  return out;
}

/** The producers of a core module (its bytes start at the `\0asm` preamble); [] when it has none. */
export function coreModuleProducers(bytes: Uint8Array): Producer[] {
  const out: Producer[] = [];
  try {
    const r = new Reader(bytes, 0, 8);
    while (!r.eof) {
      const id = r.byte();
      const size = r.u32();
      const end = r.pos + size;
      // Only custom sections are looked at; every other section is skipped by its size.
      if (id === 0) {
        const name = r.name();
        if (name === 'producers') out.push(...readProducers(bytes, r.pos, end));
      }
      if (end > bytes.length) break;
      r.pos = end;
    }
  } catch {
    // a truncated module: the validator reports it
  }
  return out;
}

/** The producers sections of a component itself (not of its core modules); `input` is the decoded binary. */
export function componentProducers(ast: ComponentAst, input: Uint8Array): Producer[] {
  const out: Producer[] = [];
  for (const s of ast.customSections) {
    if (s.name !== 'producers') continue;
    // `offset` is where the section's name starts, `size` covers the name and the payload.
    try {
      const r = new Reader(input, 0, s.offset, s.offset + s.size);
      r.name();
      out.push(...readProducers(input, r.pos, s.offset + s.size));
    } catch {
      // ignored (see above)
    }
  }
  return out;
}

// Turns a module form of a .wast command into bytes.
//
// Text is assembled with the wasm-tools bundled in jco (`parse`), which does
// not validate: validation is Weir's job.

import type { ModuleForm } from './commands.ts';

type ParseFn = (text: string) => Promise<Uint8Array> | Uint8Array;
let parseFn: Promise<ParseFn> | null = null;

function loadParse(): Promise<ParseFn> {
  // Two wasmtime files still write canon options in the legacy `(memory $i "name")`
  // form; wasm-tools accepts it when this is set (it is read once, at start-up).
  process.env.WAST_STRICT_COMPONENT_INDICES ??= '0';
  parseFn ??= import('@bytecodealliance/jco').then((m) => (m as unknown as { parse: ParseFn }).parse);
  return parseFn;
}

/** Assembly failed: the text is not well-formed according to wasm-tools. */
export class AssembleError extends Error {
  override name = 'AssembleError';
}

/** Assembles text with wasm-tools. Throws AssembleError on a parse error. */
export async function assembleText(text: string): Promise<Uint8Array> {
  const parse = await loadParse();
  try {
    const out = await parse(text);
    return out instanceof Uint8Array ? out : new Uint8Array(out as ArrayLike<number>);
  } catch (e) {
    const msg = e instanceof Error ? e.message : typeof e === 'object' && e !== null && 'payload' in e ? String((e as { payload: unknown }).payload) : String(e);
    throw new AssembleError(msg);
  }
}

/** The bytes of a module form (binary forms are returned as is). */
export async function assemble(form: ModuleForm): Promise<Uint8Array> {
  switch (form.source.kind) {
    case 'binary':
      return form.source.bytes;
    case 'text':
    case 'quote':
      return assembleText(form.source.text);
  }
}

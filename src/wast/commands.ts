// Turns the top-level forms of a .wast file into commands.

import {
  type SExpr, type SList, readSExprs, LineMap, WastSyntaxError,
  isAtom, isId, isString, headOf, stringText,
} from './sexpr.ts';
import { type WastValue, parseValue } from './values.ts';

/** How the bytes of a module/component are obtained. */
export type ModuleSource =
  /** Component (or core module) text to be assembled with wasm-tools. */
  | { kind: 'text'; text: string }
  /** `binary "..."` strings, concatenated. */
  | { kind: 'binary'; bytes: Uint8Array }
  /** `quote "..."` strings, joined into text and assembled. */
  | { kind: 'quote'; text: string };

export interface ModuleForm {
  /** `(module ...)` rather than `(component ...)`. */
  isCore: boolean;
  /** The `$id` of the form, without `$`. */
  name: string | null;
  source: ModuleSource;
}

export interface Action {
  /** Instance named in the action (without `$`), or null for the most recent. */
  instance: string | null;
  /** Export name; nested exports are not part of the dialect. */
  name: string;
  args: WastValue[];
}

export type CommandBody =
  /** `(component ...)`: compile and instantiate; becomes the current instance. */
  | { kind: 'component'; module: ModuleForm }
  /** `(module ...)` at top level (core module). */
  | { kind: 'module'; module: ModuleForm }
  /** `(component definition $name ...)`: compile only. */
  | { kind: 'definition'; module: ModuleForm }
  /** `(component instance $inst $def)`. */
  | { kind: 'instance'; instance: string | null; definition: string | null }
  | { kind: 'register'; as: string; instance: string | null }
  | { kind: 'invoke'; action: Action }
  | { kind: 'assert_return'; action: Action; expected: WastValue[] }
  /** With `action` for the invoke form, `module` for the instantiation form. */
  | { kind: 'assert_trap'; action: Action | null; module: ModuleForm | null; message: string }
  | { kind: 'assert_exhaustion'; action: Action; message: string }
  | { kind: 'assert_invalid'; module: ModuleForm; message: string }
  | { kind: 'assert_malformed'; module: ModuleForm; message: string }
  | { kind: 'assert_unlinkable'; module: ModuleForm; message: string }
  /** A form this runner does not know; reported as a failure. */
  | { kind: 'unknown'; head: string };

export type Command = CommandBody & { line: number; column: number; /** source text of the whole command */ text: string };

export type CommandKind = CommandBody['kind'];

export interface ParsedWast {
  commands: Command[];
  /** `;;! name = bool` header lines at the start of the file. */
  features: Record<string, boolean>;
}

/** Reads the leading `;;!` lines (wasmtime test config) as booleans. */
export function parseFeatureHeader(src: string): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const line of src.split('\n')) {
    if (!line.startsWith(';;!')) break;
    const m = /^;;!\s*([A-Za-z0-9_-]+)\s*=\s*(true|false)\s*$/.exec(line.trimEnd());
    if (m) out[m[1]!] = m[2] === 'true';
  }
  return out;
}

function idName(e: SExpr | undefined): string | null {
  return isId(e) ? e.text.slice(1) : null;
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Reads a `(component ...)` / `(module ...)` form. `definition` (and the
 * instance-only wrappers) are stripped; `binary`/`quote` bodies are collected.
 */
export function parseModuleForm(src: string, form: SList): { module: ModuleForm; definition: boolean } {
  const head = headOf(form)!;
  const isCore = head === 'module';
  let i = 1;
  let definition = false;
  let defAtom: SExpr | null = null;
  if (isAtom(form.items[i], 'definition')) {
    definition = true;
    defAtom = form.items[i]!;
    i++;
  }
  const name = idName(form.items[i]);
  if (name !== null) i++;
  const mode = form.items[i];
  if (isAtom(mode, 'binary') || isAtom(mode, 'quote')) {
    const strs = form.items.slice(i + 1);
    for (const s of strs) if (!isString(s)) throw new WastSyntaxError(`expected strings after \`${mode.text}\``, s.start);
    const parts = strs.map((s) => (s as { bytes: Uint8Array }).bytes);
    if (mode.text === 'binary') {
      return { module: { isCore, name, source: { kind: 'binary', bytes: concatBytes(parts) } }, definition };
    }
    const body = parts.map((p) => new TextDecoder().decode(p)).join(' ');
    return { module: { isCore, name, source: { kind: 'quote', text: `(${head} ${body})` } }, definition };
  }
  let text = src.slice(form.start, form.end);
  if (defAtom) {
    // Blank out the `definition` keyword, keeping all other offsets intact.
    const a = defAtom.start - form.start;
    const b = defAtom.end - form.start;
    text = text.slice(0, a) + ' '.repeat(b - a) + text.slice(b);
  }
  return { module: { isCore, name, source: { kind: 'text', text } }, definition };
}

function parseAction(e: SExpr | undefined, at: SExpr): Action {
  if (!e || e.kind !== 'list' || !isAtom(e.items[0], 'invoke')) {
    throw new WastSyntaxError(`expected (invoke ...), got ${headOf(e) ?? e?.kind ?? 'nothing'}`, (e ?? at).start);
  }
  let i = 1;
  const instance = idName(e.items[i]);
  if (instance !== null) i++;
  const nameTok = e.items[i++];
  if (!isString(nameTok)) throw new WastSyntaxError('invoke expects an export name', e.start);
  return { instance, name: stringText(nameTok), args: e.items.slice(i).map(parseValue) };
}

function messageOf(e: SExpr | undefined): string {
  return isString(e) ? stringText(e) : '';
}

function moduleArg(src: string, e: SExpr | undefined, at: SExpr): ModuleForm {
  const h = headOf(e);
  if (h !== 'component' && h !== 'module') throw new WastSyntaxError('expected (component ...) or (module ...)', (e ?? at).start);
  return parseModuleForm(src, e as SList).module;
}

function parseCommand(src: string, form: SExpr): CommandBody {
  if (form.kind !== 'list') throw new WastSyntaxError('expected a command form', form.start);
  const head = headOf(form) ?? '';
  const it = form.items;
  switch (head) {
    case 'component': {
      if (isAtom(it[1], 'instance')) {
        return { kind: 'instance', instance: idName(it[2]), definition: idName(it[3]) };
      }
      const { module, definition } = parseModuleForm(src, form);
      return definition ? { kind: 'definition', module } : { kind: 'component', module };
    }
    case 'module': {
      if (isAtom(it[1], 'instance')) {
        return { kind: 'instance', instance: idName(it[2]), definition: idName(it[3]) };
      }
      const { module, definition } = parseModuleForm(src, form);
      return definition ? { kind: 'definition', module } : { kind: 'module', module };
    }
    case 'register': {
      if (!isString(it[1])) throw new WastSyntaxError('register expects a name', form.start);
      return { kind: 'register', as: stringText(it[1]), instance: idName(it[2]) };
    }
    case 'invoke':
      return { kind: 'invoke', action: parseAction(form, form) };
    case 'assert_return':
      return { kind: 'assert_return', action: parseAction(it[1], form), expected: it.slice(2).map(parseValue) };
    case 'assert_trap': {
      const h = headOf(it[1]);
      if (h === 'component' || h === 'module') {
        return { kind: 'assert_trap', action: null, module: moduleArg(src, it[1], form), message: messageOf(it[2]) };
      }
      return { kind: 'assert_trap', action: parseAction(it[1], form), module: null, message: messageOf(it[2]) };
    }
    case 'assert_exhaustion':
      return { kind: 'assert_exhaustion', action: parseAction(it[1], form), message: messageOf(it[2]) };
    case 'assert_invalid':
    case 'assert_malformed':
    case 'assert_unlinkable':
      return { kind: head, module: moduleArg(src, it[1], form), message: messageOf(it[2]) };
  }
  return { kind: 'unknown', head };
}

/** Parses a whole .wast source. Syntax errors in a single command become `unknown` commands. */
export function parseWast(src: string): ParsedWast {
  const lines = new LineMap(src);
  const forms = readSExprs(src);
  const commands: Command[] = [];
  for (const form of forms) {
    const { line, column } = lines.position(form.start);
    const text = src.slice(form.start, form.end);
    let body: CommandBody;
    try {
      body = parseCommand(src, form);
    } catch (e) {
      if (!(e instanceof WastSyntaxError)) throw e;
      const p = lines.position(e.offset);
      throw new WastSyntaxError(`${e.message} (at ${p.line}:${p.column})`, e.offset);
    }
    commands.push({ ...body, line, column, text });
  }
  return { commands, features: parseFeatureHeader(src) };
}

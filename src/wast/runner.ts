// Runs one .wast file of the Component Model test dialect against Weir.

import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { type Action, type Command, type ModuleForm, parseWast } from './commands.ts';
import { AssembleError, assemble } from './assemble.ts';
import { createHostImports, type HostImports, type HostResourceCtor } from './host.ts';
import { camelCase, matchResults, toJs } from './values.ts';
import { commandSkipReason, skipReason } from './skips.ts';

// ---------------------------------------------------------------- runtime API

/** The part of Weir's public API (docs/CONTRACTS.md) the runner uses. */
export interface RuntimeApi {
  Component: {
    compile(bytes: Uint8Array, opts?: { features?: Record<string, boolean> }): CompiledComponent | Promise<CompiledComponent>;
  };
  /** Embedder-defined resource types (used for the harness's `host` resources). */
  HostResource?: HostResourceCtor;
  /** Compiles a core module and records its type, so module imports can be type-checked. */
  compileCoreModule?: (bytes: Uint8Array) => WebAssembly.Module;
}
export interface CompiledComponent {
  instantiate(imports?: Record<string, unknown>): InstanceLike | Promise<InstanceLike>;
}
export interface InstanceLike {
  exports: Record<string, unknown>;
}

let defaultRuntime: Promise<RuntimeApi> | null = null;

/**
 * Loads Weir's entry point (`src/index.ts` when running from sources,
 * `dist/index.js` when compiled). Imported lazily so that the runner can be
 * built before the runtime exists.
 */
export function loadRuntime(): Promise<RuntimeApi> {
  defaultRuntime ??= (async () => {
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    const url = new URL(`../index${ext}`, import.meta.url).href;
    return (await import(url)) as RuntimeApi;
  })();
  return defaultRuntime;
}

// ---------------------------------------------------------------- results

export type Status = 'pass' | 'fail' | 'skip';

export interface CommandResult {
  line: number;
  column: number;
  kind: string;
  status: Status;
  /** Why the command failed (or was skipped). */
  message?: string;
  /** Informational: e.g. a trap message differing from the expected text. */
  note?: string;
}

export interface FileResult {
  /** Path relative to the spec-data directory (or as given when outside it). */
  path: string;
  status: Status;
  reason: string;
  features: Record<string, boolean>;
  commands: CommandResult[];
  counts: Record<Status, number>;
  durationMs: number;
}

export interface RunOptions {
  /** Weir's API; defaults to the package entry point. */
  runtime?: RuntimeApi;
  /** Spec-data root, for relative paths and per-directory feature defaults. */
  specRoot?: string;
  /** Extra features, overriding the file's own. */
  features?: Record<string, boolean>;
  /** Called before each command (used by the worker pool to report hangs). */
  onCommand?: (cmd: Command) => void;
  /** Ignore the skip list. */
  noSkips?: boolean;
}

// ---------------------------------------------------------------- features

/**
 * Features wasmtime enables for the upstream component-model tests, which carry
 * no `;;!` header (wasmtime crates/test-util `component_test_config`).
 */
const COMPONENT_MODEL_TEST_FEATURES: Record<string, boolean> = {
  reference_types: true,
  multi_memory: true,
  component_model_implements: true,
  bulk_memory: true,
  component_model_async: true,
  component_model_more_async_builtins: true,
  component_model_async_stackful: true,
  component_model_threading: true,
  gc: true,
  exceptions: true,
  component_model_map: true,
  component_model_fixed_length_lists: true,
};

/** Features for a file: its `;;!` header, or the defaults of its test directory. */
export function featuresFor(rel: string, header: Record<string, boolean>): Record<string, boolean> {
  const norm = rel.split(path.sep).join('/');
  if (norm.startsWith('component-model-test/') || norm.includes('/component-model-test/')) {
    const f = { ...COMPONENT_MODEL_TEST_FEATURES, ...header };
    if (norm.endsWith('memory64.wast')) f.component_model_memory64 = true;
    return f;
  }
  return { ...header };
}

// ---------------------------------------------------------------- helpers

function errName(e: unknown): string {
  if (e instanceof Error) return e.name;
  return typeof e;
}

const ERROR_CODES = { Trap: 'WEIR_TRAP', DecodeError: 'WEIR_DECODE', ValidationError: 'WEIR_VALIDATION', LinkError: 'WEIR_LINK' } as const;

/** By the error's stable code (src/errors.ts), not its name or message. */
function isErr(e: unknown, name: keyof typeof ERROR_CODES): boolean {
  return e instanceof Error && (e as { code?: unknown }).code === ERROR_CODES[name];
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message.split('\n')[0]}`;
  return `thrown ${typeof e}: ${String(e)}`;
}

/** The first line of wasm-tools' error, cleaned of the Rust Debug wrapping. */
function shortParseError(msg: string): string {
  const kind = /kind: Custom\("((?:[^"\\]|\\.)*)"\)/.exec(msg);
  const pos = /line: (\d+), col: (\d+)/.exec(msg);
  if (kind) return `${kind[1]}${pos ? ` (at component text ${Number(pos[1]) + 1}:${Number(pos[2]) + 1})` : ''}`;
  return msg.split('\n')[0]!.slice(0, 300);
}

class CommandFailure extends Error {}

function failCmd(msg: string): never {
  throw new CommandFailure(msg);
}

interface CommandOutcome {
  note?: string;
}

// ---------------------------------------------------------------- the runner

class WastRun {
  runtime: RuntimeApi;
  features: Record<string, boolean>;
  host: HostImports;
  current: InstanceLike | null = null;
  instances = new Map<string, InstanceLike>();
  definitions = new Map<string, CompiledComponent>();
  /** Named instances, made available as imports under their name. */
  registered: Record<string, unknown> = {};
  bytes = new Map<ModuleForm, Uint8Array | AssembleError>();
  /** Line of the command that failed to produce the current instance, if any. */
  currentFailedAt: number | null = null;
  /** Names whose definition/instance command failed, with its line. */
  failedNames = new Map<string, number>();
  line = 0;

  constructor(runtime: RuntimeApi, features: Record<string, boolean>) {
    this.runtime = runtime;
    this.features = features;
    this.host = createHostImports(runtime.HostResource, runtime.compileCoreModule);
  }

  imports(): Record<string, unknown> {
    return { ...this.host.imports, ...this.registered };
  }

  bytesOf(m: ModuleForm): Uint8Array {
    const b = this.bytes.get(m);
    if (b instanceof Uint8Array) return b;
    failCmd(`does not assemble: ${b ? shortParseError(b.message) : 'not assembled'}`);
  }

  async compile(m: ModuleForm): Promise<CompiledComponent> {
    const bytes = this.bytesOf(m);
    if (m.isCore) return coreModule(bytes);
    return await this.runtime.Component.compile(bytes, { features: this.features });
  }

  async instantiate(c: CompiledComponent): Promise<InstanceLike> {
    return await c.instantiate(this.imports());
  }

  setCurrent(inst: InstanceLike, name: string | null): void {
    this.current = inst;
    this.currentFailedAt = null;
    if (name !== null) {
      this.instances.set(name, inst);
      this.failedNames.delete('i:' + name);
      this.registered[name] = inst.exports;
    }
  }

  /** A component/instance command failed: later invokes must not hit a stale instance. */
  clearCurrent(name: string | null): void {
    this.current = null;
    this.currentFailedAt = this.line;
    if (name !== null) {
      this.instances.delete(name);
      this.failedNames.set('i:' + name, this.line);
      delete this.registered[name];
    }
  }

  async instantiateForm(m: ModuleForm, what: string): Promise<void> {
    let c: CompiledComponent;
    try {
      c = await this.compile(m);
    } catch (e) {
      if (e instanceof CommandFailure) throw e;
      failCmd(`${what} failed to compile: ${describe(e)}`);
    }
    let inst: InstanceLike;
    try {
      inst = await this.instantiate(c);
    } catch (e) {
      failCmd(`${what} failed to instantiate: ${describe(e)}`);
    }
    this.setCurrent(inst, m.name);
  }

  async call(a: Action): Promise<unknown> {
    const inst = a.instance === null ? this.current : this.instances.get(a.instance);
    if (!inst) {
      if (a.instance === null) {
        failCmd(this.currentFailedAt !== null ? `no instance to invoke (the component at line ${this.currentFailedAt} failed)` : 'no instance to invoke');
      }
      const at = this.failedNames.get('i:' + a.instance);
      failCmd(`no instance named $${a.instance}${at !== undefined ? ` (it failed at line ${at})` : ''}`);
    }
    const exports = inst.exports;
    let fn = exports[a.name];
    if (fn === undefined) fn = exports[camelCase(a.name)];
    if (typeof fn !== 'function') failCmd(`export \`${a.name}\` is not a function (${typeof fn})`);
    const args = a.args.map(toJs);
    return await (fn as (...args: unknown[]) => unknown)(...args);
  }

  async run(cmd: Command): Promise<CommandOutcome> {
    this.line = cmd.line;
    switch (cmd.kind) {
      case 'component':
      case 'module':
        try {
          await this.instantiateForm(cmd.module, cmd.kind);
        } catch (e) {
          this.clearCurrent(cmd.module.name);
          throw e;
        }
        return {};
      case 'definition': {
        const name = cmd.module.name ?? '';
        try {
          this.definitions.set(name, await this.compile(cmd.module));
          this.failedNames.delete('d:' + name);
        } catch (e) {
          this.definitions.delete(name);
          this.failedNames.set('d:' + name, cmd.line);
          if (e instanceof CommandFailure) throw e;
          failCmd(`definition failed to compile: ${describe(e)}`);
        }
        return {};
      }
      case 'instance': {
        const def = this.definitions.get(cmd.definition ?? '');
        if (!def) {
          this.clearCurrent(cmd.instance);
          const at = this.failedNames.get('d:' + (cmd.definition ?? ''));
          failCmd(`no definition named $${cmd.definition ?? ''}${at !== undefined ? ` (it failed at line ${at})` : ''}`);
        }
        let inst: InstanceLike;
        try {
          inst = await this.instantiate(def);
        } catch (e) {
          this.clearCurrent(cmd.instance);
          failCmd(`instantiation failed: ${describe(e)}`);
        }
        this.setCurrent(inst, cmd.instance);
        return {};
      }
      case 'register': {
        const inst = cmd.instance === null ? this.current : this.instances.get(cmd.instance);
        if (!inst) failCmd('no instance to register');
        this.registered[cmd.as] = inst.exports;
        return {};
      }
      case 'invoke': {
        try {
          await this.call(cmd.action);
        } catch (e) {
          if (e instanceof CommandFailure) throw e;
          failCmd(`invoke \`${cmd.action.name}\` threw ${describe(e)}`);
        }
        return {};
      }
      case 'assert_return': {
        let result: unknown;
        try {
          result = await this.call(cmd.action);
        } catch (e) {
          if (e instanceof CommandFailure) throw e;
          failCmd(`invoke \`${cmd.action.name}\` threw ${describe(e)}`);
        }
        const mismatch = matchResults(cmd.expected, result);
        if (mismatch) failCmd(`\`${cmd.action.name}\`: ${mismatch}`);
        return {};
      }
      case 'assert_trap':
      case 'assert_exhaustion': {
        let err: unknown;
        let threw = false;
        if (cmd.kind === 'assert_trap' && cmd.module) {
          let c: CompiledComponent;
          try {
            c = await this.compile(cmd.module);
          } catch (e) {
            if (e instanceof CommandFailure) throw e;
            failCmd(`expected an instantiation trap, but compiling failed: ${describe(e)}`);
          }
          try {
            await this.instantiate(c);
          } catch (e) {
            err = e;
            threw = true;
          }
          if (!threw) failCmd(`expected trap "${cmd.message}", but instantiation succeeded`);
        } else {
          const action = cmd.action!;
          try {
            await this.call(action);
          } catch (e) {
            if (e instanceof CommandFailure) throw e;
            err = e;
            threw = true;
          }
          if (!threw) failCmd(`expected trap "${cmd.message}", but \`${action.name}\` returned`);
        }
        const exhaustion = cmd.kind === 'assert_exhaustion' && err instanceof RangeError;
        if (!isErr(err, 'Trap') && !exhaustion) failCmd(`expected a Trap ("${cmd.message}"), got ${describe(err)}`);
        const msg = err instanceof Error ? err.message : '';
        if (cmd.message && !msg.includes(cmd.message)) {
          return { note: `trap message differs: expected "${cmd.message}", got "${msg.split('\n')[0]}"` };
        }
        return {};
      }
      case 'assert_invalid': {
        try {
          await this.compile(cmd.module);
        } catch (e) {
          if (e instanceof CommandFailure) throw e;
          if (isErr(e, 'ValidationError')) return {};
          if (isErr(e, 'DecodeError')) return { note: `rejected by the decoder, not the validator: ${describe(e)}` };
          failCmd(`expected a ValidationError ("${cmd.message}"), got ${describe(e)}`);
        }
        failCmd(`expected a ValidationError ("${cmd.message}"), but it compiled`);
      }
      case 'assert_malformed': {
        const b = this.bytes.get(cmd.module);
        if (b instanceof AssembleError) {
          return { note: `rejected by the text parser: ${shortParseError(b.message)}` };
        }
        const isText = cmd.module.source.kind !== 'binary';
        try {
          await this.compile(cmd.module);
        } catch (e) {
          if (e instanceof CommandFailure) throw e;
          if (isErr(e, 'DecodeError')) return {};
          if (isText && isErr(e, 'ValidationError')) {
            return { note: `text form assembled; rejected by the validator: ${describe(e)}` };
          }
          failCmd(`expected a DecodeError ("${cmd.message}"), got ${describe(e)}`);
        }
        failCmd(`expected a DecodeError ("${cmd.message}"), but it compiled`);
      }
      case 'assert_unlinkable': {
        let c: CompiledComponent;
        try {
          c = await this.compile(cmd.module);
        } catch (e) {
          if (e instanceof CommandFailure) throw e;
          if (isErr(e, 'ValidationError') || isErr(e, 'LinkError')) {
            return { note: `rejected at compile time: ${describe(e)}` };
          }
          failCmd(`expected a LinkError ("${cmd.message}"), but compiling failed: ${describe(e)}`);
        }
        try {
          await this.instantiate(c);
        } catch (e) {
          if (isErr(e, 'LinkError') || isErr(e, 'ValidationError')) return {};
          failCmd(`expected a LinkError ("${cmd.message}"), got ${describe(e)}`);
        }
        failCmd(`expected a LinkError ("${cmd.message}"), but instantiation succeeded`);
      }
      case 'unknown':
        failCmd(`unsupported command \`${cmd.head}\``);
    }
  }
}

/** A core module at top level: compiled and instantiated by the JS engine. */
function coreModule(bytes: Uint8Array): CompiledComponent {
  const mod = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  return {
    instantiate(imports) {
      const inst = new WebAssembly.Instance(mod, (imports ?? {}) as WebAssembly.Imports);
      return { exports: inst.exports as Record<string, unknown> };
    },
  };
}

function moduleOf(cmd: Command): ModuleForm | null {
  switch (cmd.kind) {
    case 'component':
    case 'module':
    case 'definition':
    case 'assert_invalid':
    case 'assert_malformed':
    case 'assert_unlinkable':
      return cmd.module;
    case 'assert_trap':
      return cmd.module;
    default:
      return null;
  }
}

function relPath(file: string, specRoot: string | undefined): string {
  if (!specRoot) return file;
  const rel = path.relative(specRoot, file);
  return rel.startsWith('..') || path.isAbsolute(rel) ? file : rel.split(path.sep).join('/');
}

function summarize(r: CommandResult): string {
  return `line ${r.line}: ${r.kind}: ${r.message ?? ''}`;
}

/** Runs one .wast file. Never throws for test failures; they are in the result. */
export async function runWastFile(file: string, opts: RunOptions = {}): Promise<FileResult> {
  const t0 = performance.now();
  const rel = relPath(path.resolve(file), opts.specRoot ? path.resolve(opts.specRoot) : undefined);
  const result = (status: Status, reason: string, features: Record<string, boolean>, commands: CommandResult[]): FileResult => {
    const counts: Record<Status, number> = { pass: 0, fail: 0, skip: 0 };
    for (const c of commands) counts[c.status]++;
    return { path: rel, status, reason, features, commands, counts, durationMs: Math.round(performance.now() - t0) };
  };

  const skip = opts.noSkips ? null : skipReason(rel);
  if (skip !== null) return result('skip', skip, {}, []);

  let src: string;
  try {
    src = await readFile(file, 'utf8');
  } catch (e) {
    return result('fail', `cannot read file: ${describe(e)}`, {}, []);
  }
  let parsed;
  try {
    parsed = parseWast(src);
  } catch (e) {
    return result('fail', `cannot parse .wast: ${describe(e)}`, {}, []);
  }
  const features = { ...featuresFor(rel, parsed.features), ...opts.features };

  // Assemble every form up front: a file with a form the bundled wasm-tools
  // cannot assemble is skipped (unless the form is expected to be malformed).
  const run0 = new Map<ModuleForm, Uint8Array | AssembleError>();
  const unassembled: string[] = [];
  for (const cmd of parsed.commands) {
    const m = moduleOf(cmd);
    if (!m) continue;
    try {
      run0.set(m, await assemble(m));
    } catch (e) {
      if (!(e instanceof AssembleError)) throw e;
      run0.set(m, e);
      if (cmd.kind !== 'assert_malformed') unassembled.push(`line ${cmd.line}: ${shortParseError(e.message)}`);
    }
  }
  if (unassembled.length) {
    return result(
      'skip',
      `does not assemble with the bundled wasm-tools: ${unassembled[0]}${unassembled.length > 1 ? ` (+${unassembled.length - 1} more)` : ''}`,
      features,
      [],
    );
  }

  let runtime: RuntimeApi;
  try {
    runtime = opts.runtime ?? (await loadRuntime());
  } catch (e) {
    return result('fail', `cannot load the runtime: ${describe(e)}`, features, []);
  }

  const run = new WastRun(runtime, features);
  run.bytes = run0;
  const commands: CommandResult[] = [];
  for (const cmd of parsed.commands) {
    opts.onCommand?.(cmd);
    const base = { line: cmd.line, column: cmd.column, kind: cmd.kind };
    const skipCmd = opts.noSkips ? null : commandSkipReason(rel, cmd.line);
    if (skipCmd !== null) {
      commands.push({ ...base, status: 'skip', note: skipCmd });
      continue;
    }
    try {
      const out = await run.run(cmd);
      commands.push({ ...base, status: 'pass', ...(out.note ? { note: out.note } : {}) });
    } catch (e) {
      const message = e instanceof CommandFailure ? e.message : `runner error: ${describe(e)}`;
      commands.push({ ...base, status: 'fail', message });
    }
  }
  const failures = commands.filter((c) => c.status === 'fail');
  if (failures.length) {
    const more = failures.length > 1 ? ` (+${failures.length - 1} more failing commands)` : '';
    return result('fail', summarize(failures[0]!) + more, features, commands);
  }
  const skipped = commands.filter((c) => c.status === 'skip');
  return result('pass', skipped.length ? `skipped commands: ${skipped.map((c) => `line ${c.line}: ${c.note}`).join('; ')}` : '', features, commands);
}

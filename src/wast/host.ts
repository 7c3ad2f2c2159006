// Host imports that wasmtime's wast harness links into every component
// instantiation, re-implemented from the behaviour the wasmtime tests expect.
//
// Shape (the JS embedding of a host instance):
//   imports['host'] is an object keyed by the export names the components
//   declare, e.g. 'return-three', 'nested' (a nested instance object),
//   'simple-module' (a WebAssembly.Module), 'resource1' (a resource type: a
//   `HostResource` from Weir's API, whose `drop` callback receives the host's
//   value), '[constructor]resource1', '[method]resource1.simple', ...
//   Values of host resources are the host's own JS objects (`Resource1`
//   below); `[method]` entries take the receiver as first argument.
//   Async (`func async`) imports return Promises.

/** Observable state of the host, fresh for every .wast file. */
export interface HostState {
  /** Number of `resource1` handles dropped by guests. */
  drops: number;
  /** `rep` of the last dropped `resource1`. */
  lastDrop: number;
}

/** A host-side failure of an assertion made by the harness (wasmtime panics here). */
export class HostAssertion extends Error {
  override name = 'HostAssertion';
}

function check(cond: boolean, msg: string): void {
  if (!cond) throw new HostAssertion(msg);
}

function nextTick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function never(): Promise<never> {
  return new Promise(() => {});
}

/**
 * `(module (global (export "g") i32 (i32.const 100)) (func (export "f") (result i32) (i32.const 101)))`,
 * the `simple-module` the harness exports from `host`.
 */
const SIMPLE_MODULE = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, // type: () -> i32
  0x03, 0x02, 0x01, 0x00, // func 0: type 0
  0x06, 0x07, 0x01, 0x7f, 0x00, 0x41, 0xe4, 0x00, 0x0b, // global i32 = 100
  0x07, 0x09, 0x02, 0x01, 0x67, 0x03, 0x00, 0x01, 0x66, 0x00, 0x00, // export "g" global 0, "f" func 0
  0x0a, 0x07, 0x01, 0x05, 0x00, 0x41, 0xe5, 0x00, 0x0b, // code: i32.const 101
]);

let simpleModule: WebAssembly.Module | null = null;

export interface HostImports {
  imports: Record<string, unknown>;
  state: HostState;
}

/** Weir's constructor for embedder-defined resource types. */
export type HostResourceCtor = new (name: string, options?: { drop?: (rep: any) => void }) => object;

/**
 * Builds the harness imports; resource types are fresh per call. Without a
 * `HostResource` constructor the resource types are given as the JS classes.
 */
export function createHostImports(HostResource?: HostResourceCtor, compileCoreModule?: (bytes: Uint8Array) => WebAssembly.Module): HostImports {
  const state: HostState = { drops: 0, lastDrop: 0 };

  class Resource1 {
    rep: number;
    constructor(rep: number) {
      this.rep = rep;
    }
    simple(rep: number): void {
      check(this.rep === rep, `resource1.simple: rep ${this.rep} != ${rep}`);
    }
    takeBorrow(_b: Resource1): void {}
    takeOwn(_b: Resource1): void {}
    neverReturn(): Promise<never> {
      return never();
    }
    static assert(r: Resource1, rep: number): void {
      check(r instanceof Resource1, 'resource1.assert: not a resource1 handle');
      check(r.rep === rep, `resource1.assert: rep ${r.rep} != ${rep}`);
    }
    static lastDrop(): number {
      return state.lastDrop;
    }
    static drops(): number {
      return state.drops;
    }
    [Symbol.dispose](): void {
      dropResource1(this);
    }
  }

  class Resource2 {
    rep: number;
    constructor(rep: number) {
      this.rep = rep;
    }
    [Symbol.dispose](): void {}
  }

  simpleModule ??= compileCoreModule ? compileCoreModule(SIMPLE_MODULE) : new WebAssembly.Module(SIMPLE_MODULE);

  const dropResource1 = (r: unknown) => {
    state.drops++;
    state.lastDrop = r instanceof Resource1 ? r.rep : Number(r);
  };
  const resource1Type: unknown = HostResource ? new HostResource('resource1', { drop: dropResource1 }) : Resource1;
  const resource2Type: unknown = HostResource ? new HostResource('resource2', { drop: () => {} }) : Resource2;

  const host: Record<string, unknown> = {
    'return-three': () => 3,
    nested: { 'return-four': () => 4 },
    'simple-module': simpleModule,
    resource1: resource1Type,
    resource2: resource2Type,
    // Same resource type as `resource1`.
    'resource1-again': resource1Type,
    '[constructor]resource1': (rep: number) => new Resource1(rep),
    '[static]resource1.assert': (r: Resource1, rep: number) => Resource1.assert(r, rep),
    '[static]resource1.last-drop': () => state.lastDrop,
    '[static]resource1.drops': () => state.drops,
    '[method]resource1.simple': (self: Resource1, rep: number) => {
      check(self instanceof Resource1, 'resource1.simple: not a resource1 handle');
      self.simple(rep);
    },
    '[method]resource1.take-borrow': (_self: Resource1, _b: Resource1) => {},
    '[method]resource1.take-own': (_self: Resource1, _b: Resource1) => {},
    '[method]resource1.never-return': (_self: Resource1) => never(),
    // async host functions
    'never-return': () => never(),
    'return-two-slowly': async () => {
      await nextTick();
      return 2;
    },
    'echo-slowly': async (a: number) => {
      await nextTick();
      return a;
    },
    'return-hi': () => 'hi',
  };

  const imports: Record<string, unknown> = {
    host,
    'host-return-two': () => 2,
    'host-echo-u32': async (v: number) => v,
    // wasmtime's own test helpers. Weir has no knob for the handle-table
    // capacity, so limiting it is a no-op here.
    wasmtime: {
      'set-max-table-capacity': (_max: number) => {},
      gc: () => {},
    },
  };
  return { imports, state };
}

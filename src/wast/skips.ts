// Files the spec runner skips on purpose, keyed by path relative to the
// spec-data directory, with the reason shown in the report.
//
// Files containing a (non-assert_malformed) form that the bundled wasm-tools
// cannot assemble are skipped automatically by the runner with the parse error
// as the reason (e.g. component-model-test/async/cancellable.wast, which
// predates the removal of the `cancellable` text immediate); they need no
// entry here.
//
// Candidates for the lead to decide on: component-model-test/nyi.txt lists
// tests the reference implementation does not implement yet
// (validation/max-value-size.wast and three async/during-sync-call-*.wast).

export const SKIPS: Readonly<Record<string, string>> = {
  'wasmtime-misc_testsuite-component-model/restrictions.wast':
    'tests restrictions of wasmtime\'s implementation (root-level component imports, unimplemented re-exports), not rules of the Component Model',
};

const WASMTIME_ONLY = 'wasmtime implementation restriction, not a Component Model rule';

/** Single commands skipped on purpose (file → line → reason); the rest of the file still runs. */
export const COMMAND_SKIPS: Readonly<Record<string, Readonly<Record<number, string>>>> = {
  'wasmtime-misc_testsuite-component-model/simple.wast': { 24: WASMTIME_ONLY, 30: WASMTIME_ONLY },
  'wasmtime-misc_testsuite-component-model/import.wast': { 1: WASMTIME_ONLY },
  'wasmtime-misc_testsuite-component-model/adapter.wast': {
    97: 'wasmtime traps when a component\'s core code calls the component\'s own lifted export during instantiation; under the spec\'s entering_set rules (CanonicalABI.md "Component Instances") a call from an instance into itself enters nothing and does not trap',
  },
};

export function commandSkipReason(rel: string, line: number): string | null {
  const f = COMMAND_SKIPS[rel];
  return f && Object.hasOwn(f, line) ? f[line]! : null;
}

/** The reason a file is skipped, or null. `rel` is relative to spec-data. */
export function skipReason(rel: string): string | null {
  return Object.hasOwn(SKIPS, rel) ? SKIPS[rel]! : null;
}

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

export const SKIPS: Readonly<Record<string, string>> = {};

/** The reason a file is skipped, or null. `rel` is relative to spec-data. */
export function skipReason(rel: string): string | null {
  return Object.hasOwn(SKIPS, rel) ? SKIPS[rel]! : null;
}

// What the `weir` command says about the toolchains that built a component:
// `weir inspect` lists the producers and the deviation-table entries that
// match; `weir run --verbose` notes each fix once, when it takes effect.

import type { AppliedDeviation, MatchedDeviation } from '../runtime/deviations.ts';
import type { Producer } from '../binary/producers.ts';

/** The compile options for run/serve: `--strict` turns the deviation table off. */
export function deviationOptions(file: string, strict: boolean, verbose: boolean) {
  return {
    deviations: strict ? 'strict' as const : 'apply' as const,
    onDeviation: verbose ? (d: AppliedDeviation) => { process.stderr.write(deviationNote(file, d)); } : undefined,
  };
}

export function deviationNote(file: string, d: AppliedDeviation): string {
  return `weir: ${file}: built with ${d.producer} ${d.version}, which ${d.cause}; applying a fix: ${d.fix} `
    + `(rebuild with ${d.producer} ${d.fixedIn} or newer; --strict disables such fixes)\n`;
}

/** The WIT comment block `weir inspect` prints after the world. */
export function producersReport(producers: readonly Producer[], deviations: readonly MatchedDeviation[]): string {
  if (producers.length === 0) return '';
  let out = '\n// producers:\n';
  for (const p of producers) out += `//   ${p.field} ${p.name} ${p.version}`.trimEnd() + '\n';
  for (const m of deviations) {
    out += `// known deviation of ${m.entry.producer} ${m.producer.version} (fixed in ${m.entry.fixedIn}): ${m.entry.cause}\n`
      + `//   weir run applies: ${m.entry.fix} (--strict: trap as the spec says)\n`;
  }
  return out;
}

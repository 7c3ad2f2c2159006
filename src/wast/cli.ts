// `npm run spec [-- [--json] [--verbose] [--timeout=MS] [--jobs=N] [filter...]]`
//
// Runs every .wast file of the spec suite (or those whose path contains one of
// the filter substrings), one line per file. With --json the last line of
// output is one JSON object:
//   {"passed":N,"failed":N,"skipped":N,"files":[{"path","status","reason"}]}
// Exit code 1 if any file failed.

import { runFiles } from './pool.ts';
import { defaultSpecRoot, findSpecFiles } from './suite.ts';
import type { FileResult } from './runner.ts';

interface CliOptions {
  json: boolean;
  verbose: boolean;
  timeoutMs: number;
  jobs: number | undefined;
  filters: string[];
}

function parseArgs(argv: string[]): CliOptions {
  const o: CliOptions = {
    json: false,
    verbose: false,
    timeoutMs: Number(process.env.WEIR_SPEC_TIMEOUT ?? 120_000),
    jobs: undefined,
    filters: [],
  };
  for (const a of argv) {
    if (a === '--json') o.json = true;
    else if (a === '--verbose' || a === '-v') o.verbose = true;
    else if (a.startsWith('--timeout=')) o.timeoutMs = Number(a.slice(10));
    else if (a.startsWith('--jobs=')) o.jobs = Number(a.slice(7));
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: weir-spec [--json] [--verbose] [--timeout=MS] [--jobs=N] [path-substring...]\n');
      process.exit(0);
    } else o.filters.push(a);
  }
  return o;
}

function line(r: FileResult): string {
  const tag = r.status.toUpperCase().padEnd(4);
  const counts = r.commands.length ? ` (${r.counts.pass}/${r.commands.length} commands, ${r.durationMs} ms)` : '';
  return `${tag} ${r.path}${counts}${r.reason ? ` - ${r.reason}` : ''}`;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const specRoot = defaultSpecRoot();
  const files = findSpecFiles(specRoot, opts.filters);
  if (!files.length) {
    process.stderr.write(`no .wast files found under ${specRoot}${opts.filters.length ? ` matching ${opts.filters.join(', ')}` : ''}\n`);
  }
  const results = await runFiles(files, {
    specRoot,
    timeoutMs: opts.timeoutMs,
    jobs: opts.jobs,
  });
  for (const r of results) {
    process.stdout.write(line(r) + '\n');
    if (opts.verbose) {
      for (const c of r.commands) {
        if (c.status === 'fail') process.stdout.write(`    line ${c.line}: ${c.kind}: ${c.message}\n`);
        else if (c.note) process.stdout.write(`    line ${c.line}: ${c.kind}: note: ${c.note}\n`);
      }
    }
  }
  const passed = results.filter((r) => r.status === 'pass').length;
  const failed = results.filter((r) => r.status === 'fail').length;
  const skipped = results.filter((r) => r.status === 'skip').length;
  process.stdout.write(`${passed} passed, ${failed} failed, ${skipped} skipped (${results.length} files)\n`);
  if (opts.json) {
    const json = {
      passed,
      failed,
      skipped,
      files: results.map((r) => ({ path: r.path, status: r.status, reason: r.reason })),
    };
    process.stdout.write(JSON.stringify(json) + '\n');
  }
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);

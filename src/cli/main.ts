#!/usr/bin/env node
// Entry point of the `weir` command. This file must stay parseable by old Node
// versions (no TypeScript-only runtime syntax, no static imports of the rest of
// Weir) so that it can explain the version requirement instead of crashing.

const MIN_24 = 21; // supported: Node 24.21+ and 25+ (with JSPI available)

function jspiAvailable(): boolean {
  const wasm = (globalThis as { WebAssembly?: Record<string, unknown> }).WebAssembly;
  return !!wasm && typeof wasm.Suspending === 'function' && typeof wasm.promising === 'function';
}

function versionSupported(version: string): boolean {
  const [major, minor] = version.split('.').map((x) => parseInt(x, 10));
  return major > 24 || (major === 24 && minor >= MIN_24);
}

const nodeVersion = process.versions.node;
if (!versionSupported(nodeVersion) || !jspiAvailable()) {
  process.stderr.write(
    `weir needs Node 24.21+ or 26 (JSPI); this is Node v${nodeVersion}` +
      (versionSupported(nodeVersion) ? ' without WebAssembly.Suspending/WebAssembly.promising' : '') +
      `. Run through npm (npx weir) so the project's Node is used, or install Node 26.\n`,
  );
  process.exitCode = 2;
} else {
  // Cache V8's compiled code for Weir's own modules between runs (start-up time).
  const { enableCompileCache } = await import('node:module');
  if (!process.env.NODE_DISABLE_COMPILE_CACHE) enableCompileCache?.();
  const { main } = (await import(await entry())) as typeof import('./commands.ts');
  process.exitCode = await main(process.argv.slice(2));
}

/**
 * The commands: the bundle `npm run build` writes (dist/cli/weir.js, see
 * scripts/bundle-cli.ts; one file loads much faster than ~70 modules) when it
 * is at least as new as tsc's output, else the modules themselves.
 */
async function entry(): Promise<string> {
  const { statSync } = await import('node:fs');
  try {
    const bundle = statSync(new URL('./weir.js', import.meta.url)).mtimeMs;
    if (bundle >= statSync(new URL('./commands.js', import.meta.url)).mtimeMs) return './weir.js';
  } catch {
    // no bundle (running from src/, or only tsc was run)
  }
  return './commands.ts';
}

// Sandbox attacks on the filesystem core, through a real guest (componentize-qjs
// command) and the API: `..`, absolute paths, symlinks (absolute, relative,
// chained, looping), hard links, and racing attackers that swap directories and
// files for symlinks while the guest opens files in a loop. Zero escapes.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tempDir } from './helpers/temp-dir.ts';
import { join } from 'node:path';
import { buildCmd, runWithApi } from './helpers/wasi-fixtures.ts';

let wasm: string;
before(async () => { wasm = await buildCmd(); });

/**
 * root/
 *   outside/secret.txt        "OUTSIDE"      (must never be read, written or linked)
 *   box/                      the preopen
 *     a.txt, d/secret.txt     "inside"
 *     esc -> ../outside       relative escape
 *     abs -> <root>/outside   absolute escape
 *     absfile -> <root>/outside/secret.txt
 *     loop1 -> loop2 -> loop1
 *     dlink -> d, chain -> dlink/secret.txt, chain-esc -> dlink/../esc/secret.txt
 *     deep -> d/../../outside
 *     hard.txt                a hard link the host made to outside/secret.txt's twin (see test)
 */
function makeWorld() {
  const root = tempDir('weir-sandbox-');
  const box = join(root, 'box');
  const outside = join(root, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret.txt'), 'OUTSIDE');
  mkdirSync(join(box, 'd'), { recursive: true });
  writeFileSync(join(box, 'a.txt'), 'a');
  writeFileSync(join(box, 'd', 'secret.txt'), 'inside');
  symlinkSync('../outside', join(box, 'esc'));
  symlinkSync(outside, join(box, 'abs'));
  symlinkSync(join(outside, 'secret.txt'), join(box, 'absfile'));
  symlinkSync('loop2', join(box, 'loop1'));
  symlinkSync('loop1', join(box, 'loop2'));
  symlinkSync('d', join(box, 'dlink'));
  symlinkSync('dlink/secret.txt', join(box, 'chain'));
  symlinkSync('dlink/../esc/secret.txt', join(box, 'chain-esc'));
  symlinkSync('d/../../outside', join(box, 'deep'));
  symlinkSync('../../../../../../../../../../../../etc/passwd', join(box, 'many-dots'));
  return { root, box, outside, preopens: [{ host: box, guest: '/' }] };
}

async function attempt(w: ReturnType<typeof makeWorld>, ...args: string[]): Promise<string> {
  const r = await runWithApi(wasm, ['attempt', ...args], { preopens: w.preopens });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /OUTSIDE|\/tmp|weir-sandbox/, 'no outside data or host path reaches the guest');
  return r.stdout.trim();
}

function outsideUntouched(w: ReturnType<typeof makeWorld>) {
  assert.equal(readFileSync(join(w.outside, 'secret.txt'), 'utf8'), 'OUTSIDE');
  assert.equal(statSync(join(w.outside, 'secret.txt')).nlink, 1);
}

test('paths inside the preopen work, including symlinks that stay inside', async () => {
  const w = makeWorld();
  assert.equal(await attempt(w, 'open', 'a.txt'), 'ok:"read:a"');
  assert.equal(await attempt(w, 'open', 'd/secret.txt'), 'ok:"read:inside"');
  assert.equal(await attempt(w, 'open', 'dlink/secret.txt'), 'ok:"read:inside"');
  assert.equal(await attempt(w, 'open', 'chain'), 'ok:"read:inside"');
  assert.equal(await attempt(w, 'open', 'd/../d/./secret.txt'), 'ok:"read:inside"');
  assert.equal(await attempt(w, 'open', 'd/../a.txt'), 'ok:"read:a"');
  assert.equal(await attempt(w, 'open', '.'), 'ok:"dir"');
});

test('.. above the preopen is refused', async () => {
  const w = makeWorld();
  for (const p of ['..', '../outside/secret.txt', 'd/../../outside/secret.txt', 'd/../..', './../box/a.txt']) {
    assert.equal(await attempt(w, 'open', p), 'ok:"err:not-permitted"', p);
  }
  assert.equal(await attempt(w, 'stat', '../outside'), 'err:not-permitted');
  assert.equal(await attempt(w, 'ls', '..'), 'err:not-permitted');
  assert.equal(await attempt(w, 'mkdir', '../evil'), 'err:not-permitted');
  assert.equal(await attempt(w, 'create', '../outside/new.txt'), 'err:not-permitted');
  assert.equal(await attempt(w, 'unlink', '../outside/secret.txt'), 'err:not-permitted');
  assert.equal(await attempt(w, 'rename', 'a.txt', '../moved.txt'), 'err:not-permitted');
  outsideUntouched(w);
});

test('absolute paths are refused', async () => {
  const w = makeWorld();
  for (const p of ['/etc/passwd', join(w.outside, 'secret.txt'), '/', join(w.box, 'a.txt')]) {
    assert.equal(await attempt(w, 'open', p), 'ok:"err:not-permitted"', p);
  }
  assert.equal(await attempt(w, 'create', join(w.outside, 'x')), 'err:not-permitted');
});

test('symlinks leaving the preopen are refused: relative, absolute, chained, hidden behind ..', async () => {
  const w = makeWorld();
  for (const p of ['esc/secret.txt', 'abs/secret.txt', 'absfile', 'chain-esc', 'deep/secret.txt', 'many-dots', 'dlink/../esc/secret.txt']) {
    assert.equal(await attempt(w, 'open', p), 'ok:"err:not-permitted"', p);
  }
  assert.equal(await attempt(w, 'ls', 'esc'), 'err:not-permitted');
  assert.equal(await attempt(w, 'ls', 'abs'), 'err:not-permitted');
  assert.equal(await attempt(w, 'stat', 'absfile'), 'err:not-permitted');
  assert.equal(await attempt(w, 'write', 'absfile'), 'err:not-permitted');
  assert.equal(await attempt(w, 'truncate', 'esc/secret.txt'), 'err:not-permitted');
  assert.equal(await attempt(w, 'create', 'abs/new.txt'), 'err:not-permitted');
  assert.equal(await attempt(w, 'mkdir', 'esc/newdir'), 'err:not-permitted');
  assert.equal(await attempt(w, 'unlink', 'esc/secret.txt'), 'err:not-permitted');
  // without symlink-follow the link itself is opened: O_NOFOLLOW gives `loop`
  assert.equal(await attempt(w, 'open-nofollow', 'absfile'), 'ok:"err:loop"');
  // readlink never shows an absolute (host) target; relative targets are the guest's own
  assert.equal(await attempt(w, 'readlink', 'abs'), 'err:not-permitted');
  assert.equal(await attempt(w, 'readlink', 'esc'), 'ok:"../outside"');
  outsideUntouched(w);
});

test('symlink loops end with `loop`', async () => {
  const w = makeWorld();
  assert.equal(await attempt(w, 'open', 'loop1'), 'ok:"err:loop"');
  assert.equal(await attempt(w, 'open', 'loop1/x'), 'ok:"err:loop"');
  assert.equal(await attempt(w, 'stat', 'loop2'), 'err:loop');
});

test('guests cannot plant escaping symlinks that work, nor absolute ones', async () => {
  const w = makeWorld();
  assert.equal(await attempt(w, 'symlink', join(w.outside, 'secret.txt'), 'planted'), 'err:not-permitted');
  assert.equal(await attempt(w, 'symlink', '../outside/secret.txt', 'planted'), 'ok:undefined');
  assert.equal(await attempt(w, 'open', 'planted'), 'ok:"err:not-permitted"');
  assert.equal(await attempt(w, 'write', 'planted'), 'err:not-permitted');
  outsideUntouched(w);
});

test('hard links: no linking to files outside, links to escaping symlinks stay symlinks', async () => {
  const w = makeWorld();
  assert.equal(await attempt(w, 'link', '../outside/secret.txt', 'h1'), 'err:not-permitted');
  assert.equal(await attempt(w, 'link-follow', 'absfile', 'h2'), 'err:not-permitted');
  assert.equal(await attempt(w, 'link-follow', 'esc/secret.txt', 'h3'), 'err:not-permitted');
  // linking the symlink itself (no follow) makes another symlink, which is still refused when followed
  assert.equal(await attempt(w, 'link', 'absfile', 'h4'), 'ok:undefined');
  assert.ok(lstatSync(join(w.box, 'h4')).isSymbolicLink());
  assert.equal(await attempt(w, 'open', 'h4'), 'ok:"err:not-permitted"');
  assert.equal(await attempt(w, 'link', 'a.txt', 'h5'), 'ok:undefined');
  assert.equal(await attempt(w, 'open', 'h5'), 'ok:"read:a"');
  outsideUntouched(w);
  // A hard link the *host* put in the preopen is the same file: it is inside by the host's choice.
  linkSync(join(w.outside, 'secret.txt'), join(w.box, 'host-made'));
  assert.match(await runWithApi(wasm, ['attempt', 'open', 'host-made'], { preopens: w.preopens }).then((r) => r.stdout), /read:OUTSIDE/);
});

/** Start an attacker process that swaps things under the box until killed. */
function attacker(script: string, args: string[]) {
  const child = spawn(process.execPath, ['-e', script, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  return child;
}

const SWAP_DIR = `
const fs = require('fs');
const [box, outside, mode] = process.argv.slice(1);
const d = box + '/race', real = box + '/race.real';
const target = mode === 'abs' ? outside : '../outside';
for (;;) {
  try { fs.renameSync(d, real); } catch {}
  try { fs.symlinkSync(target, d); } catch {}
  try { fs.unlinkSync(d); } catch {}
  try { fs.renameSync(real, d); } catch {}
}`;

const SWAP_FILE = `
const fs = require('fs');
const [box, outside] = process.argv.slice(1);
const f = box + '/race/secret.txt', real = box + '/race/secret.real';
for (;;) {
  try { fs.renameSync(f, real); } catch {}
  try { fs.symlinkSync(outside + '/secret.txt', f); } catch {}
  try { fs.unlinkSync(f); } catch {}
  try { fs.renameSync(real, f); } catch {}
}`;

async function race(kind: 'dir-rel' | 'dir-abs' | 'file', iterations: number) {
  const w = makeWorld();
  mkdirSync(join(w.box, 'race'));
  writeFileSync(join(w.box, 'race', 'secret.txt'), 'inside');
  const child = kind === 'file'
    ? attacker(SWAP_FILE, [w.box, w.outside])
    : attacker(SWAP_DIR, [w.box, w.outside, kind === 'dir-abs' ? 'abs' : 'rel']);
  await new Promise((r) => setTimeout(r, 50)); // let the attacker get going
  try {
    const r = await runWithApi(wasm, ['race', 'race/secret.txt', String(iterations)], { preopens: w.preopens });
    assert.equal(r.code, 0, r.stderr);
    const counts = JSON.parse(r.stdout) as Record<string, number>;
    assert.equal(Object.keys(counts).filter((k) => k.includes('OUTSIDE')).length, 0, `escaped: ${r.stdout}`);
    for (const k of Object.keys(counts)) assert.match(k, /^(read:inside|err:(not-permitted|no-entry|loop|not-directory))$/, k);
    if (process.env.WEIR_TEST_VERBOSE) console.log(kind, counts);
    return counts;
  } finally {
    child.kill();
    outsideUntouched(w);
  }
}

test('race: a directory swapped for a relative escaping symlink while the guest opens in a loop', async () => {
  const counts = await race('dir-rel', 3000);
  assert.ok((counts['read:inside'] ?? 0) > 0, JSON.stringify(counts));
});

test('race: a directory swapped for an absolute symlink', async () => {
  await race('dir-abs', 3000);
});

test('race: the file itself swapped for a symlink to an outside file', async () => {
  await race('file', 3000);
});

// The hook's second family: `@openclaw/fs-safe/file-lock`, the file lock the
// runtime 2026.9.x takes its cross-process locks through. Checked on the
// published file itself (the devDependencies fs-safe-0-18 and fs-safe-0-21
// are @openclaw/fs-safe 0.18.1 and 0.21.0 from the registry): recognised by
// its marker, hash and package release, refused in any other build or
// release, and, served in a real process, it is kernel-lock/fs-safe: the
// same seven exports, kernel locks, one copy of the lock state.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as stock18 from 'fs-safe-0-18/file-lock';
import { afterAll, describe, expect, it } from 'vitest';
import * as fsSafe from '../../src/openclaw/fs-safe/index.js';
import { IMPLEMENTATIONS } from '../../src/openclaw/implementations.js';
import { describeBuilds, KNOWN_BUILDS, knownRuntimes, MODULE_FAMILIES } from '../../src/openclaw/known-modules.js';
import { familyOf, recognize, sourceHash } from '../../src/openclaw/recognize.js';
import { root, tempDir } from '../helpers.js';

const LIBRARY = 'file:///opt/kernel-lock/dist/openclaw.js';
const MODULE = '@openclaw/fs-safe/file-lock';
const published = (alias: string): string => path.join(root, 'node_modules', alias);
const fileLock = (alias: string): Buffer => readFileSync(path.join(published(alias), 'dist', 'file-lock.js'));
/** The exports of the published `@openclaw/fs-safe/file-lock`. */
const SEVEN = Object.keys(stock18).sort();

const work = tempDir('kernel-lock-openclaw-fs-safe-');
afterAll(() => work.cleanup());

describe('recognising @openclaw/fs-safe/file-lock', () => {
  it.each([
    ['fs-safe-0-18', '@openclaw/fs-safe@0.18.1'],
    ['fs-safe-0-21', '@openclaw/fs-safe@0.21.0'],
  ])(
    'serves the published file-lock.js of %s (%s), under its own export names, importing nothing of the runtime',
    (alias, release) => {
      let asked = 0;
      const decision = recognize(fileLock(alias), {
        libraryUrl: LIBRARY,
        packageOf: () => {
          asked++;
          return release;
        },
      });
      expect(decision.kind).toBe('serve');
      if (decision.kind !== 'serve') return;
      expect(asked).toBe(1);
      expect(decision.build).toMatchObject({ runtime: 'openclaw@2026.9.6', module: MODULE });
      expect(decision.sha256).toBe('1d5d0ddd401675289e5ec54dd5b128bbcb3997c87a6d497c0fffaf1a6b185be9');
      const lines = decision.source.split('\n');
      expect(lines.filter((line) => line.startsWith('import '))).toEqual([
        `import { bindRuntimeModule } from "${LIBRARY}";`,
      ]);
      expect(lines).toContain(`export const { ${SEVEN.map((name) => `${name}: ${name}`).join(', ')} } = served;`);
      // Nothing of fs-safe's own sidecar code is kept.
      expect(decision.source).not.toContain('sidecar-lock');
      expect(decision.source).not.toContain('file-lock-sync');
      // No top-level await: the runtime require()s module graphs that include this file (plugins), and Node
      // refuses a graph with one (ERR_REQUIRE_ASYNC_MODULE).
      expect(decision.source).not.toMatch(/\bawait\b/);
    },
  );

  it('the marker is in file-lock.js alone, of every module of both published packages', () => {
    for (const alias of ['fs-safe-0-18', 'fs-safe-0-21']) {
      const dist = path.join(published(alias), 'dist');
      const marked = readdirSync(dist)
        .filter((name) => name.endsWith('.js'))
        .filter((name) => familyOf(readFileSync(path.join(dist, name)))?.module === MODULE);
      expect(marked, alias).toEqual(['file-lock.js']);
    }
  });

  it('refuses the same file from a release it was not checked against (2026.9.5 ships it in fs-safe 0.13.1), or from no package', () => {
    for (const origin of ['@openclaw/fs-safe@0.13.1', null]) {
      const decision = recognize(fileLock('fs-safe-0-18'), { libraryUrl: LIBRARY, packageOf: () => origin });
      expect(decision).toMatchObject({ kind: 'refuse', module: MODULE });
      if (decision.kind !== 'refuse') continue;
      expect(decision.reason).toBe(
        `it belongs to ${origin ?? 'no package kernel-lock can find'}, not a release kernel-lock was checked against ` +
          '(it knows @openclaw/fs-safe@0.18.1, @openclaw/fs-safe@0.21.0 (openclaw@2026.9.6); ' +
          'this file is the same in releases with another contract)',
      );
    }
    // Without a way to ask, the package is unknown: refused too.
    expect(recognize(fileLock('fs-safe-0-18'), { libraryUrl: LIBRARY }).kind).toBe('refuse');
  });

  it('refuses another build of the file (2026.8.1 … 2026.9.4 ship another one), even one byte away', () => {
    const changed = Buffer.concat([fileLock('fs-safe-0-18'), Buffer.from('\n')]);
    const decision = recognize(changed, { libraryUrl: LIBRARY, packageOf: () => '@openclaw/fs-safe@0.18.1' });
    expect(decision).toMatchObject({ kind: 'refuse', module: MODULE, sha256: sourceHash(changed) });
    if (decision.kind !== 'refuse') return;
    expect(decision.reason).toBe(
      `its build (sha256 ${sourceHash(changed).slice(0, 16)}…) is not one kernel-lock knows ` +
        '(it knows @openclaw/fs-safe@0.18.1, @openclaw/fs-safe@0.21.0 (openclaw@2026.9.6))',
    );
  });

  it('asks for the package only when a marked file matched a build that names packages', () => {
    let asked = 0;
    const packageOf = (): string => {
      asked++;
      return '@openclaw/fs-safe@0.18.1';
    };
    recognize('export const x = 1;\n', { libraryUrl: LIBRARY, packageOf });
    recognize(Buffer.concat([fileLock('fs-safe-0-21'), Buffer.from(' ')]), { libraryUrl: LIBRARY, packageOf });
    expect(asked).toBe(0);
  });
});

describe('the table', () => {
  it('knows openclaw 2026.4.24 (session lock) and 2026.9.6 (fs-safe file lock)', () => {
    expect(knownRuntimes()).toEqual(['openclaw@2026.4.24', 'openclaw@2026.9.6']);
    expect(MODULE_FAMILIES.map((family) => family.module)).toEqual(['src/agents/session-write-lock.ts', MODULE]);
    expect(describeBuilds(KNOWN_BUILDS)).toBe(
      'openclaw@2026.4.24, @openclaw/fs-safe@0.18.1, @openclaw/fs-safe@0.21.0 (openclaw@2026.9.6)',
    );
  });

  it('the fs-safe build is served by kernel-lock/fs-safe itself, export for export', () => {
    const build = KNOWN_BUILDS.find((b) => b.module === MODULE)!;
    expect(Object.keys(build.exports).sort()).toEqual(SEVEN);
    const bound = IMPLEMENTATIONS[build.implementation]!({}) as Record<string, unknown>;
    for (const [name, member] of Object.entries(build.exports)) {
      expect(bound[member], name).toBe((fsSafe as Record<string, unknown>)[name]);
    }
  });
});

/** A directory whose node_modules/@openclaw/fs-safe is the published package, as the runtime installs it. */
function installation(name: string, options: { version?: string } = {}): string {
  const dir = path.join(work.dir, name);
  const scope = path.join(dir, 'node_modules', '@openclaw');
  mkdirSync(scope, { recursive: true });
  symlinkSync(root, path.join(dir, 'node_modules', 'kernel-lock'), 'dir');
  if (options.version === undefined) {
    symlinkSync(published('fs-safe-0-18'), path.join(scope, 'fs-safe'), 'dir');
  } else {
    // The same files under another release number (what 2026.9.5's fs-safe 0.13.1 looks like to the hook).
    cpSync(published('fs-safe-0-18'), path.join(scope, 'fs-safe'), { recursive: true });
    const manifest = path.join(scope, 'fs-safe', 'package.json');
    const json = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
    writeFileSync(manifest, JSON.stringify({ ...json, version: options.version }));
  }
  return dir;
}

/** Runs `script` as an ES module in `dir`, with the hook (NODE_OPTIONS, as users run the runtime). */
function runWithHook(dir: string, script: string, extraEnv: NodeJS.ProcessEnv = {}) {
  writeFileSync(path.join(dir, 'main.mjs'), script);
  const result = spawnSync(process.execPath, ['main.mjs'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, NODE_OPTIONS: '--import=kernel-lock/openclaw/register', ...extraEnv },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('served in a real process (kernel-lock/openclaw/register)', () => {
  it('`@openclaw/fs-safe/file-lock` is kernel-lock/fs-safe: seven exports, kernel locks, errors naming the holder, one lock state', () => {
    const dir = installation('served');
    const target = path.join(dir, 'state', 'openclaw.json');
    const run = runWithHook(
      dir,
      [
        'import { readFileSync } from "node:fs";',
        'import * as runtime from "@openclaw/fs-safe/file-lock";',
        'import * as direct from "kernel-lock/fs-safe";',
        `const target = ${JSON.stringify(target)};`,
        'const held = await runtime.createFileLockManager("kl-shared").acquire(target, { payload: () => ({ who: "runtime" }) });',
        'const record = JSON.parse(readFileSync(held.lockPath, "utf8"));',
        'let error;',
        'try { runtime.acquireFileLockSync(target, { managerKey: "kl-other", retry: { retries: 0 }, payload: () => ({}) }); } catch (e) { error = e; }',
        'const shared = direct.createFileLockManager("kl-shared").heldEntries().map((e) => e.normalizedTargetPath);',
        'await held.release();',
        'const again = await runtime.withFileLock(target, { timeoutMs: 1000, payload: () => ({}) }, async () => "in");',
        'console.log(JSON.stringify({ exports: Object.keys(runtime).sort(), format: record.format, owner: record.owner,',
        '  code: error?.code, message: error?.message, shared, again, same: runtime.withFileLock === direct.withFileLock }));',
      ].join('\n'),
      { KERNEL_LOCK_OPENCLAW_VERBOSE: '1' },
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^kernel-lock\/openclaw: serving @openclaw\/fs-safe\/file-lock of @openclaw\/fs-safe@0\.18\.1 \(openclaw@2026\.9\.6\) from kernel-lock \(.*fs-safe-0-18\/dist\/file-lock\.js\)$/,
      ),
    ]);
    const out = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({
      exports: SEVEN,
      format: 'kernel-lock/1',
      owner: '{"who":"runtime"}',
      code: 'file_lock_timeout',
      shared: [target],
      again: 'in',
      same: true,
    });
    expect(out.message).toMatch(
      /^file lock timeout for .*openclaw\.json: lock busy after 0 ms: .*openclaw\.json\.lock held by this process \(pid \d+, owner "\{\\"who\\":\\"runtime\\"\}"/,
    );
  });

  it('another release of fs-safe is left alone, with one stderr line, and keeps its own (stock) lock', () => {
    const dir = installation('refused', { version: '0.13.1' });
    const target = path.join(dir, 'state', 'openclaw.json');
    const run = runWithHook(
      dir,
      [
        'import { readFileSync } from "node:fs";',
        'import { acquireFileLock } from "@openclaw/fs-safe/file-lock";',
        `const held = await acquireFileLock(${JSON.stringify(target)}, { payload: () => ({ pid: process.pid }) });`,
        'console.log(readFileSync(held.lockPath, "utf8").trim().replace(/\\s+/g, " "));',
        'await held.release();',
      ].join('\n'),
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe(`{ "pid": ${/"pid": (\d+)/.exec(run.stdout)?.[1]} }`);
    const lines = run.stderr.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^kernel-lock\/openclaw: not replacing @openclaw\/fs-safe\/file-lock of @openclaw\/fs-safe@0\.13\.1 \(.*\/node_modules\/@openclaw\/fs-safe\/dist\/file-lock\.js\): it belongs to @openclaw\/fs-safe@0\.13\.1, not a release kernel-lock was checked against .*; the runtime keeps its own lock\./,
    );
  });
});

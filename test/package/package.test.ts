// The published package, as a consumer gets it: `npm pack` (which runs
// prepack: fresh dist/ and the four prebuilt binaries), then an offline install
// of the tarball into a brand-new project, with no compiler on PATH, once with
// npm's default settings and once with --ignore-scripts. Whatever the consumer
// runs (ESM, CJS, the CLI, the type checker under nodenext, node10 and
// bundler resolution) must work from the prebuild alone, and npm's install
// warning names only the install script. Last, a project whose platform has no
// prebuild builds it from the tarball's native/ sources. CPU: `npm pack` is
// tsup plus four zig builds (seconds once zig's cache is warm; the first build
// on a machine compiles zig's C++ runtime for four targets: minutes).
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lineFrom, root, tempDir } from '../helpers.js';
import { COLD_BUILD_MS } from './prebuilt.js';

const work = tempDir('kernel-lock-package-');
const stage = path.join(work.dir, 'stage');
const tools = path.join(work.dir, 'tools');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
const libc = existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
const prebuild = `prebuilds/${process.platform}-${process.arch}/kernel-lock.${libc}.node`;
const prebuilds = ['linux-x64', 'linux-arm64'].flatMap((tuple) =>
  ['glibc', 'musl'].map((flavour) => `prebuilds/${tuple}/kernel-lock.${flavour}.node`),
);
const typescript = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

let tarball = '';
let npmCache = '';

// The environment of `npm test` is full of npm_* variables (npm_config_local_prefix
// among them) that would make a child npm act on this checkout instead.
function withoutNpmVariables(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name) && name !== 'INIT_CWD'),
  );
}

/**
 * A new project depending on the tarball only, with a lockfile pinning its
 * dependencies to the versions (and integrity) this checkout's lockfile has.
 * WHY the lockfile: `npm install` from a lockfile (a clean clone in CI) caches
 * the dependencies' tarballs but not their registry metadata, and without
 * metadata an offline install cannot resolve `node-addon-api@^8.5.0`; with
 * the lockfile it needs only the tarballs, which are in the cache.
 */
function writeConsumer(project: string): void {
  const rootLock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, unknown>;
  };
  const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    license: string;
    engines: unknown;
    os: string[];
    bin: unknown;
    dependencies: Record<string, string>;
  };
  const { dependencies } = manifest;
  const spec = `file:${path.relative(project, tarball)}`;
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', version: '1.0.0', dependencies: { 'kernel-lock': spec } },
    'node_modules/kernel-lock': {
      version: pkg.version,
      resolved: spec,
      hasInstallScript: true,
      license: manifest.license,
      dependencies,
      engines: manifest.engines,
      os: manifest.os,
      bin: manifest.bin,
    },
  };
  for (const name of Object.keys(dependencies)) {
    const locked = rootLock.packages[`node_modules/${name}`];
    if (locked === undefined) throw new Error(`package-lock.json has no node_modules/${name}`);
    packages[`node_modules/${name}`] = locked;
  }
  const consumer = { name: 'consumer', version: '1.0.0', private: true, dependencies: { 'kernel-lock': spec } };
  writeFileSync(path.join(project, 'package.json'), JSON.stringify(consumer, null, 2));
  const lock = { name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages };
  writeFileSync(path.join(project, 'package-lock.json'), JSON.stringify(lock, null, 2));
}

/** A consumer's environment: HOME (npm's cache) and a PATH with no compiler. */
function consumerEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { HOME: process.env.HOME, PATH: tools, TMPDIR: process.env.TMPDIR, LANG: 'C', PREBUILDS_ONLY: '1', ...extra };
}

function run(cmd: string, args: string[], cwd: string, env = consumerEnv()) {
  const result = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 60_000 });
  const output = `$ ${cmd} ${args.join(' ')}\n${result.stdout}${result.stderr}`;
  return { status: result.status, stdout: result.stdout, output };
}

// Build products and scratch space: what a clean clone does not have.
const notInClone = new Set([
  'node_modules',
  '.git',
  'build',
  'build-asan',
  'dist',
  'prebuilds',
  'test-results',
  'coverage',
  '.build',
]);

/** Copies the checkout as a clean clone would have it; files vanishing mid-copy (scratch of running tests) are skipped. */
function copyCheckout(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (notInClone.has(entry.name) || entry.name.endsWith('.tgz')) continue;
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    try {
      if (entry.isDirectory()) copyCheckout(source, target);
      else if (entry.isFile()) copyFileSync(source, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

beforeAll(() => {
  // Pack a copy of the checkout (everything a clean clone has, no build
  // products) so prepack's rebuild of dist/ and prebuilds/ never rewrites
  // files that other test files are loading at this moment.
  copyCheckout(root, stage);
  symlinkSync(path.join(root, 'node_modules'), path.join(stage, 'node_modules'), 'dir');
  const env = withoutNpmVariables();
  execFileSync('npm', ['pack', '--pack-destination', work.dir], { cwd: stage, env, stdio: 'pipe' });
  tarball = path.join(work.dir, `kernel-lock-${pkg.version}.tgz`);
  // The cache `npm install` of this checkout filled: the consumer's
  // dependencies (node-addon-api, node-gyp-build) come from there, offline.
  // Asked with this process's own environment: that is the npm that ran the tests.
  npmCache = execFileSync('npm', ['config', 'get', 'cache'], { cwd: root, encoding: 'utf8' }).trim();

  // A PATH holding node, npm and the shell npm runs scripts with, nothing else:
  // no gcc, g++, cc, c++, make.
  mkdirSync(tools);
  for (const tool of ['node', 'npm', 'npx', 'sh']) {
    const found = execFileSync('/bin/sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
    symlinkSync(found, path.join(tools, tool));
  }
}, COLD_BUILD_MS); // npm pack builds the four prebuilds: minutes on a machine whose zig cache is cold

afterAll(() => work.cleanup());

/** The tarball's file list. */
function tarballFiles(): string[] {
  return execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((entry) => entry.replace(/^package\//, ''))
    .sort();
}

/** The tarball unpacked (once) into a directory: its package root. */
let unpacked = '';
function unpackedTarball(): string {
  if (unpacked) return unpacked;
  const dir = path.join(work.dir, 'unpacked');
  mkdirSync(dir);
  execFileSync('tar', ['-xzf', tarball, '-C', dir]);
  unpacked = path.join(dir, 'package');
  return unpacked;
}

describe('npm pack', () => {
  it('contains exactly dist/, prebuilds/, native/, binding.gyp, the install script and the docs', () => {
    const dryRun = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: stage,
      env: withoutNpmVariables(),
      encoding: 'utf8',
    });
    const files = (JSON.parse(dryRun) as [{ files: { path: string }[] }])[0].files.map((file) => file.path).sort();

    const allowed = [
      /^(package\.json|README\.md|LICENSE|CHANGELOG\.md|binding\.gyp)$/,
      /^scripts\/install\.mjs$/, // the install script: node-gyp-build, offline-ready (docs/INSTALL.md)
      /^docs\/[A-Za-z0-9-]+\.md$/,
      /^native\/[a-z_]+\.(cc|h)$/,
      /^prebuilds\/[a-z0-9]+-[a-z0-9]+\/kernel-lock\.(glibc|musl)\.node$/,
      /^dist\/(index|session|openclaw|fs-safe|pg)\.(js|cjs|d\.ts|d\.cts|cjs\.map)$/,
      /^dist\/openclaw\/(register|hooks)\.js(\.map)?$/, // the --import hook (ESM only)
      /^dist\/cli\.js(\.map)?$/,
      /^dist\/[a-z0-9-]+-[A-Z0-9]+\.(js|cjs)(\.map)?$/, // chunks shared by the entries
      /^dist\/[a-z0-9-]+-[A-Za-z0-9_-]+\.d\.cts$/, // type declarations shared by the entries
    ];
    expect(files.filter((file) => !allowed.some((pattern) => pattern.test(file)))).toEqual([]);

    const nativeSources = readdirSync(path.join(root, 'native')).map((name) => `native/${name}`);
    const required = [
      'package.json',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'binding.gyp',
      ...nativeSources,
      ...readdirSync(path.join(root, 'docs'))
        .filter((name) => name.endsWith('.md'))
        .map((name) => `docs/${name}`),
      ...prebuilds,
      ...['index', 'session', 'openclaw', 'fs-safe', 'pg'].flatMap((entry) =>
        ['js', 'cjs', 'd.ts', 'd.cts'].map((ext) => `dist/${entry}.${ext}`),
      ),
      'dist/openclaw/register.js',
      'dist/openclaw/hooks.js',
      'dist/cli.js',
    ];
    expect(required.filter((file) => !files.includes(file))).toEqual([]);

    // The tarball `npm pack` wrote holds the same list.
    expect(tarballFiles()).toEqual(files);
  });

  it('ships prebuilt binaries that pass the gate: glibc ≤ 2.17 and no libstdc++, musl, arm64 and x64', () => {
    const gate = spawnSync(
      process.execPath,
      [path.join(root, 'scripts', 'check-prebuilds.mjs'), '--complete', unpackedTarball()],
      { encoding: 'utf8' },
    );
    expect(gate.status, gate.stdout + gate.stderr).toBe(0);
    expect(gate.stdout).toContain('4 binaries keep the promise');
  });

  it('ships source maps without embedded sources or paths of the machine that packed it', () => {
    const maps = tarballFiles().filter((file) => file.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(0);
    for (const file of maps) {
      const map = JSON.parse(readFileSync(path.join(unpackedTarball(), file), 'utf8')) as {
        sources: string[];
        sourcesContent?: unknown;
      };
      expect(map.sourcesContent, file).toBeUndefined();
      expect(
        map.sources.filter((source) => path.isAbsolute(source)),
        file,
      ).toEqual([]);
    }
  });

  it('ships every document the CLI and the errors point to', () => {
    const dist = path.join(unpackedTarball(), 'dist');
    const cited = new Set<string>();
    for (const file of readdirSync(dist).filter((name) => /\.(c?js)$/.test(name))) {
      for (const match of readFileSync(path.join(dist, file), 'utf8').matchAll(/\bdocs\/[A-Za-z-]+\.md\b/g)) {
        cited.add(match[0]);
      }
    }
    expect(cited.size).toBeGreaterThan(0);
    expect([...cited].filter((doc) => !existsSync(path.join(unpackedTarball(), doc)))).toEqual([]);
  });

  it('says where it lives: repository, homepage and bugs', () => {
    const manifest = JSON.parse(readFileSync(path.join(unpackedTarball(), 'package.json'), 'utf8')) as {
      repository?: { url?: string };
      homepage?: string;
      bugs?: { url?: string };
      scripts: Record<string, string>;
    };
    expect(manifest.repository?.url).toMatch(/^git\+https:\/\/.+\.git$/);
    expect(manifest.homepage).toMatch(/^https:\/\//);
    expect(manifest.bugs?.url).toMatch(/^https:\/\//);
    // Only `install` runs for a consumer; no prepare/preinstall/postinstall to approve.
    expect(Object.keys(manifest.scripts).filter((name) => /^(pre|post)?(install|prepare)$/.test(name))).toEqual([
      'install',
    ]);
  });

  it('has no compiler on the consumer PATH', () => {
    const probe = spawnSync(
      '/bin/sh',
      ['-c', 'command -v g++ || command -v gcc || command -v cc || command -v c++ || command -v make'],
      {
        env: consumerEnv(),
        encoding: 'utf8',
      },
    );
    expect(probe.stdout).toBe('');
    expect(probe.status).not.toBe(0);
  });
});

const esmScript = `
import { createRequire } from 'node:module';
import { LockHandle, lock, tryLockSync } from 'kernel-lock';
import * as session from 'kernel-lock/session';
import { acquireFileLock } from 'kernel-lock/fs-safe';
import { PgLocks } from 'kernel-lock/pg';

const file = process.argv[2];
const fileLock = await acquireFileLock(file + '.target', { payload: () => ({ pid: process.pid }) });
await fileLock.release();
// pg is an optional peer dependency, not installed here: the entry loads,
// and using it says what to install.
const missing = await new PgLocks('postgresql://nobody@127.0.0.1:1/none').lock('x').catch((e) => e);
if (missing.code !== 'ERR_KERNEL_LOCK_PG_MISSING') throw new Error('kernel-lock/pg without pg: ' + missing.message);
const handle = await lock(file, { owner: 'esm consumer' });
if (!(handle instanceof LockHandle)) throw new Error('lock() did not return a LockHandle');
if (tryLockSync(file) !== null) throw new Error('a second lock was granted while held');
await handle.release();
const again = tryLockSync(file);
if (again === null) throw new Error('not free after release');
again.releaseSync();
// import and require must share one copy of the library and its state,
// and offer the same names.
const required = createRequire(import.meta.url)('kernel-lock');
if (required.LockHandle !== LockHandle) throw new Error('two copies loaded');
const esmNames = Object.keys(await import('kernel-lock')).sort().join();
const cjsNames = Object.keys(required).filter((name) => name !== '__esModule').sort().join();
if (esmNames !== cjsNames) throw new Error('import offers ' + esmNames + ' but require offers ' + cjsNames);
console.log('esm ok', typeof session);
`;

const cjsScript = `
const { LockHandle, lockSync, tryLockSync } = require('kernel-lock');
const session = require('kernel-lock/session');
const { acquireFileLockSync } = require('kernel-lock/fs-safe');

const file = process.argv[2];
acquireFileLockSync(file + '.target', { payload: () => ({ pid: process.pid }) }).release();
const handle = lockSync(file, { owner: 'cjs consumer' });
if (!(handle instanceof LockHandle)) throw new Error('lockSync() did not return a LockHandle');
if (tryLockSync(file) !== null) throw new Error('a second lock was granted while held');
handle.releaseSync();
const again = tryLockSync(file);
if (again === null) throw new Error('not free after release');
again.releaseSync();
console.log('cjs ok', typeof session);
`;

const holderScript = `
import { lock } from 'kernel-lock';
const handle = await lock(process.argv[2], { owner: 'package test' });
console.log('held', process.pid);
process.stdin.resume();
process.stdin.on('end', () => handle.release().then(() => process.exit(0)));
`;

const typedEsm = `
import { type LockHandle, type LockOptions, LockTimeoutError, lock, tryLockSync, withLock } from 'kernel-lock';
import * as session from 'kernel-lock/session';
import { type FileLockHandle, withFileLock } from 'kernel-lock/fs-safe';

const fileLocked: number = await withFileLock('typed.json', { payload: () => ({ pid: 1 }) }, async () => 7);
const fileHandle: FileLockHandle | null = null;
import { type PgLockHandle, PgLocks } from 'kernel-lock/pg';

const pgLock: Promise<PgLockHandle> = new PgLocks('postgresql://db/app', { deadPeerMs: 5000 }).lock('typed', { timeout: 10 });
const options: LockOptions = { mode: 'shared', kind: 'flock', timeout: 100, owner: 'typed' };
const handle: LockHandle = await lock('typed.lock', options);
const path: string = handle.path;
await handle.release();
const maybe: LockHandle | null = tryLockSync('typed.lock');
const result: number = await withLock('typed.lock', async () => 42);
const isTimeout = (error: unknown): boolean => error instanceof LockTimeoutError;
// @ts-expect-error -- the types are real: an unknown mode is rejected
await lock('typed.lock', { mode: 'sideways' });
export { fileHandle, fileLocked, isTimeout, maybe, path, pgLock, result, session };
`;

const typedCjs = `
import kernelLock = require('kernel-lock');
import session = require('kernel-lock/session');

const handle: kernelLock.LockHandle = kernelLock.lockSync('typed.lock', { kind: 'posix' });
handle.releaseSync();
const code: string = kernelLock.ELOCKED;
// @ts-expect-error -- the types are real: an unknown kind is rejected
kernelLock.lockSync('typed.lock', { kind: 'sideways' });
export = { code, session };
`;

/** A strict, checking-the-declarations-too tsconfig.json for a typed consumer. */
function writeTsconfig(dir: string, module: string, moduleResolution: string, files: string[]): void {
  const compilerOptions = {
    module,
    moduleResolution,
    target: 'ES2022',
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    types: ['node'],
    typeRoots: [path.join(root, 'node_modules', '@types')],
  };
  writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files }));
}

const typedPlain = `
import { type LockHandle, type LockOptions, lockSync, withLock } from 'kernel-lock';
import * as session from 'kernel-lock/session';
import * as openclaw from 'kernel-lock/openclaw';
import * as fsSafe from 'kernel-lock/fs-safe';

const options: LockOptions = { kind: 'flock', owner: 'typed' };
const handle: LockHandle = lockSync('typed.lock', options);
handle.releaseSync();
export const result: Promise<number> = withLock('typed.lock', async () => 42);
// @ts-expect-error -- the types are real: an unknown mode is rejected
lockSync('typed.lock', { mode: 'sideways' });
export { fsSafe, openclaw, session };
`;

describe.each([
  // The installed files are the same either way (only whether the install
  // script ran differs), so the CLI and the types are checked once.
  { name: 'default npm settings', installFlags: [] as string[], everything: true },
  { name: '--ignore-scripts', installFlags: ['--ignore-scripts'], everything: false },
])('a fresh consumer project installing the tarball offline with $name', ({ installFlags, everything }) => {
  let project = '';
  let installOutput = '';

  beforeAll(() => {
    project = path.join(work.dir, `consumer-${installFlags.length}`);
    mkdirSync(project);
    writeConsumer(project);
    const install = run('npm', ['install', '--offline', '--cache', npmCache, ...installFlags], project);
    expect(install.status, install.output).toBe(0);
    installOutput = install.output;
    writeFileSync(path.join(project, 'esm.mjs'), esmScript);
    writeFileSync(path.join(project, 'cjs.cjs'), cjsScript);
    writeFileSync(path.join(project, 'holder.mjs'), holderScript);
  }, 120_000);

  it('installed the prebuilt binary and compiled nothing', () => {
    expect(existsSync(path.join(project, 'node_modules', 'kernel-lock', prebuild))).toBe(true);
    expect(existsSync(path.join(project, 'node_modules', 'kernel-lock', 'build'))).toBe(false);
  });

  it('works from import (ESM) and from require (CJS)', () => {
    const esm = run('node', ['esm.mjs', 'esm.lock'], project);
    expect(esm.stdout, esm.output).toBe('esm ok object\n');
    const cjs = run('node', ['cjs.cjs', 'cjs.lock'], project);
    expect(cjs.stdout, cjs.output).toBe('cjs ok object\n');
  });

  if (!everything) return;

  it("names only the install script in npm's install-scripts warning (no prepare)", () => {
    // npm 11 lists a dependency's unreviewed install scripts; older npm says nothing.
    const listed = installOutput.split('\n').filter((line) => line.includes('kernel-lock@'));
    for (const line of listed) expect(line).toMatch(/kernel-lock@[\d.]+ \(install: node scripts\/install\.mjs\)$/);
    expect(installOutput).not.toMatch(/prepare|build:ts|tsup/);
  });

  it('runs the CLI through npx: --version and status', async () => {
    const version = run('npx', ['--offline', 'kernel-lock', '--version'], project);
    expect(version.status, version.output).toBe(0);
    expect(version.stdout.trim(), version.output).toMatch(
      new RegExp(`^(kernel-lock )?v?${pkg.version.replaceAll('.', '\\.')}$`),
    );

    const lockFile = path.join(project, 'status.lock');
    const holder: ChildProcess = spawn('node', ['holder.mjs', lockFile], { cwd: project, env: consumerEnv() });
    try {
      const pid = (await lineFrom(holder, 'held ')).split(' ')[1]!;
      const held = run('npx', ['--offline', 'kernel-lock', 'status', lockFile], project);
      expect(held.status, held.output).toBe(1);
      expect(held.stdout, held.output).toContain(pid);
    } finally {
      holder.stdin?.end();
      await new Promise((resolve) => holder.once('exit', resolve));
    }
    const free = run('npx', ['--offline', 'kernel-lock', 'status', lockFile], project);
    expect(free.status, free.output).toBe(0);
  });

  it('type-checks a typed consumer: ESM (nodenext) and CommonJS (.cts)', () => {
    writeFileSync(path.join(project, 'typed.mts'), typedEsm);
    writeFileSync(path.join(project, 'typed.cts'), typedCjs);
    writeTsconfig(project, 'nodenext', 'nodenext', ['typed.mts', 'typed.cts']);
    const tsc = run('node', [typescript, '--noEmit', '-p', 'tsconfig.json'], project);
    expect(tsc.status, tsc.output).toBe(0);
  });

  it.each([
    // node10: what older setups (module: commonjs without moduleResolution) use; it
    // ignores "exports", so kernel-lock/session resolves through "typesVersions".
    { resolution: 'node10', module: 'commonjs', expected: 'cts' },
    // node16 reads "exports"; the consumer's package.json has no "type", so its
    // .ts is CommonJS and takes the "require" condition (nodenext above checks
    // an .mts too).
    { resolution: 'node16', module: 'node16', expected: 'cts' },
    { resolution: 'bundler', module: 'esnext', expected: 'ts' },
  ])('type-checks a consumer under moduleResolution $resolution', ({ resolution, module, expected }) => {
    const dir = path.join(project, `types-${resolution}`);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'typed.ts'), typedPlain);
    writeTsconfig(dir, module, resolution, ['typed.ts']);
    const tsc = run('node', [typescript, '--noEmit', '-p', 'tsconfig.json', '--traceResolution'], dir);
    expect(tsc.status, tsc.output).toBe(0);
    const resolved = [...tsc.stdout.matchAll(/'(kernel-lock(?:\/[a-z-]+)?)' was successfully resolved to '([^']+)'/g)];
    const files = Object.fromEntries(resolved.map((match) => [match[1], path.relative(project, match[2]!)]));
    expect(files).toEqual({
      'kernel-lock': `node_modules/kernel-lock/dist/index.d.${expected}`,
      'kernel-lock/session': `node_modules/kernel-lock/dist/session.d.${expected}`,
      'kernel-lock/openclaw': `node_modules/kernel-lock/dist/openclaw.d.${expected}`,
      'kernel-lock/fs-safe': `node_modules/kernel-lock/dist/fs-safe.d.${expected}`,
    });
  });
});

describe('a platform without a prebuilt binary', () => {
  // No nodedir (nor a user .npmrc that could set one) and an empty node-gyp
  // header cache (devdir), as on a new machine: node-gyp would download
  // Node's headers from nodejs.org, which an offline machine cannot reach.
  // The install script (scripts/install.mjs) finds the running Node's own
  // headers instead.
  it("builds from the shipped native/ sources offline, finding Node's headers itself", () => {
    const project = path.join(work.dir, 'consumer-from-source');
    mkdirSync(project);
    writeConsumer(project);
    const devdir = path.join(work.dir, 'node-gyp-devdir');
    mkdirSync(devdir);
    const userconfig = path.join(work.dir, 'empty-npmrc');
    writeFileSync(userconfig, '');
    const env = { ...withoutNpmVariables(), npm_config_devdir: devdir, npm_config_userconfig: userconfig };
    const install = run('npm', ['install', '--offline', '--cache', npmCache, '--ignore-scripts'], project, env);
    expect(install.status, install.output).toBe(0);
    // What an unsupported platform looks like to node-gyp-build: no prebuild fits.
    rmSync(path.join(project, 'node_modules', 'kernel-lock', 'prebuilds'), { recursive: true });

    const rebuild = run('npm', ['rebuild', 'kernel-lock', '--offline', '--foreground-scripts'], project, env);
    expect(rebuild.status, rebuild.output).toBe(0);
    expect(existsSync(path.join(project, 'node_modules', 'kernel-lock', 'build', 'Release', 'kernel_lock.node'))).toBe(
      true,
    );
    expect(readdirSync(devdir), 'node-gyp downloaded headers').toEqual([]);
    writeFileSync(path.join(project, 'cjs.cjs'), cjsScript);
    const cjs = run('node', ['cjs.cjs', 'cjs.lock'], project, env);
    expect(cjs.stdout, cjs.output).toBe('cjs ok object\n');
  }, 120_000);
});

// A package shaped like the runtime's (name, version, ESM dist/ chunks with
// its session lock module and error class), for tests of the `--import`
// hook: test/openclaw/hook.test.ts and test/pg/session-hook.test.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { KnownBuild } from '../../src/openclaw/known-modules.js';
import { recognize, sourceHash } from '../../src/openclaw/recognize.js';
import { root } from '../helpers.js';

/** Writes a package shaped like the runtime's (name, version, ESM dist/ chunks) into `<parent>/<name>`; returns its directory. */
export function fakeRuntime(parent: string, name: string): string {
  const dir = path.join(parent, name);
  mkdirSync(path.join(dir, 'dist'), { recursive: true });
  writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'openclaw', version: '0.0.0-test', type: 'module' }),
  );
  writeFileSync(
    path.join(dir, 'dist', 'errors-AAAA.js'),
    [
      '//#region src/agents/session-write-lock-error.ts',
      'var SessionWriteLockTimeoutError = class extends Error {',
      '\tconstructor(params) {',
      '\t\tsuper("session file locked (timeout " + params.timeoutMs + "ms): " + params.owner + " " + params.lockPath);',
      '\t\tthis.code = "OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT";',
      '\t\tthis.name = "SessionWriteLockTimeoutError";',
      '\t}',
      '};',
      '//#endregion',
      'export { SessionWriteLockTimeoutError as t };',
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'dist', 'lock-BBBB.js'), lockChunk());
  return dir;
}

/** The session lock chunk of the fake runtime, as shipped (the hook recognises it by its hash). */
export function lockChunk(): string {
  return [
    'import { t as SessionWriteLockTimeoutError } from "./errors-AAAA.js";',
    '//#region src/agents/session-write-lock.ts',
    'async function acquireSessionWriteLock() { return "stock lock"; }',
    'const __testing = {};',
    '//#endregion',
    'export { acquireSessionWriteLock as n, __testing as t };',
    '',
  ].join('\n');
}

/**
 * The fake runtime's session lock chunk as the hook serves it when the
 * chunk's hash is a known build's: kernel-lock/session (the built dist/)
 * under the chunk's minified export names, with the runtime's error class.
 */
export function servedLockChunk(): string {
  const original = lockChunk();
  const build: KnownBuild = {
    runtime: 'openclaw@0.0.0-test',
    module: 'src/agents/session-write-lock.ts',
    sha256: sourceHash(original),
    implementation: 'session-write-lock@2026.4.24',
    exports: { n: 'acquireSessionWriteLock', t: '__testing' },
    runtimeImports: ['SessionWriteLockTimeoutError'],
  };
  const libraryUrl = pathToFileURL(path.join(root, 'dist', 'openclaw.js')).href;
  const decision = recognize(original, { libraryUrl, builds: [build] });
  if (decision.kind !== 'serve')
    throw new Error(`the hook would not serve the fake runtime's lock chunk: ${decision.kind}`);
  return decision.source;
}

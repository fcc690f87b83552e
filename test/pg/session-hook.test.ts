// The `--import` hook on the PostgreSQL engine: with KERNEL_LOCK_SESSION_PG_URL
// set, the runtime's session lock module as the hook serves it (a fake
// runtime package, as in test/openclaw/hook.test.ts) holds sessions as
// advisory locks on that server, with no lock file, and its timeouts are the
// runtime's own error class naming the holder's host. Without the variable
// the same module locks files, and the server sees nothing.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect } from 'vitest';
import { root, tempDir } from '../helpers.js';
import { fakeRuntime, servedLockChunk } from '../openclaw/fake-runtime.js';
import { pgIt as it, pgEnv } from './helpers.js';

const env = pgEnv();
const work = tempDir('klpgsess-hook-');
afterAll(() => work.cleanup());

/** The fake runtime with its session lock module replaced by the one the hook serves; main.js reports what it saw. */
function servedRuntime(): { dir: string; sessionFile: string } {
  const dir = fakeRuntime(work.dir, 'served');
  writeFileSync(path.join(dir, 'dist', 'lock-BBBB.js'), servedLockChunk());
  const sessionFile = path.join(dir, 'sessions', `hook-${process.pid}.jsonl`);
  const pgUrl = pathToFileURL(path.join(root, 'dist', 'pg.js')).href;
  writeFileSync(
    path.join(dir, 'main.js'),
    [
      'import { n as acquire } from "./dist/lock-BBBB.js";',
      'import { t as RuntimeError } from "./dist/errors-AAAA.js";',
      'import { existsSync } from "node:fs";',
      `import { PgLocks } from ${JSON.stringify(pgUrl)};`,
      `const sessionFile = ${JSON.stringify(sessionFile)};`,
      `const lockName = ${JSON.stringify(`session/${path.basename(sessionFile)}`)};`,
      'const observer = new PgLocks(process.env.OBSERVER_URL);',
      'const lock = await acquire({ sessionFile });',
      'const seen = await observer.inspect(lockName);',
      'let error;',
      'try { await acquire({ sessionFile, timeoutMs: 200 }); } catch (e) { error = e; }',
      'const lockFile = existsSync(sessionFile + ".lock");',
      'await lock.release();',
      'const after = await observer.inspect(lockName);',
      'await observer.close();',
      'console.log(JSON.stringify({ lockName: lock.lockName, token: String(lock.fencingToken), lockFile,',
      '  serverState: seen.state, serverPid: seen.holders[0]?.record?.pid ?? null, after: after.state,',
      '  runtimeClass: error instanceof RuntimeError, code: error?.code, message: error?.message, host: error?.holder?.host }));',
      'process.exit(0);',
    ].join('\n'),
  );
  return { dir, sessionFile };
}

function run(dir: string, extraEnv: Record<string, string>): Record<string, unknown> {
  const result = spawnSync(process.execPath, ['main.js'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, OBSERVER_URL: env.url, KERNEL_LOCK_SESSION_PG_URL: '', ...extraEnv },
  });
  expect(result.stderr).toBe('');
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

describe('the --import hook with KERNEL_LOCK_SESSION_PG_URL', () => {
  it('serves the session lock on PostgreSQL: an advisory lock on that server, no lock file, the runtime error naming the host', () => {
    const { dir, sessionFile } = servedRuntime();
    const out = run(dir, { KERNEL_LOCK_SESSION_PG_URL: env.url });
    expect(out).toMatchObject({
      lockName: `session/${path.basename(sessionFile)}`,
      lockFile: false,
      serverState: 'held',
      after: 'free',
      runtimeClass: true,
      code: 'OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT',
    });
    expect(out.serverPid).toBeGreaterThan(0);
    expect(out.message).toMatch(
      new RegExp(
        `^session file locked \\(timeout 200ms\\): pid=${out.serverPid} .*hook-\\d+\\.jsonl\\.lock held by pid ${out.serverPid} on host \\S+ through the pg engine`,
      ),
    );

    // Without the variable: files, and nothing on the server.
    const files = run(dir, {});
    expect(files).toMatchObject({ lockFile: true, serverState: 'free', runtimeClass: true });
    expect(files.lockName).toBe(`${sessionFile}.lock`);
  });
});

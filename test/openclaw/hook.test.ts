// The `--import` hook in real Node processes (this Node: module.register(),
// the off-thread path of Nodes before 22.15; the e2e suite runs the real
// runtime on Node 24 through module.registerHooks()). A fake runtime
// package stands in for the runtime's dist/: the hook must leave a module it
// does not know exactly as it was and say so once, a served module must work
// as the runtime's (its own error class included), and child processes
// started elsewhere must keep the hook.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { root, tempDir } from '../helpers.js';
import { fakeRuntime as makeFakeRuntime, servedLockChunk } from './fake-runtime.js';

const work = tempDir('kernel-lock-openclaw-hook-');
afterAll(() => work.cleanup());
const register = path.join(root, 'dist', 'openclaw', 'register.js');
const fakeRuntime = (name: string): string => makeFakeRuntime(work.dir, name);

function node(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 30_000, ...options });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('kernel-lock/openclaw/register', () => {
  it('leaves an unknown build untouched and says so in one stderr line, once, naming module, runtime and file', () => {
    const dir = fakeRuntime('unknown');
    writeFileSync(
      path.join(dir, 'main.js'),
      [
        'import { n as acquire } from "./dist/lock-BBBB.js";',
        'const again = await import("./dist/lock-BBBB.js?second");', // a second instance: still one line
        'console.log(await acquire(), await again.n());',
      ].join('\n'),
    );
    const run = node(['--import', register, 'main.js'], { cwd: dir });
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toBe('stock lock stock lock');
    const lines = run.stderr.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^kernel-lock\/openclaw: not replacing src\/agents\/session-write-lock\.ts of openclaw@0\.0\.0-test \(.*\/dist\/lock-BBBB\.js\): its build \(sha256 [0-9a-f]{16}…\) is not one kernel-lock knows \(it knows openclaw@2026\.4\.24\); the runtime keeps its own lock\./,
    );
    // Without the hook: the same output, and nothing on stderr.
    const stock = node(['main.js'], { cwd: dir });
    expect(stock).toMatchObject({ status: 0, stdout: run.stdout, stderr: '' });
  });

  it('leaves every other module alone, silently', () => {
    const dir = fakeRuntime('other');
    writeFileSync(path.join(dir, 'main.js'), 'import { t } from "./dist/errors-AAAA.js"; console.log(typeof t);');
    const run = node(['--import', register, 'main.js'], { cwd: dir });
    expect(run).toMatchObject({ status: 0, stdout: 'function\n', stderr: '' });
  });

  it('NODE_OPTIONS: a child started in another directory keeps the hook (pinned by URL)', () => {
    const child =
      'require("child_process").execFileSync(process.execPath, ["-e", "console.log(process.env.NODE_OPTIONS)"], { cwd: "/", stdio: "inherit" })';
    const run = node(['-e', child], {
      cwd: root,
      env: { ...process.env, NODE_OPTIONS: '--import=kernel-lock/openclaw/register' },
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toBe(`--import=${pathToFileURL(register).href}`);
  });
});

describe('a served module', () => {
  it('works as the runtime module: exports by minified name, timeouts thrown as the runtime error class', () => {
    const dir = fakeRuntime('served');
    // The hook serves the fake runtime's session lock module (as if its hash were a known build's).
    writeFileSync(path.join(dir, 'dist', 'lock-BBBB.js'), servedLockChunk());
    const sessionFile = path.join(dir, 'sessions', 's.jsonl');
    writeFileSync(
      path.join(dir, 'main.js'),
      [
        'import { n as acquire, t as testing } from "./dist/lock-BBBB.js";',
        'import { t as RuntimeError } from "./dist/errors-AAAA.js";',
        'import { readFileSync } from "node:fs";',
        `const lock = await acquire({ sessionFile: ${JSON.stringify(sessionFile)} });`,
        `const record = JSON.parse(readFileSync(${JSON.stringify(`${sessionFile}.lock`)}, "utf8"));`,
        'let error;',
        `try { await acquire({ sessionFile: ${JSON.stringify(sessionFile)}, timeoutMs: 200 }); } catch (e) { error = e; }`,
        'await lock.release();',
        'console.log(JSON.stringify({ format: record.format, runtimeClass: error instanceof RuntimeError, name: error.name,',
        '  code: error.code, pid: error.pid, message: error.message, cleanupSignals: testing.cleanupSignals }));',
      ].join('\n'),
    );
    const run = node(['main.js'], { cwd: dir });
    expect(run.stderr).toBe('');
    const out = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({
      format: 'kernel-lock/1',
      runtimeClass: true,
      name: 'SessionWriteLockTimeoutError',
      code: 'OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT',
      cleanupSignals: [],
    });
    expect(out.message).toMatch(
      /^session file locked \(timeout 200ms\): pid=\d+ .*s\.jsonl\.lock held by pid \d+ \(alive, "node \S*main\.js", held \d+m?s\)$/,
    );
    expect(out.pid).toBeGreaterThan(0);
  });
});

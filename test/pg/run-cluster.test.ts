// `npm test`'s own PostgreSQL cluster (test/global-setup.ts) never outlives
// the run, even when vitest dies without its teardown (SIGKILL, a CI
// timeout): a nested vitest run starts its cluster, is SIGKILLed, and the
// server must be gone and its directory deleted soon after.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { root, sleep } from '../helpers.js';
import { pgIt } from './helpers.js';

const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');

/** The first match of `pattern` in the child's stderr. */
function fromStderr(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern} within ${timeoutMs} ms; stderr: ${text}`)),
      timeoutMs,
    );
    child.stderr?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = pattern.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

pgIt(
  'the run cluster is stopped when vitest is SIGKILLed',
  async () => {
    // The nested run makes its own cluster: none named in its environment, no
    // CI reporter (it would write this run's test-results/), no vitest worker state.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !/^(KERNEL_LOCK_PG_|VITEST|CI$)/.test(name)),
    );
    const nested = spawn(process.execPath, [vitest, 'run', 'test/pg/contract.test.ts'], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let postmaster = 0;
    let dir = '';
    try {
      dir = (await fromStderr(nested, /PostgreSQL test cluster in (\S+klpg-run-\d+) /, 60_000))[1]!;
      postmaster = Number(readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      expect(alive(postmaster)).toBe(true);
    } finally {
      nested.kill('SIGKILL');
    }
    const deadline = Date.now() + 30_000;
    while ((alive(postmaster) || existsSync(dir)) && Date.now() < deadline) await sleep(100);
    expect({ serverAlive: alive(postmaster), dirLeft: existsSync(dir) }).toEqual({
      serverAlive: false,
      dirLeft: false,
    });
  },
  90_000,
);

// The CLI next to other people's files and other lockers (issue 10):
// `kernel-lock run script -- script` works as flock(1) users expect, and
// `sweep` says which lockers it is safe with and never removes data.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lineFrom, root, tempDir } from '../helpers.js';

const CLI = path.join(root, 'dist', 'cli.js');

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      const code =
        error === null
          ? 0
          : typeof (error as { code?: unknown }).code === 'number'
            ? (error as { code: number }).code
            : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-cli-foreign-'));
});
afterEach(() => cleanup());

describe('kernel-lock run <script> -- <script>', () => {
  it('runs the script it locks, leaves it byte-identical, and holds the lock meanwhile', async () => {
    const script = path.join(dir, 'deploy.sh');
    const text = '#!/bin/sh\necho "deploying $1"\nsleep 1\necho deployed\n';
    writeFileSync(script, text);
    chmodSync(script, 0o755);
    const runner = spawn(process.execPath, [CLI, 'run', '--owner', 'ci', script, '--', script, 'prod'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    runner.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => runner.once('exit', resolve));
    await lineFrom(runner, 'deploying prod');
    // Held, as `flock deploy.sh ./deploy.sh` would hold it.
    expect(spawnSync('flock', ['-n', script, 'true']).status).toBe(1);
    expect(await exited).toBe(0); // no ETXTBSY: kernel-lock holds no writable descriptor on it
    expect(stderr).toBe('');
    expect(readFileSync(script, 'utf8')).toBe(text);
    expect(spawnSync('flock', ['-n', script, 'true']).status).toBe(0);
  });

  it('interoperates with flock(1) on the script: one waits for the other', async () => {
    const script = path.join(dir, 'job.sh');
    writeFileSync(script, '#!/bin/sh\nsleep 0.5\n');
    chmodSync(script, 0o755);
    const started = performance.now();
    const [ours, theirs] = await Promise.all([
      cli(['run', script, '--', script]),
      new Promise<number | null>((resolve) => {
        setTimeout(() => spawn('flock', [script, script]).once('exit', resolve), 100);
      }),
    ]);
    expect(ours.code).toBe(0);
    expect(theirs).toBe(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(950); // one after the other
    expect(readFileSync(script, 'utf8')).toBe('#!/bin/sh\nsleep 0.5\n');
  });
});

describe('kernel-lock sweep', () => {
  it('says in its help and its output which lockers it is safe with, and keeps data files', async () => {
    const help = await cli(['sweep', '--help']);
    expect(help.stdout).toMatch(/Safe only where every locker of these files re-checks the file after\s+locking/);
    for (const peer of ['flock(1)', 'fcntl.flock/lockf', 'lockf(3)', 'SQLite']) expect(help.stdout).toContain(peer);
    writeFileSync(
      path.join(dir, 'orphan.lock'),
      JSON.stringify({ pid: 4_194_304 + 5, createdAt: '2026-01-01T00:00:00Z' }),
    );
    writeFileSync(path.join(dir, 'data.lock'), 'not a lock record\n');
    const human = await cli(['sweep', dir]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`kept  ${path.join(dir, 'data.lock')}: holds data that is not a lock record`);
    expect(human.stdout).toMatch(/note: sweep is safe only next to lockers that re-check the file after locking/);
    expect(readFileSync(path.join(dir, 'data.lock'), 'utf8')).toBe('not a lock record\n');
  });
});

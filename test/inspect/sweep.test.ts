// sweep(): removes only lock files nobody holds, unlinking while holding,
// so it is safe while other processes acquire and release.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lock, sweep, sweepFile } from '../../src/index.js';
import { fixture, type Holder, holdInChild, lineFrom, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
const holders: Holder[] = [];
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-sweep-'));
});
afterEach(async () => {
  for (const h of holders.splice(0)) await h.kill('SIGKILL');
  cleanup();
});

function orphan(name: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify({ pid: 4_194_304 + 11, createdAt: '2026-01-01T00:00:00.000Z' }));
  return file;
}

describe('sweep', () => {
  it('removes orphans and keeps locks held with any kind, non-regular files and other suffixes', async () => {
    const orphans = [orphan('a.jsonl.lock'), orphan('b.lock')];
    for (const kind of ['flock', 'ofd', 'posix']) {
      holders.push(await holdInChild(path.join(dir, `${kind}.lock`), { kind, removeOnRelease: false }));
    }
    holders.push(await holdInChild(path.join(dir, 'shared.lock'), { kind: 'ofd', mode: 'shared' }));
    symlinkSync('/etc/passwd', path.join(dir, 'link.lock'));
    mkdirSync(path.join(dir, 'dir.lock'));
    const other = orphan('note.txt');

    const dry = await sweep(dir, { dryRun: true });
    expect(dry.removed.sort()).toEqual(orphans.sort());
    for (const file of orphans) expect(existsSync(file)).toBe(true);

    const result = await sweep(dir);
    expect(result.removed.sort()).toEqual(orphans.sort());
    for (const file of orphans) expect(existsSync(file)).toBe(false);
    expect(existsSync(other)).toBe(true);
    const kept = Object.fromEntries(result.kept.map((k) => [path.basename(k.path), k.reason]));
    expect(kept).toEqual({
      'flock.lock': 'held',
      'ofd.lock': 'held',
      'posix.lock': 'held',
      'shared.lock': 'held',
      'link.lock': 'not-a-regular-file',
      'dir.lock': 'not-a-regular-file',
    });
    // Kept means untouched: the holders' records are intact.
    expect(readFileSync(path.join(dir, 'flock.lock'), 'utf8')).toContain('"kind":"flock"');
  });

  it('keeps locks of this process without dropping them (posix locks die with any close)', async () => {
    const file = path.join(dir, 'own.lock');
    const own = await lock(file, { kind: 'posix', removeOnRelease: false });
    expect(sweepFile(file)).toMatchObject({ action: 'kept', reason: 'held-by-self' });
    const error = await holdInChild(file, { kind: 'posix', timeout: 0 }).catch((e: unknown) => e);
    if (typeof error === 'object' && error !== null && 'kill' in error) holders.push(error as Holder);
    expect(String(error)).toMatch(/exited/);
    await own.release();
    expect(sweepFile(file)).toMatchObject({ action: 'removed' });
  });

  it('reports a missing file without creating it', () => {
    const file = path.join(dir, 'gone.lock');
    expect(sweepFile(file)).toEqual({ path: file, action: 'missing' });
    expect(existsSync(file)).toBe(false);
  });

  it('200 sweeps during 4 processes acquiring and releasing: no overlap, no held file removed, orphans gone', async () => {
    const flockFile = path.join(dir, 'f.lock');
    const fcntlFile = path.join(dir, 'p.lock');
    const orphans = Array.from({ length: 20 }, (_, i) => orphan(`orphan-${i}.jsonl.lock`));
    const workers: { child: ChildProcess; done: Promise<string> }[] = [];
    // Two workers per file; the posix and OFD kinds exclude each other, as two
    // flock workers do. Half keep their file on release, so the sweeper finds
    // unheld files, often with a waiter queued on them.
    const plan = [
      [flockFile, 'flock', '1', 'f'],
      [flockFile, 'flock', '0', 'f'],
      [fcntlFile, 'posix', '1', 'p'],
      [fcntlFile, 'ofd', '0', 'p'],
    ] as const;
    const ready: Promise<string>[] = [];
    plan.forEach(([file, kind, removeOnRelease, group], id) => {
      const log = path.join(dir, `${group}.log`);
      const child = spawn(
        process.execPath,
        [fixture('inspect-sweep-worker.mjs'), file, kind, removeOnRelease, log, String(id)],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      ready.push(lineFrom(child, 'ready'));
      workers.push({ child, done: lineFrom(child, 'done ', 30_000) });
    });
    await Promise.all(ready);
    let sweeps = 0;
    let removedOrphans = 0;
    let removedWorkerFiles = 0;
    while (sweeps < 200) {
      const result = await sweep(dir);
      removedOrphans += result.removed.filter((f) => f.includes('orphan-')).length;
      removedWorkerFiles += result.removed.filter((f) => f === flockFile || f === fcntlFile).length;
      sweeps++;
      await new Promise((resolve) => setTimeout(resolve, sweeps % 4 === 0 ? 2 : 0));
    }
    for (const w of workers) w.child.stdin?.end();
    const reports = (await Promise.all(workers.map((w) => w.done))).map((line) => JSON.parse(line.slice(5)));
    for (const report of reports) {
      expect(report.errors).toEqual([]);
      expect(report.violations).toBe(0); // verify() inside every turn: the held file was never removed
      expect(report.turns).toBeGreaterThan(5);
    }
    for (const group of ['f', 'p']) {
      // begin/end strictly alternate: no two turns ever overlapped.
      const lines = readFileSync(path.join(dir, `${group}.log`), 'utf8')
        .trim()
        .split('\n');
      let open: string | null = null;
      for (const line of lines) {
        const [what, id] = line.split(' ');
        if (what === 'begin') {
          expect(open).toBeNull();
          open = id!;
        } else {
          expect(open).toBe(id);
          open = null;
        }
      }
    }
    expect(removedOrphans).toBe(orphans.length);
    for (const file of orphans) expect(existsSync(file)).toBe(false);
    expect(sweeps).toBe(200);
    // The race was exercised: files the workers left unheld were swept under them.
    expect(removedWorkerFiles).toBeGreaterThan(0);
  });
});

describe('sweep and other people’s data', () => {
  it('never removes a file whose content is not a lock record, however unheld', async () => {
    const data = path.join(dir, 'database.lock');
    writeFileSync(data, 'SQLite format 3\u0000');
    const script = path.join(dir, 'deploy.lock');
    writeFileSync(script, '#!/bin/sh\necho deployed\n');
    const marker = orphan('legacy.lock');
    const dry = await sweep(dir, { dryRun: true });
    expect(dry.removed).toEqual([marker]);
    const result = await sweep(dir);
    expect(result.removed).toEqual([marker]);
    const kept = Object.fromEntries(result.kept.map((k) => [path.basename(k.path), k.reason]));
    expect(kept).toEqual({ 'database.lock': 'foreign-content', 'deploy.lock': 'foreign-content' });
    expect(readFileSync(data, 'utf8')).toBe('SQLite format 3\u0000');
    expect(readFileSync(script, 'utf8')).toBe('#!/bin/sh\necho deployed\n');
    expect(sweepFile(script)).toMatchObject({ action: 'kept', reason: 'foreign-content' });
  });
});

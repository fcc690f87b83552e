// The session backend's choice (docs/MIGRATION.md): unlike the library
// default, it removes the lock file on release. Its only peers are
// kernel-lock, which re-checks the inode after locking, and legacy O_EXCL
// writers during a rolling upgrade, which never lock the file and proceed
// only once the marker is gone.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseRecord } from '../../src/index.js';
import { acquireSessionWriteLock } from '../../src/session/index.js';
import { legacyCreate, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-session-rm-'));
});
afterEach(() => cleanup());

describe('session lock file lifetime', () => {
  it('a legacy writer sees our marker while we hold, and can create its own at once after release', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const lockPath = `${sessionFile}.lock`;
    const lock = await acquireSessionWriteLock({ sessionFile, timeoutMs: 1000 });
    expect(legacyCreate(lockPath)).toBe('exists');
    // What legacy reads: a live pid with its start time, so it waits.
    expect(parseRecord(readFileSync(lockPath))).toMatchObject({ pid: process.pid });
    await lock.release();
    expect(existsSync(lockPath)).toBe(false);
    expect(legacyCreate(lockPath)).toBe('created');
  });

  it('a lock file holding foreign data is locked but never rewritten or removed', async () => {
    const sessionFile = path.join(dir, 'odd.jsonl');
    const lockPath = `${sessionFile}.lock`;
    writeFileSync(lockPath, 'operator notes: do not delete\n');
    const lock = await acquireSessionWriteLock({ sessionFile, timeoutMs: 1000 });
    await lock.release();
    expect(readFileSync(lockPath, 'utf8')).toBe('operator notes: do not delete\n');
  });
});

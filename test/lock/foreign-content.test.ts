// kernel-lock never rewrites, truncates or deletes a file that holds someone
// else's data (issue 10, point 2). It writes its owner record only into a
// file that is empty (it created it) or whose whole content is a record or
// a legacy marker; anything else is locked as it is, the handle says why no
// record was written (recordSkipped: 'foreign-content'), and the file is
// never unlinked, whatever removeOnRelease says.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type LockKind, lock, lockSync, parseRecord, tryLockSync } from '../../src/index.js';
import { holdInChild, releaseInChild, sleep, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-foreign-'));
});
afterEach(() => cleanup());

const SCRIPT = '#!/bin/sh\n# deploy\necho deployed\n';
const KINDS: LockKind[] = ['flock', 'ofd', 'posix'];
const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('a file with content of its own', () => {
  it.each(KINDS)(
    "%s: lock('deploy.sh') keeps the script byte-identical, with or without removeOnRelease",
    async (kind) => {
      const script = path.join(dir, `deploy-${kind}.sh`);
      writeFileSync(script, SCRIPT);
      chmodSync(script, 0o755);
      for (const removeOnRelease of [false, true]) {
        const handle = await lock(script, { kind, removeOnRelease, owner: 'deployer' });
        expect(handle.recordSkipped).toBe('foreign-content');
        expect(handle.recordError).toBeNull();
        expect(readFileSync(script, 'utf8')).toBe(SCRIPT);
        await handle.release();
        expect(existsSync(script)).toBe(true);
        expect(readFileSync(script, 'utf8')).toBe(SCRIPT);
      }
      // lockSync and tryLock follow the same rule.
      lockSync(script, { kind, removeOnRelease: true }).releaseSync();
      tryLockSync(script, { kind, removeOnRelease: true })!.releaseSync();
      expect(readFileSync(script, 'utf8')).toBe(SCRIPT);
    },
  );

  it.each(KINDS)('%s: a lock granted after a wait writes nothing into the script either', async (kind) => {
    const script = path.join(dir, `waited-${kind}.sh`);
    writeFileSync(script, SCRIPT);
    const holder = await holdInChild(script, { kind, removeOnRelease: true });
    const waiting = lock(script, { kind, removeOnRelease: true, timeout: 10_000 });
    await sleep(100); // waiting in the kernel
    await releaseInChild(holder);
    const handle = await waiting;
    expect(handle.recordSkipped).toBe('foreign-content');
    handle.releaseSync();
    expect(readFileSync(script, 'utf8')).toBe(SCRIPT);
    await holder.kill();
  });

  it('a big data file is untouched: same size, same bytes, same modification time', async () => {
    const data = path.join(dir, 'data.bin');
    // 64 MiB, sparse but for a head and a tail of real bytes.
    writeFileSync(data, Buffer.from('SQLite format 3\u0000 and more data'));
    truncateSync(data, 64 << 20);
    const before = statSync(data);
    const digest = sha(data);
    for (const kind of KINDS) {
      const handle = await lock(data, { kind, removeOnRelease: true });
      expect(handle.recordSkipped).toBe('foreign-content');
      handle.releaseSync();
    }
    const after = statSync(data);
    expect(after.size).toBe(64 << 20);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(sha(data)).toBe(digest);
  });

  it('data written into the lock file while it is held is not unlinked on release', async () => {
    // flock(1) users lock the file they write: the record kernel-lock wrote
    // into the empty file gives way to the holder's own data, and then the
    // file is theirs.
    const file = path.join(dir, 'state.json');
    const handle = await lock(file, { removeOnRelease: true });
    expect(parseRecord(readFileSync(file))?.pid).toBe(process.pid);
    writeFileSync(file, '{"users":["ada"]}\n');
    handle.releaseSync();
    expect(readFileSync(file, 'utf8')).toBe('{"users":["ada"]}\n');
  });

  it('empty files, records and legacy markers are still ours to write and remove', async () => {
    const marker = path.join(dir, 'legacy.lock');
    writeFileSync(marker, JSON.stringify({ pid: 4687, createdAt: '2026-01-01T00:00:00.000Z', starttime: 9 }, null, 2));
    const empty = path.join(dir, 'empty.lock');
    writeFileSync(empty, '');
    for (const file of [marker, empty]) {
      const handle = await lock(file, { removeOnRelease: true, owner: 'ours' });
      expect(handle.recordSkipped).toBeNull();
      expect(parseRecord(readFileSync(file))).toMatchObject({ pid: process.pid, owner: 'ours' });
      handle.releaseSync();
      expect(existsSync(file)).toBe(false);
    }
  });

  it('shared holders write nothing, and the last one never unlinks foreign content', async () => {
    const file = path.join(dir, 'shared.dat');
    writeFileSync(file, 'payload');
    const a = await lock(file, { mode: 'shared', removeOnRelease: true });
    const b = await lock(file, { mode: 'shared', removeOnRelease: true });
    a.releaseSync();
    b.releaseSync();
    expect(readFileSync(file, 'utf8')).toBe('payload');
  });
});

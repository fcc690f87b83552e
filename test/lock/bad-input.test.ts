// Bad input: whatever sits at the lock path, and whatever options are
// passed, the call fails with a clear error naming the path and the cause,
// never hangs, never writes through a link, and creates nothing.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lock, lockSync, tryLock, tryLockSync, withLock } from '../../src/index.js';
import { runFixture, tempDir } from '../helpers.js';
import { isRoot } from '../privileges.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

async function failure(file: string, options: object = {}): Promise<NodeJS.ErrnoException & { fileType?: string }> {
  const error = await lock(file, { timeout: 1_000, ...options }).then(
    (handle) => {
      handle.releaseSync();
      throw new Error('lock() succeeded');
    },
    (e: unknown) => e as NodeJS.ErrnoException,
  );
  expect(error.path).toBe(file);
  expect(error.message).toContain(file);
  return error;
}

describe('what sits at the lock path', () => {
  it('a symlink (to a file, or dangling) is refused and never written through', async () => {
    const target = path.join(dir, 'target');
    writeFileSync(target, 'precious');
    const link = path.join(dir, 'link.lock');
    symlinkSync(target, link);
    const error = await failure(link);
    expect(error.code).toBe('ELOOP');
    expect(error.message).toMatch(/symbolic link/);
    expect(readFileSync(target, 'utf8')).toBe('precious');
    const dangling = path.join(dir, 'dangling.lock');
    symlinkSync(path.join(dir, 'nowhere'), dangling);
    expect((await failure(dangling)).code).toBe('ELOOP');
    expect(existsSync(path.join(dir, 'nowhere'))).toBe(false);
    expect(() => lockSync(link)).toThrow(expect.objectContaining({ code: 'ELOOP', path: link }));
  });

  it('a FIFO is refused at once (no hang waiting for a writer)', async () => {
    const fifo = path.join(dir, 'fifo.lock');
    execFileSync('mkfifo', [fifo]);
    const started = performance.now();
    const error = await failure(fifo);
    expect(performance.now() - started).toBeLessThan(500);
    expect(error.code).toBe('EINVAL');
    expect(error.fileType).toBe('FIFO');
    expect(error.message).toMatch(/FIFO, not a regular file/);
    expect(() => tryLockSync(fifo, { kind: 'posix' })).toThrow(expect.objectContaining({ fileType: 'FIFO' }));
  });

  it('a directory is refused', async () => {
    const error = await failure(dir);
    expect(error.code).toBe('EISDIR');
    expect(error.message).toMatch(/directory/);
  });

  it('a missing parent directory is not created', async () => {
    const file = path.join(dir, 'missing', 'deeper', 'x.lock');
    const error = await failure(file);
    expect(error.code).toBe('ENOENT');
    expect(error.syscall).toBe('open');
    expect(error.message).toMatch(/does not create directories/);
    expect(existsSync(path.join(dir, 'missing'))).toBe(false);
  });

  it('an unwritable directory gives EACCES to a non-root user, and nothing is created', async () => {
    // Root bypasses permission checks: as root, ask as nobody; a normal user asks as itself.
    const locked = path.join(dir, 'readonly');
    mkdirSync(locked);
    chmodSync(dir, 0o755);
    chmodSync(locked, 0o555); // anyone may enter, nobody but root may write
    const file = path.join(locked, 'x.lock');
    const report = await runFixture('core-probe.mjs', [file], isRoot ? { uid: 65534, gid: 65534 } : {});
    expect(report).toMatchObject({ result: 'error', code: 'EACCES', syscall: 'open', path: file });
    expect(String(report.message)).toMatch(/permission/);
    expect(readdirSync(locked)).toEqual([]);
  });
});

describe('invalid options are rejected before the disk is touched', () => {
  const cases: [string, unknown, unknown, ErrorConstructor][] = [
    ['negative timeout', 'a.lock', { timeout: -1 }, RangeError],
    ['NaN timeout', 'a.lock', { timeout: Number.NaN }, RangeError],
    ['string timeout', 'a.lock', { timeout: '10' }, TypeError],
    ['range with flock', 'a.lock', { range: { start: 0, length: 1 } }, TypeError],
    ['negative range', 'a.lock', { kind: 'ofd', range: { start: -1, length: 1 } }, RangeError],
    ['fractional range', 'a.lock', { kind: 'posix', range: { start: 0, length: 1.5 } }, RangeError],
    ['unknown kind', 'a.lock', { kind: 'lockf' }, TypeError],
    ['unknown mode', 'a.lock', { mode: 'read' }, TypeError],
    ['unknown option', 'a.lock', { timeoutMs: 5 }, TypeError],
    ['bad signal', 'a.lock', { signal: {} }, TypeError],
    ['bad owner', 'a.lock', { owner: 42 }, TypeError],
    ['bad removeOnRelease', 'a.lock', { removeOnRelease: 'yes' }, TypeError],
    ['options not an object', 'a.lock', 'exclusive', TypeError],
    ['empty path', '', {}, TypeError],
    ['non-string path', 42, {}, TypeError],
    ['path with NUL', 'a\0b.lock', {}, TypeError],
  ];
  it.each(cases)('%s', async (_name, input, options, type) => {
    const target = typeof input === 'string' && input !== '' ? path.join(dir, input) : input;
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
    const call = (fn: (p: any, o: any) => unknown) => () => fn(target, options);
    await expect(call(lock)).rejects.toBeInstanceOf(type);
    expect(call(lockSync)).toThrow(type);
    if (!(options && typeof options === 'object' && 'timeout' in options)) {
      await expect(call(tryLock)).rejects.toBeInstanceOf(type);
      expect(call(tryLockSync)).toThrow(type);
    }
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
    await expect(withLock(target as any, () => 1, options as any)).rejects.toBeInstanceOf(type);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('tryLock refuses timeout and signal; lockSync refuses signal', async () => {
    const file = path.join(dir, 'opts.lock');
    await expect(tryLock(file, { timeout: 5 } as object)).rejects.toThrow(TypeError);
    expect(() => lockSync(file, { signal: new AbortController().signal } as object)).toThrow(TypeError);
    expect(readdirSync(dir)).toEqual([]);
  });
});

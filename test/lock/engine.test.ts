// kernelEngine(): the kernel lock seen through the LockEngine interface that
// the PostgreSQL engine also implements (src/lock/engine.ts). Same calls,
// same errors; no token (the kernel has none) and a signal that never aborts
// (a kernel lock is not lost while its process lives).
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { type EngineLock, kernelEngine, LockHandle, LockTimeoutError, tryLockSync } from '../../dist/index.js';
import { tempDir } from '../helpers.js';

const { dir, cleanup } = tempDir('kernel-lock-engine-');
afterAll(cleanup);

it('lock, tryLock, withLock and release through the engine interface', async () => {
  const engine = kernelEngine({ removeOnRelease: false });
  expect(engine.kind).toBe('kernel');
  const file = path.join(dir, 'a.lock');
  const held = (await engine.lock(file, { owner: 'engine test' })) as EngineLock & { handle: LockHandle };
  expect(held.name).toBe(file);
  expect(held.mode).toBe('exclusive');
  expect(held.token).toBeNull();
  expect(held.signal.aborted).toBe(false);
  expect(held.verify()).toBe(true);
  expect(held.handle).toBeInstanceOf(LockHandle);
  expect(tryLockSync(file)).toBeNull(); // a real kernel lock
  expect(await engine.tryLock(file)).toBeNull();
  await expect(engine.lock(file, { timeout: 50 })).rejects.toBeInstanceOf(LockTimeoutError);
  await held.release();
  expect(held.released).toBe(true);
  expect(held.signal.aborted).toBe(false);
  const shared = await engine.tryLock(file, { mode: 'shared' });
  expect(shared?.mode).toBe('shared');
  await shared?.[Symbol.asyncDispose]();
  expect(await engine.withLock(file, (lock) => lock.verify())).toBe(true);
  const again = tryLockSync(file);
  expect(again).not.toBeNull();
  again?.releaseSync();
});

it("applies the engine's defaults, and a call's options over them", async () => {
  const file = path.join(dir, 'b.lock');
  const held = (await kernelEngine({ kind: 'ofd' }).lock(file)) as EngineLock & { handle: LockHandle };
  expect(held.handle.kind).toBe('ofd');
  await held.release();
  await expect(kernelEngine().withLock(file, 'nope' as never)).rejects.toThrow(/needs a function/);
});

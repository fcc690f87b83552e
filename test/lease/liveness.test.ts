// Liveness comes from the kernel: a holder's death frees its lease at once
// (nobody waits takeoverAfter); a live holder is superseded only after its
// own takeoverAfter, and only if it holds a fenced lease: a plain lock()
// holder of the same file is waited for, never superseded, and the lease's
// token survives the plain holder's owner record.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inspect, type LockKind, LockTimeoutError, lease, lock, lockSync, tryLock } from '../../src/index.js';
import { holderByte } from '../../src/lock/lease-layout.js';
import { fixture, holdInChild, lineFrom, probeInChild, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
const children: ChildProcess[] = [];
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kl-lease-liveness-'));
});
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  cleanup();
});

/** A child process holding a lease (test/fixtures/lease-worker.mjs hold). */
async function leaseInChild(
  file: string,
  options: object,
): Promise<{ child: ChildProcess; token: bigint; acquiredAtMs: number }> {
  const child = spawn(process.execPath, [fixture('lease-worker.mjs'), 'hold', file, JSON.stringify(options)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const fields = (await lineFrom(child, 'acquired')).split(' ');
  return { child, token: BigInt(fields[1]!), acquiredAtMs: Number(fields[3]) };
}

describe('liveness from the kernel', () => {
  it("a holder's death hands the lease over at once, far sooner than takeoverAfter", async () => {
    const file = path.join(dir, 'death.lock');
    const TAKEOVER_AFTER = 60_000;
    const holder = await leaseInChild(file, { takeoverAfter: TAKEOVER_AFTER });
    const waiting = lease(file, { takeoverAfter: TAKEOVER_AFTER, timeout: 30_000 });
    await new Promise((resolve) => setTimeout(resolve, 200)); // the waiter is asleep in the kernel
    const killed = performance.now();
    holder.child.kill('SIGKILL');
    const successor = await waiting;
    const handOverMs = performance.now() - killed;
    expect(successor.token).toBe(holder.token + 1n);
    expect(successor.superseded).toBeNull(); // freed by the death, not taken over
    // Generous for a loaded 2-core machine; bench/lease.mjs measures it precisely.
    expect(handOverMs).toBeLessThan(5_000);
    expect(handOverMs).toBeLessThan(TAKEOVER_AFTER / 10);
    await successor.release();
  });

  it('a live holder is superseded only once it has held the lease for its own takeoverAfter', async () => {
    const file = path.join(dir, 'patience.lock');
    const holder = await leaseInChild(file, { takeoverAfter: 700 });
    const started = performance.now();
    const successor = await lease(file, { takeoverAfter: 0, timeout: 20_000 });
    const waited = performance.now() - started;
    // Not before the holder had held it for its 700 ms (same wall clock), nor much later.
    expect(successor.acquiredAtMs - holder.acquiredAtMs).toBeGreaterThanOrEqual(700);
    expect(waited).toBeLessThan(5_000);
    expect(successor.superseded).toBe(holder.token);
    expect(successor.token).toBe(holder.token + 1n);
    await successor.release();
  });

  it('a lease held with the default takeoverAfter (Infinity) is never superseded while alive', async () => {
    const file = path.join(dir, 'forever.lock');
    const holder = await leaseInChild(file, {});
    const error = await lease(file, { takeoverAfter: 0, timeout: 800 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ELOCKED' });
    expect(String((error as Error).message)).toContain(`pid ${holder.child.pid}`);
    expect(String((error as Error).message)).toContain('never superseded while alive');
  });

  it("a plain lock()'s timeout on a leased file names the current lease holder, its token and its record", async () => {
    // The lock layer's own look (lock/holder-look.ts, no inspect()): the
    // current lease is the OFD lock on its token's byte, matched to the
    // holder's descriptors by first byte, and the record is believed because
    // it is that holder's.
    const file = path.join(dir, 'plain-timeout.lock');
    const old = await leaseInChild(file, { takeoverAfter: 0 });
    const current = await leaseInChild(file, { owner: 'successor', takeoverAfter: 3_600_000 });
    expect(current.token).toBe(old.token + 1n);
    const errors = [
      await lock(file, { timeout: 200, removeOnRelease: false }).catch((e: unknown) => e),
      (() => {
        try {
          lockSync(file, { timeout: 200, removeOnRelease: false });
        } catch (error) {
          return error;
        }
      })(),
    ] as LockTimeoutError[];
    for (const error of errors) {
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect(error.message).toContain(`held by pid ${current.child.pid} (alive`);
      expect(error.message).toContain('owner "successor"');
      expect(error.message).toMatch(/lease token 2, may be superseded in 59m\d\ds/);
      expect(error.message).toContain('1 superseded holder still alive: token 1 (');
      expect(error.holder?.recordMatchesHolder).toBe(true);
      expect(error.holder?.lease).toMatchObject({ token: '2', current: { token: '2', pid: current.child.pid } });
      expect(error.holder?.lease?.superseded).toEqual([expect.objectContaining({ token: '1' })]);
    }
    // inspect() searches every descriptor: each token's lock names its own process only.
    const seen = await inspect(file);
    const pidsOf = (token: bigint): number[] | undefined =>
      seen.holders
        .find((h) => h.kind === 'ofd' && h.range?.start === holderByte(Number(token)))
        ?.descriptors?.map((d) => d.pid);
    expect(pidsOf(old.token)).toEqual([old.child.pid]);
    expect(pidsOf(current.token)).toEqual([current.child.pid]);
    expect(seen.lease?.superseded).toEqual([expect.objectContaining({ token: '1', pid: old.child.pid, alive: true })]);
  });

  for (const kind of ['flock', 'ofd', 'posix'] as const satisfies readonly LockKind[]) {
    it(`${kind}: a plain lock() holder is never superseded, and the lease's token survives its record`, async () => {
      const file = path.join(dir, `plain-${kind}.lock`);
      const first = await lease(file);
      await first.release();
      const plain = await holdInChild(file, { kind, removeOnRelease: false });
      const started = performance.now();
      const error = await lease(file, { takeoverAfter: 0, timeout: 700 }).catch((e: unknown) => e);
      expect(performance.now() - started).toBeGreaterThanOrEqual(650);
      expect(error).toMatchObject({ code: 'ELOCKED' });
      expect(String((error as Error).message)).toContain(`pid ${plain.pid}`);
      // Still the plain holder's alone: nobody else gets in.
      expect(await probeInChild(file, { kind })).toBe('busy');
      const waiting = lease(file, { takeoverAfter: 0, timeout: 20_000 });
      await plain.kill();
      const next = await waiting;
      expect(next.token).toBeGreaterThan(first.token);
      await next.release();
    });

    it(`${kind}: a lease excludes a plain lock() of the same file, and the reverse`, async () => {
      const file = path.join(dir, `mutual-${kind}.lock`);
      const held = await lease(file);
      expect(await probeInChild(file, { kind })).toBe('busy');
      held.releaseSync();
      expect(await probeInChild(file, { kind })).toBe('locked');
      const plain = await tryLock(file, { kind, removeOnRelease: false });
      expect(plain).not.toBeNull();
      const error = await lease(file, { timeout: 0 }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ELOCKED' });
      plain!.releaseSync();
    });
  }

  it('a plain lock() with removeOnRelease never removes a lease file', async () => {
    const file = path.join(dir, 'kept.lock');
    (await lease(file)).releaseSync();
    const plain = await tryLock(file, { removeOnRelease: true });
    expect(plain).not.toBeNull();
    plain!.releaseSync();
    const next = await lease(file);
    expect(next.token).toBe(2n);
    next.releaseSync();
  });

  it('lockSync() on a file this thread holds a lease on fails fast instead of hanging', async () => {
    const file = path.join(dir, 'self.lock');
    const held = await lease(file);
    expect(() => lockSync(file, { removeOnRelease: false })).toThrow(/EDEADLK/);
    await held.release();
  });
});

// The holder a timeout error names (src/lock/holder.ts). It comes from the
// kernel: the owner record is believed only when the process it names is
// confirmed, through its own descriptors, to hold the lock exclusively; a
// timeout confirmed that way never reads /proc/locks, whose every read
// stalls lock calls host-wide. Real holders: kernel-lock children, flock(1),
// a Python OFD locker.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LockTimeoutError, lock, lockSync } from '../../src/index.js';
import {
  type Holder,
  holdInChild,
  holdWithoutRecord,
  killGroup,
  releaseInChild,
  runFixture,
  tempDir,
} from '../helpers.js';

let dir: string;
let cleanup: () => void;
const holders: Holder[] = [];
const groups: ChildProcess[] = [];
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-holder-'));
});
afterEach(async () => {
  for (const h of holders.splice(0)) await h.kill('SIGKILL');
  for (const g of groups.splice(0)) killGroup(g);
  cleanup();
});

/** flock(1) or Python holding the file with no owner record of its own; resolves with the locker's pid. */
async function recordless(kind: 'flock' | 'ofd', file: string): Promise<number> {
  const child = await holdWithoutRecord(kind, file);
  groups.push(child);
  return child.pid!;
}

describe("a timeout error's holder", () => {
  it('a record naming a live process that no longer holds the lock is not believed', async () => {
    for (const kind of ['flock', 'ofd'] as const) {
      const file = path.join(dir, `${kind}.lock`);
      // The previous holder released but lives on; its record stays in the file.
      const previous = await holdInChild(file, { kind, owner: 'previous', removeOnRelease: false });
      holders.push(previous);
      await releaseInChild(previous);
      const peer = await recordless(kind, file);
      const error = (await lock(file, { kind, timeout: 30 }).catch((e: unknown) => e)) as LockTimeoutError;
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect(error.message, kind).not.toContain('owner "previous"');
      expect(error.message, kind).not.toContain(`pid ${previous.pid} `);
      if (kind === 'flock') expect(error.message).toContain(`held by pid ${peer} (alive, "flock`);
      else expect(error.message).toMatch(new RegExp(`held by pid ${peer} \\(alive, "[^"]*python3[^"]*", OFD lock\\)$`));
      expect(error.holder?.recordMatchesHolder).toBe(false);
      let syncError: unknown;
      try {
        lockSync(file, { kind, timeout: 30 });
      } catch (e) {
        syncError = e;
      }
      expect((syncError as Error).message).not.toContain('owner "previous"');
    }
  });

  it('a holder confirmed through its record costs no read of /proc/locks; a holder without one costs one', async () => {
    for (const kind of ['flock', 'ofd', 'posix'] as const) {
      const file = path.join(dir, `confirmed-${kind}.lock`);
      const holder = await holdInChild(file, { kind, owner: 'confirmed' });
      holders.push(holder);
      for (const mode of ['async', 'sync']) {
        const report = await runFixture('timeout-reads.mjs', [file, JSON.stringify({ kind, timeout: 30 }), mode]);
        expect(report.message, `${kind} ${mode}`).toContain(`held by pid ${holder.pid} (alive`);
        expect(report.message, `${kind} ${mode}`).toContain('owner "confirmed"');
        expect(report.procLocksOpened, `${kind} ${mode}`).toBe(0);
        expect(report.fdinfoOpened, `${kind} ${mode}`).toBeGreaterThan(0);
      }
    }
    const file = path.join(dir, 'recordless.lock');
    const peer = await recordless('flock', file);
    const report = await runFixture('timeout-reads.mjs', [file, JSON.stringify({ timeout: 30 })]);
    expect(report.message).toContain(`held by pid ${peer} (alive`);
    expect(report.procLocksOpened).toBe(1);
  });

  it('names this very process when another of its handles holds the lock', async () => {
    const file = path.join(dir, 'self.lock');
    const own = await lock(file, { owner: 'me' });
    const error = (await lock(file, { timeout: 20 }).catch((e: unknown) => e)) as LockTimeoutError;
    expect(error.message).toMatch(
      new RegExp(`held by this process \\(pid ${process.pid}, owner "me", held \\d+m?s\\)$`),
    );
    expect(error.holder).toMatchObject({ state: 'held-by-self', recordMatchesHolder: true });
    await own.release();
  });
});

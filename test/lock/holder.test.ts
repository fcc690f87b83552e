// The holder a timeout error names (src/lock/holder.ts). It comes from the
// kernel: the owner record is believed only when the process it names is
// confirmed, through its own descriptors, to hold the lock exclusively; a
// timeout confirmed that way never reads /proc/locks, whose every read
// stalls lock calls host-wide. Real holders: kernel-lock children, flock(1),
// a Python OFD locker.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LockTimeoutError, lock, lockSync } from '../../src/index.js';
import {
  fixture,
  type Holder,
  holdInChild,
  holdWithoutRecord,
  killGroup,
  lineFrom,
  releaseInChild,
  runFixture,
  tempDir,
} from '../helpers.js';
import { unshare } from '../privileges.js';

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

/** What test/fixtures/ofd-holder-ns.mjs reports (pids are the namespace's). */
interface NamespaceReport {
  peer: number;
  previous: number;
  message: string;
  syncMessage: string;
  recordMatchesHolder: boolean | null;
}

/** Runs test/fixtures/ofd-holder-ns.mjs as the init of a new pid namespace with its own /proc. */
async function ofdHolderInNamespace(busyDescriptors: number): Promise<NamespaceReport> {
  const [command, ...args] = unshare('--pid', '--fork', '--mount-proc');
  const child = spawn(
    command!,
    [...args, process.execPath, fixture('ofd-holder-ns.mjs'), dir, String(busyDescriptors)],
    { detached: true },
  ); // a group of its own: killGroup() ends the namespace's processes with it
  groups.push(child);
  return JSON.parse(await lineFrom(child, '{', 60_000)) as NamespaceReport;
}

describe("a timeout error's holder", () => {
  it('a record naming a live process that no longer holds the lock is not believed (flock)', async () => {
    const file = path.join(dir, 'flock.lock');
    // The previous holder released but lives on; its record stays in the file.
    const previous = await holdInChild(file, { kind: 'flock', owner: 'previous', removeOnRelease: false });
    holders.push(previous);
    await releaseInChild(previous);
    const peer = await recordless('flock', file);
    const error = (await lock(file, { kind: 'flock', timeout: 30 }).catch((e: unknown) => e)) as LockTimeoutError;
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error.message).not.toContain('owner "previous"');
    expect(error.message).not.toContain(`pid ${previous.pid} `);
    // /proc/locks names a flock holder's pid: no descriptor search is needed.
    expect(error.message).toContain(`held by pid ${peer} (alive, "flock`);
    expect(error.holder?.recordMatchesHolder).toBe(false);
    let syncError: unknown;
    try {
      lockSync(file, { kind: 'flock', timeout: 30 });
    } catch (e) {
      syncError = e;
    }
    expect((syncError as Error).message).not.toContain('owner "previous"');
  });

  // An OFD lock names no pid in /proc/locks: its holder is found by a search
  // of every process's descriptors, bounded (4096 descriptors for lock(),
  // 1024 for lockSync()) in /proc's order. On the host that made the outcome
  // depend on whatever else ran: a process listed earlier with more
  // descriptors than the bound (another test file's 15,000-descriptor
  // process, say) used the budget up, and the holder was "an unknown
  // process". In a pid namespace with its own /proc the search sees only the
  // processes started there, in a known order.
  it('a record naming a live process that no longer holds the lock is not believed (ofd; the search finds the holder)', async () => {
    const report = await ofdHolderInNamespace(0);
    expect(report.recordMatchesHolder).toBe(false);
    for (const message of [report.message, report.syncMessage]) {
      expect(message).not.toContain('owner "previous"');
      expect(message).not.toContain(`pid ${report.previous} `);
      expect(message).toMatch(new RegExp(`held by pid ${report.peer} \\(alive, "[^"]*python3[^"]*", OFD lock\\)$`));
    }
  });

  it('an OFD holder the bounded search does not reach is unknown, and the message says the search was cut short', async () => {
    // 5000 descriptors listed before the holder: more than either bound.
    const report = await ofdHolderInNamespace(5000);
    for (const message of [report.message, report.syncMessage]) {
      expect(message).not.toContain('owner "previous"');
      expect(message).toMatch(
        /held by an unknown process \(OFD locks carry no pid, the search of \/proc for its process was cut short\)$/,
      );
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

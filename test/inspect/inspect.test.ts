// inspect(): the kernel's word on who holds a lock file, with real holder
// processes, real SIGKILL and every lock kind.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inspect, inspectSync, LockTimeoutError, lock, lockSync, sweep } from '../../src/index.js';
import { describeInspection, formatDuration } from '../../src/inspect/format.js';
import { fileKey, parseDeviceInode, parseProcLocks, parseProcLocksLine } from '../../src/proc/proc-locks.js';
import { type Holder, holdInChild, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
const holders: Holder[] = [];
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-inspect-'));
});
afterEach(async () => {
  for (const h of holders.splice(0)) await h.kill('SIGKILL');
  cleanup();
});

async function held(file: string, options: object): Promise<Holder> {
  const holder = await holdInChild(file, options);
  holders.push(holder);
  return holder;
}

/** Linux's user-space dev_t encoding (glibc makedev). */
function makedev(major: bigint, minor: bigint): bigint {
  return (minor & 0xffn) | ((major & 0xfffn) << 8n) | ((minor & ~0xffn) << 12n) | ((major & ~0xfffn) << 32n);
}

describe('/proc/locks parsing', () => {
  it('parses flock, OFD and POSIX lines and tells waiters from holders', () => {
    expect(parseProcLocksLine('1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF')).toEqual({
      key: '253:1:5678',
      lock: { pid: 1234, kind: 'flock', mode: 'exclusive', range: undefined, blocked: false },
    });
    expect(parseProcLocksLine('2: OFDLCK ADVISORY  READ  -1 00:2e:123 0 EOF')).toEqual({
      key: '0:46:123',
      lock: { pid: -1, kind: 'ofd', mode: 'shared', range: { start: 0, length: 0 }, blocked: false },
    });
    expect(parseProcLocksLine('3: POSIX  ADVISORY  WRITE 99 08:02:1234 0 100')?.lock.range).toEqual({
      start: 0,
      length: 101,
    });
    expect(parseProcLocksLine('1: -> FLOCK  ADVISORY  WRITE 77 fd:01:5678 0 EOF')?.lock.blocked).toBe(true);
    expect(parseProcLocksLine('4: LEASE  ACTIVE    READ  5 fd:01:9 0 EOF')).toBeNull();
    expect(parseProcLocksLine('garbage')).toBeNull();
    const all = parseProcLocks(
      '1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF\n1: -> FLOCK  ADVISORY  WRITE 77 fd:01:5678 0 EOF\n',
    );
    expect(all.get('253:1:5678')).toHaveLength(2);
  });

  it('matches stat() device numbers to /proc/locks, including large majors and minors', () => {
    for (const [major, minor] of [
      [253n, 1n],
      [0n, 46n],
      [259n, 0x12345n],
      [0xabcn, 0xfffffn],
    ] as const) {
      const ino = 18446744073709551557n; // beyond 2^53: compared exactly
      const field = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${ino}`;
      expect(parseDeviceInode(field)).toBe(fileKey(makedev(major, minor), ino));
    }
  });

  it('formats durations', () => {
    expect(formatDuration(850)).toBe('850ms');
    expect(formatDuration(12_000)).toBe('12s');
    expect(formatDuration(252_000)).toBe('4m12s');
    expect(formatDuration(2 * 3_600_000 + 3 * 60_000)).toBe('2h03m');
  });
});

describe('inspect', () => {
  it('reports a child holder with its pid, liveness and label; after SIGKILL an orphan record', async () => {
    const file = path.join(dir, 'session.jsonl.lock');
    const holder = await held(file, { owner: 'agent main' });
    const inspection = await inspect(file);
    expect(inspection).toMatchObject({ exists: true, held: true, state: 'held', recordMatchesHolder: true });
    expect(inspection.holders).toHaveLength(1);
    expect(inspection.holders[0]).toMatchObject({
      pid: holder.pid,
      kind: 'flock',
      mode: 'exclusive',
      visible: true,
      alive: true,
      sameNamespace: true,
      self: false,
    });
    expect(inspection.record?.owner).toBe('agent main');
    expect(inspection.heldForMs).toBeGreaterThanOrEqual(0);
    expect(describeInspection(inspection)).toMatch(
      new RegExp(`^held by pid ${holder.pid} \\(alive, "[^"]*node [^"]*", owner "agent main", held \\d+m?s`),
    );

    await holder.kill('SIGKILL');
    const after = await inspect(file);
    // Killed, so nothing removed the file: it remains, with a dead pid's record.
    expect(after).toMatchObject({ exists: true, held: false, state: 'orphan-record', holders: [] });
    expect(after.recordProcess).toMatchObject({ pid: holder.pid, scope: 'here', alive: false });
    await sweep(dir);
    expect(await inspect(file)).toMatchObject({ exists: false, held: false, state: 'free' });
  });

  it('the timeout error names the holder pid and label, async and sync', async () => {
    const file = path.join(dir, 'busy.lock');
    const holder = await held(file, { owner: 'label-42' });
    const error = await lock(file, { timeout: 100 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockTimeoutError);
    const timeout = error as LockTimeoutError;
    expect(timeout.message).toMatch(new RegExp(`^lock busy after \\d+ ms: ${file} held by pid ${holder.pid} \\(alive`));
    expect(timeout.message).toContain('owner "label-42"');
    expect(timeout.holder?.holders[0]?.pid).toBe(holder.pid);
    expect(Math.round(timeout.waitedMs)).toBeLessThan(5_000);
    let syncError: unknown;
    try {
      lockSync(file, { timeout: 50 });
    } catch (e) {
      syncError = e;
    }
    expect((syncError as Error).message).toContain(`held by pid ${holder.pid}`);
    expect((syncError as Error).message).toContain('owner "label-42"');
  });

  it('reports locks of this very process as held-by-self, for posix without dropping them', async () => {
    const file = path.join(dir, 'self.lock');
    const own = await lock(file, { owner: 'me' });
    expect(inspectSync(file)).toMatchObject({ state: 'held-by-self', held: true });
    expect(describeInspection(inspectSync(file))).toMatch(/^held by this process \(pid \d+, owner "me"/);
    await own.release();

    const posixFile = path.join(dir, 'posix.lock');
    const posix = await lock(posixFile, { kind: 'posix' });
    const inspection = inspectSync(posixFile);
    expect(inspection.state).toBe('held-by-self');
    expect(inspection.holders[0]).toMatchObject({ kind: 'posix', pid: process.pid, self: true });
    // Inspecting must not have closed a descriptor of the file: that would
    // have dropped our POSIX lock, and a child could now take it.
    const error = await holdInChild(posixFile, { kind: 'posix', timeout: 0 }).catch((e: unknown) => e);
    if (typeof error === 'object' && error !== null && 'kill' in error) holders.push(error as Holder);
    expect(String(error)).toMatch(/exited/);
    await posix.release();
  });

  it('names the real holder of an OFD lock (pid -1 in /proc/locks) through its descriptors', async () => {
    const file = path.join(dir, 'ofd.lock');
    const holder = await held(file, { kind: 'ofd', owner: 'ofd-owner' });
    const inspection = await inspect(file);
    expect(inspection.state).toBe('held');
    expect(inspection.holders[0]).toMatchObject({ pid: -1, kind: 'ofd', visible: false });
    expect(inspection.holders[0]?.descriptors?.map((d) => d.pid)).toEqual([holder.pid]);
    expect(inspection.recordMatchesHolder).toBe(true);
    expect(describeInspection(inspection)).toContain(`held by pid ${holder.pid} (alive`);
    // Without the descriptor lookup the holder is unknown, and the record is only a hint.
    const blind = await inspect(file, { descriptors: false });
    expect(blind.recordMatchesHolder).toBeNull();
    expect(describeInspection(blind)).toMatch(
      new RegExp(`^held by an unknown process \\(OFD locks carry no pid, host "[^"]+", recorded pid ${holder.pid}, `),
    );
  });

  it('reports an OFD lock of this process as held-by-self', async () => {
    const file = path.join(dir, 'own-ofd.lock');
    const own = await lock(file, { kind: 'ofd' });
    expect(await inspect(file)).toMatchObject({ state: 'held-by-self', holders: [{ pid: -1, self: true }] });
    await own.release();
  });

  it('lists every shared holder', async () => {
    const file = path.join(dir, 'shared.lock');
    const a = await held(file, { mode: 'shared' });
    const b = await held(file, { mode: 'shared' });
    const inspection = await inspect(file);
    expect(inspection.holders.map((h) => h.pid).sort()).toEqual([a.pid, b.pid].sort());
    expect(inspection.holders.every((h) => h.mode === 'shared')).toBe(true);
    expect(describeInspection(inspection)).toMatch(/^held \(shared\) by pid \d+ .* and 1 other holder$/);
  });

  it('never creates a missing file, and judges leftover records by the kernel alone', async () => {
    const missing = path.join(dir, 'missing.lock');
    expect(await inspect(missing)).toMatchObject({ exists: false, held: false, state: 'free', record: null });
    expect(existsSync(missing)).toBe(false);

    const empty = path.join(dir, 'empty.lock');
    writeFileSync(empty, '{}');
    expect(await inspect(empty)).toMatchObject({ exists: true, state: 'free', record: {} });
    const garbage = path.join(dir, 'garbage.lock');
    writeFileSync(garbage, '\u0000\u00ff not json');
    expect(await inspect(garbage)).toMatchObject({ state: 'free', record: null });
    // A legacy marker whose pid is dead (pid_max is at most 2^22).
    const legacy = path.join(dir, 'legacy.lock');
    writeFileSync(legacy, JSON.stringify({ pid: 4_194_304 + 7, createdAt: new Date().toISOString() }));
    expect(await inspect(legacy)).toMatchObject({ state: 'orphan-record', recordProcess: { alive: false } });
    // A record from another pid namespace: its pid is never looked up here.
    const foreign = path.join(dir, 'foreign.lock');
    writeFileSync(foreign, JSON.stringify({ format: 'kernel-lock/1', pid: 1, pidNamespace: 'pid:[1]' }));
    expect(await inspect(foreign)).toMatchObject({
      state: 'free',
      recordProcess: { pid: 1, scope: 'other-namespace', alive: null },
    });
    expect(readFileSync(foreign, 'utf8')).toContain('pid:[1]'); // untouched
  });
});

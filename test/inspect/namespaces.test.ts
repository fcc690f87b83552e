// Holders in other pid namespaces: another container on the same volume.
// These tests need `unshare` (as root, or as a normal user through a user
// namespace: test/privileges.ts); they FAIL (never skip) without it.
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LockInspection } from '../../src/index.js';
import { inspect, LockTimeoutError, lock, sweep } from '../../src/index.js';
import { fixture, type Holder, lineFrom, spawnHolder, tempDir } from '../helpers.js';
import { unshare } from '../privileges.js';

let dir: string;
let cleanup: () => void;
const holders: Holder[] = [];
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-ns-'));
});
afterEach(async () => {
  for (const h of holders.splice(0)) await h.kill('SIGKILL');
  cleanup();
});

const UNSHARE = unshare('--pid', '--fork', '--mount-proc').slice(1); // the arguments after `unshare`

/** A kernel-lock holder running as pid 1 of a new pid namespace. */
async function holdInNamespace(file: string, options: object): Promise<Holder> {
  const holder = await spawnHolder('unshare', [
    ...UNSHARE,
    process.execPath,
    fixture('holder.mjs'),
    file,
    JSON.stringify(options),
  ]);
  holders.push(holder);
  return holder;
}

/** Runs the inspect-ns fixture in ANOTHER new pid namespace (a sibling of the holder's). */
async function inspectFromSibling(
  file: string,
  timeoutMs: number,
): Promise<{ pid: number; inspection: LockInspection; waited: Record<string, unknown> }> {
  const child = spawn('unshare', [...UNSHARE, process.execPath, fixture('inspect-ns.mjs'), file, String(timeoutMs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const line = await lineFrom(child, 'result ');
  return JSON.parse(line.slice('result '.length));
}

describe('pid namespaces', () => {
  it('unshare is available (these tests need it and must not skip)', () => {
    expect(() => execFileSync('unshare', [...UNSHARE, 'true'])).not.toThrow();
  });

  it('a holder in a child namespace whose recorded pid collides with our pid 1 is held, never stale', async () => {
    const file = path.join(dir, 'ns.jsonl.lock');
    await holdInNamespace(file, { owner: 'container agent' });
    const inspection = await inspect(file);
    // The record says pid 1: inside its namespace the holder IS pid 1. Here
    // pid 1 is our init, alive: the record's pid must not be read as ours.
    expect(inspection.record).toMatchObject({ pid: 1, owner: 'container agent' });
    expect(inspection.state).toBe('held');
    const [holder] = inspection.holders;
    expect(holder).toMatchObject({ visible: true, alive: true, sameNamespace: false, pidInNamespace: 1 });
    expect(holder?.pid).not.toBe(1);
    expect(inspection.recordProcess).toMatchObject({ pid: 1, scope: 'other-namespace', alive: null });
    expect(inspection.recordMatchesHolder).toBe(true);

    // The waiter is not handed the lock early; its error names the holder.
    const started = performance.now();
    const error = await lock(file, { timeout: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect((error as Error).message).toContain(`held by pid ${holder?.pid} (alive, pid 1 in its own pid namespace`);
    expect((error as Error).message).toContain('owner "container agent"');
    // A sweep leaves it alone.
    expect((await sweep(dir)).kept.map((k) => k.reason)).toEqual(['held']);

    // When the holder dies (SIGKILL to the namespace's init), the waiter gets it at once.
    const waiting = lock(file, { timeout: 20_000 });
    process.kill(holder!.pid!, 'SIGKILL');
    const handle = await waiting;
    expect(handle.verify()).toBe(true);
    await handle.release();
  });

  it('a holder invisible from the inspector (sibling namespaces) is found by the probe and reported held', async () => {
    const file = path.join(dir, 'sibling.jsonl.lock');
    await holdInNamespace(file, { owner: 'typhon' });
    const { inspection, waited } = await inspectFromSibling(file, 300);
    expect(inspection.state).toBe('held');
    expect(inspection.holders).toEqual([
      expect.objectContaining({ pid: null, kind: 'flock', mode: 'exclusive', visible: false, sameNamespace: false }),
    ]);
    expect(inspection.recordProcess).toMatchObject({ pid: 1, scope: 'other-namespace', alive: null });
    expect(waited).toMatchObject({ acquired: false, timeout: true, holderState: 'held' });
    expect(waited.message).toMatch(
      /held by a process in another pid namespace \(host "[^"]+", recorded pid 1, "[^"]*node [^"]*", owner "typhon"\)/,
    );
  });

  it('an fcntl holder invisible from the inspector is found by F_OFD_GETLK', async () => {
    const file = path.join(dir, 'sibling-ofd.lock');
    await holdInNamespace(file, { kind: 'posix' });
    const { inspection } = await inspectFromSibling(file, 0);
    expect(inspection.state).toBe('held');
    expect(inspection.holders[0]).toMatchObject({ pid: 0, kind: 'posix', visible: false, sameNamespace: false });
  });
});

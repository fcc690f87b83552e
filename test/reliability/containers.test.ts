// Containers: holder and waiter each in their own pid + mount namespace
// (`unshare --pid --fork --mount-proc`, both pid 1 there, colliding with
// each other and with the host's init), sharing one directory. Inspection
// must call the live foreign holder held, never stale or ours; killing the
// holder's namespace init must hand the lock to the waiter.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inspect, tryLock } from '../../src/index.js';
import { lineFrom, sleep, tempDir } from '../helpers.js';
import { unshare } from '../privileges.js';

const party = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'ns-party.mjs');

let dir: string;
let cleanup: () => void;
const children: ChildProcess[] = [];
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-containers-'));
});
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  cleanup();
});

function inNamespace(role: string, lockPath: string, kind: string): ChildProcess {
  const [command, ...flags] = unshare('--pid', '--fork', '--mount-proc', '--kill-child');
  const child = spawn(command!, [...flags, process.execPath, party, role, lockPath, kind], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return child;
}

/** The host pid of the namespace's init: the process `unshare --fork` started. */
function namespaceInit(unshare: ChildProcess): number {
  const pids = readFileSync(`/proc/${unshare.pid}/task/${unshare.pid}/children`, 'utf8').trim().split(/\s+/);
  expect(pids).toHaveLength(1);
  return Number(pids[0]);
}

describe('holders and waiters in separate pid namespaces', () => {
  for (const kind of ['flock', 'ofd', 'posix'] as const) {
    it(`${kind}: the live foreign holder is held (never stale), its death hands over the lock`, async () => {
      const lockPath = path.join(dir, 'shared-volume.lock');
      const holder = inNamespace('holder', lockPath, kind);
      const locked = await lineFrom(holder, 'locked');
      expect(locked.split(' ')[1]).toBe('1'); // pid 1 in its namespace: our init's pid too
      const holderNs = locked.split(' ')[2];

      // From the host: held, by a process in another pid namespace, never free or an orphan.
      const fromHost = await inspect(lockPath);
      expect(fromHost.held).toBe(true);
      expect(fromHost.state).toBe('held');
      expect(fromHost.record).toMatchObject({ pid: 1, pidNamespace: holderNs, owner: 'container holder' });
      expect(await tryLock(lockPath, { kind })).toBeNull();

      // From a third namespace where the waiter itself is pid 1, like the record says.
      const waiter = inNamespace('waiter', lockPath, kind);
      const inspected = JSON.parse((await lineFrom(waiter, 'inspected')).slice('inspected '.length));
      expect(inspected).toEqual({ pid: 1, state: 'held', held: true });
      const acquired = lineFrom(waiter, 'acquired', 30_000);
      await sleep(300);
      expect(await Promise.race([acquired.then(() => 'acquired'), sleep(10).then(() => 'waiting')])).toBe('waiting');
      expect((await inspect(lockPath)).state).toBe('held');

      // Kill the holder's namespace init: the whole namespace dies, the kernel releases.
      const killed = performance.now();
      process.kill(namespaceInit(holder), 'SIGKILL');
      const line = await acquired;
      const handoverMs = performance.now() - killed;
      console.log(`${kind}: waiter in another namespace acquired ${Math.round(handoverMs)} ms after the kill`);
      expect(line.split(' ')[2]).toBe('1');
      expect(handoverMs).toBeLessThan(10_000);
    });
  }
});

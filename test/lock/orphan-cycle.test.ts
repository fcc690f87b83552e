// A wait ends only by grant, timeout, abort or a real error (issue 10,
// point 4). With posix locks and removeOnRelease, an acquisition woken on
// an orphaned inode holds it for a moment before it notices and lets go;
// a sibling acquisition of the same process that starts waiting on the new
// file in that moment, while a peer holding the new file waits for the
// orphan, closes a cycle in the kernel's deadlock detector: EDEADLK. That
// cycle dissolves as soon as the orphan is dropped, so the wait retries
// instead of failing. Deterministic: the peer is a Python lockf() process
// driven step by step, and this thread's event loop is held busy so the
// orphan stays held while the sibling starts.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { lock } from '../../src/index.js';
import { fixture, lineFrom, sleep, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-orphan-cycle-'));
});
afterEach(() => cleanup());

/** Blocks this thread (and so its event loop) for `ms`. */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

it('a sibling waiting on the new file while the orphan is held is not failed with EDEADLK', async () => {
  const file = path.join(dir, 'cycle.lock');
  const options = { kind: 'posix', removeOnRelease: true } as const;
  const peer = spawn('python3', [fixture('orphan-cycle-peer.py'), file], { stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    const step = (name: string, reply?: string): Promise<string> | undefined => {
      const answer = reply === undefined ? undefined : lineFrom(peer, reply);
      peer.stdin.write(`${name}\n`);
      return answer;
    };
    await step('hold-old', 'held-old');
    // X waits in the kernel on the old file, which the peer holds.
    const x = lock(file, options);
    await sleep(300);
    // The peer moves to a new file and lets X have the old one: X is
    // granted the orphan; then the peer blocks on the orphan, which X holds.
    const gotOld = step('swap', 'got-old')!;
    // Keep the event loop busy so X cannot notice and drop the orphan yet.
    const deadline = performance.now() + 5_000;
    while (!existsSync(`${file}.blocking`) && performance.now() < deadline) blockFor(5);
    blockFor(300); // the peer is now asleep in the kernel, waiting for X
    // Y starts waiting on the new file (held by the peer) in this very
    // moment: the kernel sees Y → peer → X (this process) and says EDEADLK.
    const y = lock(file, { ...options, timeout: 20_000 });
    blockFor(300); // Y's waiter thread asks the kernel before X can drop the orphan
    const outcomes: string[] = [];
    const yDone = y.then(
      (h) => {
        outcomes.push('y granted');
        return h;
      },
      (e: unknown) => {
        outcomes.push(`y failed: ${(e as Error).message}`);
        throw e;
      },
    );
    // Now X notices the orphan and drops it; the peer gets the old file.
    await gotOld;
    expect(outcomes).toEqual([]); // Y did not fail; it still waits for the peer
    step('release');
    const yHandle = await yDone;
    expect(yHandle.verify()).toBe(true);
    yHandle.releaseSync();
    const xHandle = await x;
    expect(xHandle.verify()).toBe(true);
    xHandle.releaseSync();
  } finally {
    peer.kill();
  }
});

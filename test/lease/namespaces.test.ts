// A holder in another pid namespace (a real `unshare --pid --fork
// --mount-proc`: it is pid 1 there, like our own init) is fenced exactly like
// a local one: superseded after its takeoverAfter while it keeps writing, its
// late writes refused and its signal fired; and its death hands the lease
// over at once. Nothing here looks at pids: the kernel locks and the token
// slot are per inode, whatever namespace the holder lives in.
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inspect, lease } from '../../src/index.js';
import { fixture, lineFrom, namespaceInitOf, sleep, tempDir } from '../helpers.js';
import { unshare } from '../privileges.js';

let dir: string;
let cleanup: () => void;
const children: ChildProcess[] = [];
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kl-lease-ns-'));
});
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  cleanup();
});

/** `lease-worker.mjs hold` as pid 1 of a fresh pid namespace (with its own /proc). */
function holdInNamespace(args: string[]): ChildProcess {
  const [command, ...flags] = unshare('--pid', '--fork', '--mount-proc', '--kill-child');
  const child = spawn(command!, [...flags, process.execPath, fixture('lease-worker.mjs'), 'hold', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return child;
}

describe('a lease holder in another pid namespace', () => {
  it('wedged and still writing, it is superseded after takeoverAfter: its late writes are refused', async () => {
    const file = path.join(dir, 'session.lock');
    const transcript = path.join(dir, 'transcript.jsonl');
    // Its event loop never turns while it writes: only the fence stops it.
    const holder = holdInNamespace([file, JSON.stringify({ takeoverAfter: 300 }), transcript, 'wedged:1']);
    const acquired = (await lineFrom(holder, 'acquired')).split(' ');
    expect(acquired[2]).toBe('1'); // pid 1 in its own namespace
    const init = namespaceInitOf(holder.pid!);
    const refused = lineFrom(holder, 'refused');
    const aborted = lineFrom(holder, 'aborted');
    const over = lineFrom(holder, 'wedge over');
    let late = '';
    holder.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('LATE-WRITE')) late += chunk.toString();
    });

    const successor = await lease(file, { takeoverAfter: 60_000, timeout: 20_000 });
    expect(successor.superseded).toBe(BigInt(acquired[1]!));
    for (let seq = 0; seq < 20; seq++) {
      await successor.write(() => appendFileSync(transcript, `${successor.token} ${seq} ${process.pid}\n`));
      await sleep(5);
    }
    expect(await refused).toBe(`refused ${acquired[1]} superseded`);
    expect(await aborted).toBe(`aborted ${acquired[1]} superseded`);
    await over; // it kept trying, every millisecond, until its 3 s were up
    expect(late).toBe('');

    // The transcript: the namespaced writer wrote, then nothing after our first line.
    const tokens = readFileSync(transcript, 'utf8')
      .trim()
      .split('\n')
      .map((line) => BigInt(line.split(' ')[0]!));
    const firstOurs = tokens.indexOf(successor.token);
    expect(firstOurs).toBeGreaterThan(0);
    expect(tokens.slice(firstOurs).every((t) => t === successor.token)).toBe(true);

    // Inspection from the host names the superseded holder, still alive, by its host pid.
    const seen = await inspect(file);
    expect(seen.lease).toMatchObject({ token: String(successor.token) });
    expect(seen.lease?.current).toMatchObject({ token: String(successor.token), pid: process.pid });
    expect(seen.lease?.superseded).toEqual([expect.objectContaining({ token: acquired[1], pid: init, alive: true })]);
    await successor.release();
  });

  it('learns it was superseded without writing or polling: its signal fires on the takeover', async () => {
    const file = path.join(dir, 'idle.lock');
    const holder = holdInNamespace([file, JSON.stringify({ takeoverAfter: 100 })]);
    const token = (await lineFrom(holder, 'acquired')).split(' ')[1]!;
    const aborted = lineFrom(holder, 'aborted');
    const successor = await lease(file, { timeout: 20_000 });
    // The idle holder never calls into the lease: the kernel's notice of the
    // slot write (inotify) is what wakes it.
    expect(await aborted).toBe(`aborted ${token} superseded`);
    await successor.release();
  });

  it('its death hands the lease over at once, without waiting for takeoverAfter', async () => {
    const file = path.join(dir, 'death.lock');
    const holder = holdInNamespace([file, JSON.stringify({ takeoverAfter: 60_000 })]);
    const token = BigInt((await lineFrom(holder, 'acquired')).split(' ')[1]!);
    const init = namespaceInitOf(holder.pid!);
    const waiting = lease(file, { timeout: 30_000 });
    await sleep(200);
    const killed = performance.now();
    process.kill(init, 'SIGKILL');
    const successor = await waiting;
    expect(performance.now() - killed).toBeLessThan(5_000);
    expect(successor.token).toBe(token + 1n);
    expect(successor.superseded).toBeNull();
    await successor.release();
  });
});

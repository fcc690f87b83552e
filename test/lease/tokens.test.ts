// Tokens only go up: 1,000 acquisitions by several processes that are
// SIGKILLed at random instants (in the middle of an acquisition, a token
// write, a fenced write, a release) and restarted. Each holder appends its
// token to a log through a fenced write, so the log is in acquisition order;
// the log must be strictly increasing, and a lease taken afterwards must get
// a larger token than any logged one.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lease } from '../../src/index.js';
import { fixture, lineFrom, sleep, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
const children = new Set<ChildProcess>();
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kl-lease-tokens-'));
});
afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  cleanup();
});

const PROCESSES = 4;
const ACQUISITIONS = 1000;
/** At least this many SIGKILLs land during the run (about 60 on a quiet machine). */
const MIN_KILLS = 30;

function logged(log: string): bigint[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => BigInt(line.split(' ')[0]!));
}

describe('fencing tokens', () => {
  it(`strictly increase over ${ACQUISITIONS} acquisitions by ${PROCESSES} processes with random SIGKILLs`, async () => {
    const file = path.join(dir, 'tokens.lock');
    const log = path.join(dir, 'tokens.log');
    const failures: string[] = [];
    let kills = 0;
    const start = (): ChildProcess => {
      const child = spawn(process.execPath, [fixture('lease-worker.mjs'), 'tokens', file, log], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.on('exit', (code, signal) => {
        // Only our SIGKILL may end a worker: an error would be a protocol failure.
        if (signal !== 'SIGKILL') failures.push(`worker exited ${code ?? signal}: ${stderr}`);
        children.delete(child);
      });
      children.add(child);
      return child;
    };
    const workers = Array.from({ length: PROCESSES }, start);
    await Promise.all(workers.map((w) => lineFrom(w, 'ready')));
    // Kills are spread over the acquisitions (one every 8-24 of them, at a
    // random instant), not over time: a loaded machine acquires more slowly
    // and restarts more slowly, and must not end up doing nothing but restarts.
    // When this loop falls behind the workers (several thresholds passed in
    // one turn, one kill), the run goes on past ACQUISITIONS until MIN_KILLS
    // have landed, so a loaded machine still gets the kills it is judged on.
    const deadline = performance.now() + 100_000;
    let nextKill = 8 + Math.random() * 16;
    for (;;) {
      const count = logged(log).length;
      if ((count >= ACQUISITIONS && kills >= MIN_KILLS) || performance.now() > deadline || failures.length > 0) break;
      await sleep(Math.random() * 40);
      if (count < nextKill) continue;
      const index = Math.floor(Math.random() * workers.length);
      workers[index]!.kill('SIGKILL');
      kills++;
      workers[index] = start();
      nextKill = count + 8 + Math.random() * 16;
    }
    for (const child of children) child.kill('SIGKILL');
    await sleep(50);
    expect(failures).toEqual([]);
    const tokens = logged(log);
    expect(tokens.length).toBeGreaterThanOrEqual(ACQUISITIONS);
    expect(kills).toBeGreaterThanOrEqual(MIN_KILLS);
    for (let i = 1; i < tokens.length; i++) {
      if (tokens[i]! <= tokens[i - 1]!) {
        throw new Error(`token ${tokens[i]} at line ${i + 1} after ${tokens[i - 1]}: tokens went backwards`);
      }
    }
    // A holder that restarts afterwards (all earlier ones dead) still goes up.
    const after = await lease(file);
    expect(after.token).toBeGreaterThan(tokens.at(-1)!);
    await after.release();
  }, 120_000);
});

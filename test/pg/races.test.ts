// 10 000 waits that end in a timeout or an abort, timed to race the grants,
// from four processes (two concurrent callers each) on three names: no two
// holders ever overlap, every outcome is a grant, a timeout or an abort,
// and afterwards pg_locks holds nothing for those names, granted or waiting,
// while every session is still open (a grant that raced a timeout and was
// not released would still be there).

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, expect } from 'vitest';
import { PgLocks } from '../../dist/pg.js';
import { lineFrom, root } from '../helpers.js';
import { adminClient, advisoryLocks, pgIt as it, pgEnv } from './helpers.js';

const env = pgEnv();
const WORKERS = 4;
const ATTEMPTS = 2500; // per worker: 10 000 in all
const NAMES = ['race-a', 'race-b', 'race-c'];
// A long loss deadline: this test is about raced grants, and on a starved
// machine a heartbeat answered late would (rightly) end a session mid-run.
const OPTIONS = { namespace: `races-${process.pid}`, deadPeerMs: 30_000 };
let admin: pg.Client;
const dir = mkdtempSync(path.join(tmpdir(), 'klpg-races-'));
const children: ChildProcess[] = [];

beforeAll(async () => {
  admin = await adminClient(env);
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await admin?.end();
  rmSync(dir, { recursive: true, force: true });
});

it('10 000 timeouts and aborts racing grants: no overlap, nothing left in pg_locks', async () => {
  for (let i = 0; i < WORKERS; i++) {
    children.push(
      spawn(
        process.execPath,
        [`${root}/test/pg/fixtures/race-worker.mjs`, env.url, JSON.stringify(OPTIONS), String(ATTEMPTS), dir, ...NAMES],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      ),
    );
  }
  const lines = await Promise.all(children.map((child) => lineFrom(child, 'done ', 240_000)));
  const stats = lines.map(
    (line) =>
      JSON.parse(line.slice('done '.length)) as {
        granted: number;
        timeouts: number;
        aborts: number;
        overlaps: number;
        other: string[];
      },
  );
  const sum = (field: 'granted' | 'timeouts' | 'aborts' | 'overlaps'): number =>
    stats.reduce((total, s) => total + s[field], 0);
  expect(stats.flatMap((s) => s.other)).toEqual([]);
  expect(sum('overlaps')).toBe(0);
  expect(sum('granted') + sum('timeouts') + sum('aborts')).toBe(WORKERS * ATTEMPTS);
  // Both endings happened often enough to race grants.
  expect(sum('timeouts')).toBeGreaterThan(500);
  expect(sum('aborts')).toBeGreaterThan(500);
  expect(sum('granted')).toBeGreaterThan(500);
  const keys = NAMES.map((name) => new PgLocks(env.url, OPTIONS).keyOf(name));
  // Sessions are all still connected: anything the server still holds or
  // queues for these names would show here.
  expect(await advisoryLocks(admin, keys)).toEqual([]);
  for (const child of children) child.stdin!.end();
}, 300_000);

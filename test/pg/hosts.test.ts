// Several hosts, for real: three network namespaces joined by veth links
// (root needed: skipped as a normal user, never in CI; test/privileges.ts). The server runs in "db", lock holders on
// hosts "a" and "b"; the test cuts a host's link (the interface goes down:
// packets vanish, nobody sends a reset, exactly like a host that lost its
// network or power) and watches, with one clock (CLOCK_MONOTONIC is shared
// by every namespace), who is told what when:
//
// - a holder process killed: the waiter on the other host is granted at once;
// - a holder's link cut: the holder's signal aborts BEFORE the waiter is
//   granted, and the waiter is granted within tcp_user_timeout + slack;
// - a queued waiter's link cut: the server may grant the dead waiter the
//   lock (a phantom), but it is gone within tcp_user_timeout + slack, and
//   the next waiter gets the lock;
// - a session transcript shared by both hosts (kernel-lock/session with the
//   engine): the cut-off holder's hold goes stale before the other host is
//   granted, and the transcript never forks;
// - a counter incremented from both hosts through all of that (one host
//   cut, a process SIGKILLed) loses nothing and never goes back in tokens.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect } from 'vitest';
import { lockKey } from '../../dist/pg.js';
import { lineFrom, root } from '../helpers.js';
import { isRoot, itAsRoot } from '../privileges.js';
import {
  Agent,
  adminClient,
  advisoryLocks,
  monotonicNs,
  msBetween,
  type PgTestEnv,
  pgEnv,
  pgIt,
  SessionAgent,
  startCluster,
  stopCluster,
} from './helpers.js';

pgEnv(); // the machine's PostgreSQL must be set up as for the other suites
// `ip netns add` and veth links between namespaces: a user namespace could
// make them, but not the host's /run/netns that `ip netns exec` and the
// cluster script enter them by.
const it = isRoot ? pgIt : itAsRoot('ip netns and veth links (network namespaces entered through /run/netns)');

const DEAD_PEER_MS = 3000;
const OPTIONS = { deadPeerMs: DEAD_PEER_MS, namespace: 'hosts' };
// Slack on top of the configured detection time: keepalive ticks are whole
// seconds (the kernel checks tcp_user_timeout at the next tick), plus
// scheduling on a loaded 2-core machine.
const SLACK_MS = 2500;
const tag = `klpg${process.pid % 100000}`;
const ns = { db: `${tag}-db`, a: `${tag}-a`, b: `${tag}-b` };
const link = { a: `kl${process.pid % 100000}a`, b: `kl${process.pid % 100000}b` };
const addr = { a: '10.213.1', b: '10.213.2' };
let dir: string;
let clusterDir: string;
const clusterEnv = { KERNEL_LOCK_PG_NETNS: ns.db, KERNEL_LOCK_PG_LISTEN: '*' };
let env: PgTestEnv;
let admin: pg.Client;
const agents: Agent[] = [];
const sessionAgents: SessionAgent[] = [];
const children: ChildProcess[] = [];

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

/** The database as seen from host `host`. */
function urlFrom(host: 'a' | 'b'): string {
  return `postgresql://klpg_app@${addr[host]}.2:${env.port}/klpg_test`;
}

function setLink(host: 'a' | 'b', state: 'up' | 'down'): void {
  ip('-n', ns[host], 'link', 'set', `${link[host]}0`, state);
}

/** Waits for request `id` of `agent` to be granted; fails at once if it failed. */
async function grantOf(agent: Agent, id: string, timeoutMs?: number): Promise<{ t: string; backendPid?: unknown }> {
  const outcome = await agent.outcome(id, timeoutMs);
  if (outcome.event !== 'granted') throw new Error(`lock ${id} was not granted: ${JSON.stringify(outcome)}`);
  return outcome;
}

async function agentOn(host: 'a' | 'b'): Promise<Agent> {
  const agent = await Agent.start(urlFrom(host), OPTIONS, ns[host]);
  agents.push(agent);
  return agent;
}

async function waitersOf(key: bigint): Promise<number> {
  return (await advisoryLocks(admin, [key])).filter((l) => !l.granted).length;
}

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(`/tmp/${tag}-`);
  chmodSync(dir, 0o755); // the server's user must reach the cluster inside
  clusterDir = path.join(dir, 'cluster');
  for (const name of Object.values(ns)) ip('netns', 'add', name);
  for (const name of Object.values(ns)) ip('-n', name, 'link', 'set', 'lo', 'up');
  for (const host of ['a', 'b'] as const) {
    ip(
      'link',
      'add',
      `${link[host]}0`,
      'netns',
      ns[host],
      'type',
      'veth',
      'peer',
      'name',
      `${link[host]}1`,
      'netns',
      ns.db,
    );
    ip('-n', ns[host], 'addr', 'add', `${addr[host]}.1/30`, 'dev', `${link[host]}0`);
    ip('-n', ns.db, 'addr', 'add', `${addr[host]}.2/30`, 'dev', `${link[host]}1`);
    ip('-n', ns[host], 'link', 'set', `${link[host]}0`, 'up');
    ip('-n', ns.db, 'link', 'set', `${link[host]}1`, 'up');
  }
  env = startCluster(clusterDir, clusterEnv);
  admin = await adminClient(env); // over the Unix socket: unaffected by cut links
}, 60_000);

afterAll(async () => {
  for (const agent of agents) await agent.kill();
  for (const child of children) child.kill('SIGKILL');
  await admin?.end();
  try {
    stopCluster(clusterDir, clusterEnv);
  } finally {
    for (const name of Object.values(ns)) {
      try {
        ip('netns', 'del', name);
      } catch {
        // not created
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

describe('kernel-lock/pg across hosts (network namespaces)', () => {
  afterEach(async () => {
    for (const agent of agents.splice(0)) await agent.kill();
    for (const agent of sessionAgents.splice(0)) await agent.kill();
    setLink('a', 'up');
    setLink('b', 'up');
  });

  it('holder on A killed: the waiter on B is granted at once', async () => {
    const a = await agentOn('a');
    const b = await agentOn('b');
    a.send({ op: 'lock', id: 'h', name: 'killed' });
    await grantOf(a, 'h');
    b.send({ op: 'lock', id: 'w', name: 'killed', timeout: 30_000 });
    const key = BigInt(
      (await admin.query("SELECT key::text FROM kernel_lock.owners WHERE name = 'killed'")).rows[0].key,
    );
    await until(async () => (await waitersOf(key)) === 1);
    const killed = monotonicNs();
    await a.kill('SIGKILL');
    const granted = await b.outcome('w');
    expect(granted.event).toBe('granted');
    expect(msBetween(killed, granted.t)).toBeLessThan(2000);
    b.send({ op: 'release', id: 'w' });
    await b.on('released', 'w');
  });

  it("holder on A cut off: A's signal aborts before B is granted; B within tcp_user_timeout + slack", async () => {
    const a = await agentOn('a');
    const b = await agentOn('b');
    a.send({ op: 'lock', id: 'h', name: 'partition' });
    await grantOf(a, 'h');
    b.send({ op: 'lock', id: 'w', name: 'partition', timeout: 60_000 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const cut = monotonicNs();
    setLink('a', 'down');
    const granted = await b.outcome('w', 30_000);
    const lost = await a.on('lost', 'h', 30_000);
    expect(granted, JSON.stringify({ granted, a: a.events })).toMatchObject({ event: 'granted' });
    expect(lost.code).toBe('ERR_KERNEL_LOCK_PG_LOST');
    const lostMs = msBetween(cut, lost.t);
    const grantedMs = msBetween(cut, granted.t);
    // Who was told what when: the holder first, then the waiter.
    expect(BigInt(lost.t)).toBeLessThan(BigInt(granted.t));
    expect(lostMs).toBeLessThanOrEqual(DEAD_PEER_MS * 0.6 + 1000);
    expect(grantedMs).toBeGreaterThanOrEqual(DEAD_PEER_MS * 0.6);
    expect(grantedMs).toBeLessThanOrEqual(DEAD_PEER_MS + SLACK_MS);
    console.log(
      `partition of a holder: holder told after ${lostMs.toFixed(0)} ms, waiter granted after ${grantedMs.toFixed(0)} ms`,
    );
    b.send({ op: 'release', id: 'w' });
    await b.on('released', 'w');
  });

  it('a session transcript shared by A and B (kernel-lock/session on this engine): A cut off is told its hold is stale before B is granted; the transcript never forks', async () => {
    mkdirSync(path.join(dir, 'sessions'), { recursive: true });
    const sessionFile = path.join(dir, 'sessions', 'shared.jsonl');
    const transcript = path.join(dir, 'sessions', 'shared.fenced');
    const on = (host: 'a' | 'b', options: object): SessionAgent => {
      const started = new SessionAgent(urlFrom(host), sessionFile, options, OPTIONS, {
        transcript,
        prefix: ['ip', 'netns', 'exec', ns[host]],
      });
      sessionAgents.push(started);
      return started;
    };
    const a = on('a', {});
    const held = await a.next('locked');
    const b = on('b', { timeoutMs: 60_000 });
    const key = lockKey(OPTIONS.namespace, 'session/shared.jsonl');
    await until(async () => (await waitersOf(key)) === 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const cut = monotonicNs();
    setLink('a', 'down');
    const granted = await b.next('locked', 30_000);
    const stale = await a.next('aborted', 30_000);
    expect(stale).toMatchObject({ code: 'OPENCLAW_SESSION_WRITE_LOCK_STALE', reasons: 'lease-lost,lost' });
    expect(await a.next('refused', 30_000)).toMatchObject({ reasons: 'lease-lost,lost' });
    // Who was told what when: A's session hold went stale first, then B was granted, with a larger token.
    expect(BigInt(stale.t)).toBeLessThan(BigInt(granted.t));
    expect(BigInt(granted.token as string)).toBeGreaterThan(BigInt(held.token as string));
    expect(msBetween(cut, granted.t)).toBeLessThanOrEqual(DEAD_PEER_MS + SLACK_MS);
    await until(async () => readFileSync(transcript, 'utf8').includes(`${granted.token} 3 `));
    // The transcript never forks: every line of A's hold comes before every line of B's.
    const tokens = readFileSync(transcript, 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => line.split(' ')[0]);
    const firstOfB = tokens.indexOf(granted.token as string);
    expect(firstOfB).toBeGreaterThan(0);
    expect(new Set(tokens.slice(0, firstOfB))).toEqual(new Set([held.token]));
    expect(new Set(tokens.slice(firstOfB))).toEqual(new Set([granted.token]));
    console.log(
      `session across hosts, holder cut off: its hold stale after ${msBetween(cut, stale.t).toFixed(0)} ms, the other host granted after ${msBetween(cut, granted.t).toFixed(0)} ms`,
    );
    await b.release();
  });

  it('waiter on A cut off while queued: no phantom holder outlives tcp_user_timeout + slack; the next waiter gets it', async () => {
    const a = await agentOn('a');
    const b = await agentOn('b');
    const c = await agentOn('b');
    b.send({ op: 'lock', id: 'h', name: 'queued' });
    await grantOf(b, 'h');
    const key = BigInt(
      (await admin.query("SELECT key::text FROM kernel_lock.owners WHERE name = 'queued'")).rows[0].key,
    );
    a.send({ op: 'lock', id: 'w', name: 'queued' });
    await until(async () => (await waitersOf(key)) === 1);
    // A's waiting session, first in line.
    const aBackends = new Set((await advisoryLocks(admin, [key])).filter((l) => !l.granted).map((l) => l.pid));
    c.send({ op: 'lock', id: 'w', name: 'queued', timeout: 60_000 });
    await until(async () => (await waitersOf(key)) === 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const cut = monotonicNs();
    setLink('a', 'down');
    await new Promise((resolve) => setTimeout(resolve, 200));
    // The holder on B releases: the server hands the lock to the first in
    // line, A's backend, whose client is gone (a phantom holder). Watch the
    // server's lock table (over the Unix socket) until the phantom is gone.
    b.send({ op: 'release', id: 'h' });
    let phantomSeen = false;
    let phantomGoneMs = Number.NaN;
    const watching = (async () => {
      for (;;) {
        const rows = await advisoryLocks(admin, [key]);
        const phantom = rows.some((l) => l.granted && aBackends.has(l.pid));
        phantomSeen ||= phantom;
        if (!rows.some((l) => aBackends.has(l.pid))) {
          phantomGoneMs = msBetween(cut, monotonicNs());
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const granted = await c.outcome('w', 30_000);
    await watching;
    expect(granted.event).toBe('granted');
    const grantedMs = msBetween(cut, granted.t);
    expect(phantomGoneMs).toBeLessThanOrEqual(DEAD_PEER_MS + SLACK_MS);
    expect(grantedMs).toBeLessThanOrEqual(DEAD_PEER_MS + SLACK_MS);
    const { rows: sessions } = await admin.query('SELECT pid FROM pg_stat_activity WHERE pid = ANY($1)', [
      [...aBackends],
    ]);
    expect(sessions).toEqual([]); // A's waiting session is gone from the server altogether
    // A itself never believed it held the lock; its wait failed.
    const outcome = await a.outcome('w', 30_000);
    expect(outcome.event).toBe('failed');
    console.log(
      `partition of a queued waiter: phantom grant ${phantomSeen ? 'seen' : 'not seen'}, gone after ${phantomGoneMs.toFixed(0)} ms; next waiter granted after ${grantedMs.toFixed(0)} ms; the cut waiter was told ${msBetween(cut, outcome.t).toFixed(0)} ms after the cut (${outcome.code})`,
    );
    c.send({ op: 'release', id: 'w' });
    await c.on('released', 'w');
  });

  it('a counter incremented from both hosts loses nothing through a cut link and a SIGKILL', async () => {
    const journal = path.join(dir, 'journal');
    const stop = path.join(dir, 'stop');
    writeFileSync(journal, '0 0\n');
    const start = (host: 'a' | 'b'): ChildProcess => {
      const child = spawn(
        'ip',
        [
          'netns',
          'exec',
          ns[host],
          process.execPath,
          `${root}/test/pg/fixtures/counter-worker.mjs`,
          urlFrom(host),
          JSON.stringify(OPTIONS),
          journal,
          stop,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      children.push(child);
      return child;
    };
    const workers = { a: [start('a'), start('a')], b: [start('b'), start('b'), start('b')] };
    await Promise.all(
      Object.values(workers)
        .flat()
        .map((w) => lineFrom(w, 'started')),
    );
    await new Promise((resolve) => setTimeout(resolve, 2000));
    setLink('a', 'down');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    workers.b[0]!.kill('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, DEAD_PEER_MS + 2000));
    writeFileSync(stop, '');
    const done = await Promise.all(workers.b.slice(1).map((w) => lineFrom(w, 'done ', 20_000)));
    for (const w of workers.a) w.kill('SIGKILL');
    const lines = readFileSync(journal, 'utf8').trimEnd().split('\n').slice(1);
    const values = lines.map((l) => Number(l.split(' ')[0]));
    const tokens = lines.map((l) => BigInt(l.split(' ')[1]!));
    // Every increment is there exactly once, in order.
    expect(values).toEqual(values.map((_, i) => i + 1));
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]! > tokens[i - 1]!).toBe(true);
    const stats = done.map((d) => JSON.parse(d.slice('done '.length)) as { appended: number; fenced: number });
    expect(stats.every((s) => s.fenced === 0)).toBe(true);
    expect(values.length).toBeGreaterThan(50);
    expect(existsSync(stop)).toBe(true);
    console.log(`counter across hosts: ${values.length} increments, none lost or repeated`);
  }, 60_000);
});

// The published runtime openclaw 2026.9.6 (its file locks go through
// `@openclaw/fs-safe/file-lock` 0.18.1), from the npm registry, on Node 24,
// with its stock file lock and with kernel-lock through `--import
// kernel-lock/openclaw/register`: two real runtime processes contend for
// the config write lock (`openclaw config set`) and for the OAuth profile
// lock (the plugin SDK's upsertAuthProfileWithLock), a holder is SIGKILLed,
// torn, or lives in another pid namespace; and one `openclaw agent --local`
// turn runs on kernel-lock. State on tmpfs; every process is ended by its
// scenario. The figures go to stderr as a table (docs/FS-SAFE.md quotes them).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRuntime, type InstalledRuntime, runtimeCacheDir } from '../../src/demo/runtime/install.js';
import { freePort } from '../../src/demo/runtime/main.js';
import { MOCK_REPLY, MockModel } from '../../src/demo/runtime/mock-model.js';
import { type KilledRow, killedScenario, oauthKilledScenario } from './killed.js';
import {
  type AgentRow,
  agentScenario,
  type PidnsRow,
  pidnsLiveScenario,
  type TornRow,
  tornScenario,
} from './scenarios.js';
import type { Backend, FsSafeContext } from './stage.js';

const SPEC = 'openclaw@2026.9.6';
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const started = performance.now();
const root = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'kernel-lock-e2e-fs-safe-'));
const log = (line: string): void => {
  process.stderr.write(`[e2e fs-safe ${((performance.now() - started) / 1000).toFixed(0)}s] ${line}\n`);
};
let runtime: InstalledRuntime;
let model: MockModel;
const killed = new Map<Backend, KilledRow>();
const oauth = new Map<Backend, KilledRow>();
const pidns = new Map<Backend, PidnsRow>();
const torns = new Map<'both', TornRow>();
const agents = new Map<Backend, AgentRow>();
/** A scenario that threw: its test fails with this, the others still run. */
const failures = new Map<string, Error>();

/** The row of scenario `name`, or the error it failed with. */
function rowOf<K, R>(rows: Map<K, R>, key: K, name: string): R {
  const row = rows.get(key);
  if (row !== undefined) return row;
  throw failures.get(name) ?? new Error(`scenario ${name} did not run`);
}
const killedRow = (backend: Backend) => rowOf(killed, backend, `killed ${backend}`);
const oauthRow = (backend: Backend) => rowOf(oauth, backend, `oauth-killed ${backend}`);
const pidnsRow = (backend: Backend) => rowOf(pidns, backend, `pidns-live ${backend}`);
const tornRow = () => rowOf(torns, 'both', 'torn');
const agentRow = () => rowOf(agents, 'kernel-lock', 'agent kernel-lock');

/** At most this many scenarios at once: each starts two or three runtime processes of ~400 MB. */
const PARALLEL = 3;

async function pool(jobs: Array<() => Promise<void>>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: PARALLEL }, lane));
}

const ms = (value: number | null): string => (value === null ? '-' : `${value} ms`);

function report(): string {
  const lines = [`${SPEC}: two runtime processes on one file lock (state on tmpfs)`];
  for (const backend of ['stock', 'kernel-lock'] as const) {
    const k = killed.get(backend);
    if (k)
      lines.push(
        `killed holder, config lock, ${backend}: waiter granted ${ms(k.grantAfterKillMs)} after the SIGKILL (it had waited ${k.waitedBeforeKillMs} ms, ${k.attemptsBeforeKill} create attempts, backoff step around the kill ${ms(k.stepAroundKillMs)}), committed ${k.waiterCommitted}; record while held: ${k.lockRecord}`,
      );
    const o = oauth.get(backend);
    if (o)
      lines.push(
        `killed holder, OAuth profile lock, ${backend}: waiter granted ${ms(o.grantAfterKillMs)} after the SIGKILL (it had waited ${o.waitedBeforeKillMs} ms, ${o.attemptsBeforeKill} create attempts, backoff step around the kill ${ms(o.stepAroundKillMs)}), saved ${o.waiterCommitted}; record while held: ${o.lockRecord}`,
      );
    const p = pidns.get(backend);
    if (p)
      lines.push(
        `live holder in another pid namespace (its pid ${p.holderPid}), ${backend}: ${p.overlapped ? `OVERLAP: waiter granted ${ms(p.waiterGrantedAfterMs)} after asking, while the holder was inside` : p.waiterGrantedAfterMs !== null ? `no overlap: waiter granted ${ms(p.waiterGrantedAfterMs)} after asking, after the holder's release` : `no overlap: waiter failed after ${ms(p.waiterFailedAfterMs)} (${p.waiterFailure?.code}: ${p.waiterFailure?.message})`}; waiter exit ${p.waiterExit} (${p.waiterSays}); holder exit ${p.holderExit}, committed ${p.holderCommitted}`,
      );
  }
  const torn = torns.get('both');
  if (torn)
    lines.push(
      `torn (empty) lock file left by a stock holder killed after create: ${torn.leftSize} bytes; stock config set exit ${torn.stock.exit}, ${torn.stock.failedCode} after ${ms(torn.stock.failedAfterMs)} and ${torn.stock.attempts} create attempts (${torn.stock.says}); kernel-lock config set exit ${torn.kernelLock.exit}, granted ${ms(torn.kernelLock.grantAfterCallMs)} after asking, committed ${torn.kernelLock.committed}, lock file left: ${torn.kernelLock.lockFileAfter}`,
    );
  const agent = agents.get('kernel-lock');
  if (agent)
    lines.push(
      `agent --local on kernel-lock: exit ${agent.exit}, replied ${agent.replied}, ${agent.seconds.toFixed(1)} s; locks: ${agent.locks.map((l) => `${l.api} ${l.lock} (retries ${l.options?.retries}, stale ${l.options?.staleMs}) granted ${l.granted} released ${l.released}`).join('; ')}`,
    );
  return lines.join('\n');
}

beforeAll(async () => {
  runtime = await ensureRuntime(SPEC, { log });
  log(runtime.installed ? `installed in ${runtime.installSeconds.toFixed(0)} s` : `cached at ${runtime.dir}`);
  model = await MockModel.start();
  const ctx: FsSafeContext = {
    runtime,
    root,
    kernelLockRoot: repo,
    compileCache: path.join(runtimeCacheDir(), 'compile-cache'),
    gatewayPort: await freePort(),
    modelBaseUrl: model.baseUrl,
    log,
  };
  const job =
    (name: string, run: () => Promise<void>): (() => Promise<void>) =>
    async () => {
      const t0 = performance.now();
      try {
        await run();
        log(`${name} done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      } catch (error) {
        failures.set(name, error as Error);
        log(`${name} FAILED after ${((performance.now() - t0) / 1000).toFixed(0)} s: ${(error as Error).message}`);
      }
    };
  // The longest first (the live holder waits out the kernel-lock waiter's 18.8 s budget).
  await pool([
    job(
      'pidns-live kernel-lock',
      async () => void pidns.set('kernel-lock', await pidnsLiveScenario(ctx, 'kernel-lock')),
    ),
    job('torn', async () => void torns.set('both', await tornScenario(ctx))),
    job('pidns-live stock', async () => void pidns.set('stock', await pidnsLiveScenario(ctx, 'stock'))),
    job('killed kernel-lock', async () => void killed.set('kernel-lock', await killedScenario(ctx, 'kernel-lock'))),
    job('killed stock', async () => void killed.set('stock', await killedScenario(ctx, 'stock'))),
    job(
      'oauth-killed kernel-lock',
      async () => void oauth.set('kernel-lock', await oauthKilledScenario(ctx, 'kernel-lock')),
    ),
    job('oauth-killed stock', async () => void oauth.set('stock', await oauthKilledScenario(ctx, 'stock'))),
    job(
      'agent kernel-lock',
      async () => void agents.set('kernel-lock', await agentScenario(ctx, 'kernel-lock', MOCK_REPLY)),
    ),
  ]);
  log(`scenarios done\n${report()}`);
}, 900_000);

afterAll(async () => {
  await model?.close();
  rmSync(root, { recursive: true, force: true });
  log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
});

describe('openclaw 2026.9.6: the config write lock (`openclaw config set`)', () => {
  it('served by the hook: while held, the lock file is a kernel-lock owner record written by the runtime; stock writes its marker', () => {
    for (const row of [killedRow('kernel-lock'), pidnsRow('kernel-lock')]) {
      expect(row.lockRecord).toBe('kernel-lock');
      const record = JSON.parse(row.lockRecordText!) as { argv: string[]; owner: string };
      expect(record.argv.join(' ')).toMatch(/openclaw(\.mjs)? config set gateway\.port|openclaw-config/);
      expect(JSON.parse(record.owner)).toMatchObject({ pid: expect.any(Number), createdAt: expect.any(String) });
    }
    expect(killedRow('stock').lockRecord).toBe('legacy-marker');
    expect(JSON.parse(killedRow('stock').lockRecordText!)).toMatchObject({ pid: expect.any(Number) });
  });

  it('a SIGKILLed holder: with kernel-lock the waiting `config set` is granted within a second and commits; never before the kill', () => {
    const row = killedRow('kernel-lock');
    expect(row.grantedBeforeKill).toBe(false);
    expect(row.grantAfterKillMs).not.toBeNull();
    expect(row.grantAfterKillMs!).toBeLessThan(1000);
    expect(row.waiterCommitted).toBe(true);
    expect(row.waiterExit).toBe(0);
    expect(row.attemptsBeforeKill).toBe(0); // it slept in the kernel: no create attempts
    // Stock, measured the same way: it polls (create attempts ≤ 250 ms apart),
    // and the runtime's policy reclaims a dead pid of this pid namespace at the
    // first attempt after the death, so it commits too.
    const stock = killedRow('stock');
    expect(stock.grantedBeforeKill).toBe(false);
    expect(stock.attemptsBeforeKill).toBeGreaterThan(1);
    expect(stock.waiterCommitted).toBe(true);
  });

  it('a torn (empty) lock file left by a stock holder killed after its create: stock fails every time, kernel-lock proceeds and clears it', () => {
    const torn = tornRow();
    expect(torn.leftSize).toBe(0);
    expect(torn.stock.exit).not.toBe(0);
    expect(torn.stock.failedCode).toBe('file_lock_timeout');
    expect(torn.stock.failedAfterMs!).toBeGreaterThan(15_000); // its 80 retries, ~18.8 s at most
    expect(torn.kernelLock.exit).toBe(0);
    expect(torn.kernelLock.committed).toBe(true);
    expect(torn.kernelLock.grantAfterCallMs, torn.kernelLock.events.join('\n')).not.toBeNull();
    expect(torn.kernelLock.grantAfterCallMs!).toBeLessThan(1000);
    expect(torn.kernelLock.lockFileAfter).toBe(false);
  });

  it('a live holder in another pid namespace: stock takes the lock from it (the overlap is seen); kernel-lock never does and names it', () => {
    const stock = pidnsRow('stock');
    expect(stock.lockRecord).toBe('legacy-marker');
    expect(stock.overlapped).toBe(true);
    const kernel = pidnsRow('kernel-lock');
    expect(kernel.overlapped).toBe(false);
    expect(kernel.waiterFailure?.code).toBe('file_lock_timeout');
    expect(kernel.waiterFailedAfterMs!).toBeGreaterThan(15_000); // the config lock's budget, 18.8 s
    expect(kernel.waiterFailure?.message).toMatch(
      /^file lock timeout for .*openclaw\.json: lock busy after \d+ ms: .*openclaw\.json\.lock held by pid \d+ \(alive, pid \d+ in its own pid namespace/,
    );
    expect(kernel.waiterExit).not.toBe(0);
    // The holder, let go after the waiter, finishes its own write.
    expect(kernel.holderExit).toBe(0);
    expect(kernel.holderCommitted).toBe(true);
  });
});

describe('openclaw 2026.9.6: the OAuth profile lock (upsertAuthProfileWithLock)', () => {
  it('a SIGKILLed holder: kernel-lock grants the waiter within a second; stock waits for its next retry', () => {
    const kernel = oauthRow('kernel-lock');
    expect(kernel.lockRecord).toBe('kernel-lock');
    expect(kernel.grantedBeforeKill).toBe(false);
    expect(kernel.grantAfterKillMs!).toBeLessThan(1000);
    expect(kernel.attemptsBeforeKill).toBe(0);
    expect(kernel.waiterCommitted).toBe(true);
    // Stock backs off exponentially (100 ms doubling to 10 s, jittered): after
    // 8 s of waiting its steps are seconds long, and it gets in at the first
    // attempt after the death, whenever that falls.
    const stock = oauthRow('stock');
    expect(stock.lockRecord).toBe('legacy-marker');
    expect(stock.grantedBeforeKill).toBe(false);
    expect(stock.attemptsBeforeKill).toBeGreaterThan(1);
    expect(stock.stepAroundKillMs!).toBeGreaterThan(1000);
    expect(stock.waiterCommitted).toBe(true);
  });
});

describe('openclaw 2026.9.6: an `agent --local` turn on kernel-lock', () => {
  it('runs, answers, and takes and releases its embedded-state locks (the gateway lock manager) through kernel-lock', () => {
    const agent = agentRow();
    expect(agent.hookLines.filter((line) => line.includes('not replacing'))).toEqual([]);
    expect(agent.exit, agent.says).toBe(0);
    expect(agent.replied).toBe(true);
    const gateway = agent.locks.filter((lock) => lock.api === 'manager(openclaw.gateway-lock).acquire');
    expect(gateway.length).toBeGreaterThan(0);
    for (const lock of gateway) expect(lock).toMatchObject({ granted: true, released: true });
  });
});

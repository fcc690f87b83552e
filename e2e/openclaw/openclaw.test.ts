// The published runtime (openclaw 2026.4.24 from the npm registry, on Node 24
// from the registry) running on kernel-lock through `--import
// kernel-lock/openclaw/register`, end to end, offline: a mock model on
// 127.0.0.1, state on tmpfs, real processes, real SIGKILL, a real pid
// namespace. Each scenario runs in its own state directory; they run
// side by side. Every process started is ended by its scenario (process
// groups; `unshare --kill-child` for the namespace).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRuntime, type InstalledRuntime, runtimeCacheDir } from '../../src/demo/runtime/install.js';
import { freePort } from '../../src/demo/runtime/main.js';
import { MockModel } from '../../src/demo/runtime/mock-model.js';
import { renderRuntimeReport } from '../../src/demo/runtime/report.js';
import {
  RUNTIME_SCENARIOS,
  type RuntimeBackend,
  type RuntimeRow,
  type RuntimeScenarioId,
  runRuntimeScenario,
} from '../../src/demo/runtime/scenarios.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const started = performance.now();
const root = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'kernel-lock-e2e-'));
let runtime: InstalledRuntime;
let model: MockModel;
const rows = new Map<string, RuntimeRow>();
let demoRun: { status: number | null; stdout: string; stderr: string };
const row = (scenario: RuntimeScenarioId, backend: RuntimeBackend): RuntimeRow => {
  const found = rows.get(`${scenario}-${backend}`);
  if (found === undefined) throw new Error(`scenario (${scenario}) ${backend} did not run`);
  return found;
};
const log = (line: string): void => {
  process.stderr.write(`[e2e ${((performance.now() - started) / 1000).toFixed(0)}s] ${line}\n`);
};

// What the suite runs: the SIGKILLed holder (kernel-lock), the live holder
// in another pid namespace (both backends: the stock run must show the
// overlap, so the suite is seen to detect one), and the orphan (kernel-lock).
const RUNS: Array<[RuntimeScenarioId, RuntimeBackend]> = [
  ['a', 'kernel-lock'],
  ['c', 'kernel-lock'],
  ['c', 'stock'],
  ['d', 'kernel-lock'],
];

beforeAll(async () => {
  runtime = await ensureRuntime('openclaw@2026.4.24', { log });
  log(runtime.installed ? `installed in ${runtime.installSeconds.toFixed(0)} s` : `cached at ${runtime.dir}`);
  model = await MockModel.start();
  const ctx = {
    runtime,
    model,
    root,
    kernelLockRoot: repo,
    compileCache: path.join(runtimeCacheDir(), 'compile-cache'),
    gatewayPort: await freePort(),
    followers: 2,
    runId: `e2e${process.pid}`,
    log,
  };
  // Alongside: the user-facing command, `kernel-lock demo --runtime`, on scenario (a).
  const demo = new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(
      process.execPath,
      [
        path.join(repo, 'dist', 'cli.js'),
        'demo',
        '--runtime',
        'openclaw@2026.4.24',
        '--scenarios',
        'a',
        '--followers',
        '1',
        '--json',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
  const results = await Promise.all(
    RUNS.map(([id, backend]) => runRuntimeScenario(ctx, RUNTIME_SCENARIOS.find((s) => s.id === id)!, backend)),
  );
  demoRun = await demo;
  for (const result of results) rows.set(`${result.scenario}-${result.backend}`, result);
  log(`scenarios done\n${renderRuntimeReport(results, runtime.spec)}`);
}, 600_000);

afterAll(async () => {
  await model?.close();
  rmSync(root, { recursive: true, force: true });
  log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
});

describe('openclaw 2026.4.24 on kernel-lock, through --import kernel-lock/openclaw/register', () => {
  it('the hook serves the session lock: the lock record while held is kernel-lock’s, written by the runtime', () => {
    for (const id of ['a', 'c', 'd'] as const) {
      const r = row(id, 'kernel-lock');
      expect(r.hookLines, `(${id}): no refusal`).toEqual([]);
      expect(r.lockRecord, `(${id})`).toBe('kernel-lock');
      const record = JSON.parse(r.lockRecordText!) as { format: string; argv: string[] };
      expect(record.format).toBe('kernel-lock/1');
      expect(record.argv.join(' ')).toContain('openclaw.mjs agent --to +17777777710');
    }
    // Without the hook the runtime writes its own marker.
    expect(row('c', 'stock').lockRecord).toBe('legacy-marker');
  });

  it('a SIGKILLed holder: every following invocation succeeds', () => {
    const r = row('a', 'kernel-lock');
    expect(r.followerOutcomes).toEqual(r.followerOutcomes.map((f) => ({ ...f, ok: true })));
    expect(r.followersOk).toBe(2);
    expect(r.overlappingCalls).toBe(0);
  });

  it('a live holder in another pid namespace is never overlapped; the stock lock is taken from it, and that is detected', () => {
    const kernel = row('c', 'kernel-lock');
    expect(kernel.overlappingCalls).toBe(0);
    expect(kernel.forkedEntries).toBe(0);
    expect(kernel.followersOk).toBe(0); // they waited the runtime's 10 s and gave up
    expect(kernel.victimOutcome).toBe('finished its turn');
    // Same scenario, stock lock: the followers reclaim the live writer's marker.
    const stock = row('c', 'stock');
    expect(stock.overlappingCalls).toBeGreaterThan(0);
    expect(stock.followersOk).toBe(2);
  });

  it('a lock timeout names the holder: pid (one of its processes), command and age', () => {
    const kernel = row('c', 'kernel-lock');
    expect(kernel.firstError).toMatch(
      /^session file locked \(timeout 10000ms\): pid=\d+ \S+\.jsonl\.lock held by pid \d+ \(alive, "[^"]*openclaw[^"]*", held \d+s\)/,
    );
    expect(kernel.namedHolder).toBe(true);
    expect(kernel.victimPids).toContain(kernel.namedPid);
  });

  it('the orphan (wrapper killed, respawned child alive) is reported, not hidden: followers fail naming it', () => {
    const orphan = row('d', 'kernel-lock');
    expect(orphan.followersOk).toBe(0);
    expect(orphan.overlappingCalls).toBe(0);
    expect(orphan.namedHolder).toBe(true);
    expect(orphan.firstError).toMatch(/held by pid \d+ \(alive, "[^"]*", held \d+s\)/);
    expect(renderRuntimeReport([...rows.values()], runtime.spec)).toContain('(d) orphan');
  });
});

describe('kernel-lock demo --runtime openclaw@2026.4.24', () => {
  it('runs scenario (a) with both backends and reports it', () => {
    expect(demoRun.status, demoRun.stderr).toBe(0);
    const report = JSON.parse(demoRun.stdout) as { ok: boolean; rows: RuntimeRow[] };
    expect(report.ok).toBe(true);
    expect(report.rows.map((r) => [r.scenario, r.backend, r.followersOk, r.lockRecord])).toEqual([
      ['a', 'stock', 1, 'legacy-marker'],
      ['a', 'kernel-lock', 1, 'kernel-lock'],
    ]);
  });
});

describe('the timeout error inside the runtime', () => {
  function probe(node: string): Record<string, unknown> {
    const dir = path.join(root, `probe-${path.basename(path.dirname(path.dirname(node)))}`);
    mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
    if (!existsSync(path.join(dir, 'node_modules', 'kernel-lock')))
      symlinkSync(repo, path.join(dir, 'node_modules', 'kernel-lock'));
    const result = spawnSync(
      node,
      [
        '--import',
        'kernel-lock/openclaw/register',
        path.join(repo, 'e2e', 'openclaw', 'fixtures', 'probe-error.mjs'),
        runtime.packageDir,
        path.join(dir, 'sessions', 's.jsonl'),
      ],
      { cwd: dir, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NODE_OPTIONS: '' } },
    );
    expect(result.stderr, result.stderr).not.toMatch(/kernel-lock\/openclaw: not replacing/);
    expect(result.status, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as Record<string, unknown>;
  }

  it.each([
    ['Node 24 (module.registerHooks)', () => runtime.node],
    ['this Node (module.register, off-thread)', () => process.execPath],
  ])('%s: the runtime’s class and code, the holder’s pid, command and age; not a model timeout', (_name, node) => {
    const out = probe(node());
    expect(out.record).toMatchObject({ format: 'kernel-lock/1' });
    expect(out).toMatchObject({
      name: 'SessionWriteLockTimeoutError',
      code: 'OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT',
      runtimeClass: true,
      runtimeCodeCheck: true,
      classifiedAsModelTimeout: false,
    });
    expect(out.holder).toMatchObject({ kind: 'kernel-lock' });
    const holder = out.holder as { pid: number; command: string; heldForMs: number };
    expect(out.pid).toBe(holder.pid);
    expect(holder.command).toContain('probe-error.mjs');
    expect(holder.heldForMs).toBeGreaterThanOrEqual(400);
    expect(out.message).toMatch(
      /^session file locked \(timeout 500ms\): pid=\d+ .*s\.jsonl\.lock held by pid \d+ \(alive, ".*probe-error\.mjs.*", held \d+m?s\)$/,
    );
  });
});

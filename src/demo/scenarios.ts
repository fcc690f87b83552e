// The five scenarios of the barrage, each run once per backend on its own
// session in a temporary sessions directory. Every invocation but the
// victim is a fresh process running one turn, strictly one after another,
// as the reporter's harness did (`docker exec … openclaw agent …` ×30).
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Backend, DemoConfig } from './config.js';
import { inPidNamespace, killPid, Worker } from './processes.js';
import { analyzeTranscript, handoverMs, type TranscriptStats } from './transcript.js';
import type { TurnResult, TurnSpec } from './turn.js';
import { selfCommand } from './workers.js';

export type ScenarioId = 'a' | 'b' | 'c' | 'd' | 'e';

export interface Scenario {
  id: ScenarioId;
  title: string;
  /** What happens to the victim invocation. */
  story: string;
  needsPidNamespace: boolean;
  /** Whether the victim's own turn counts among the invocations expected to succeed. */
  victimExpected: boolean;
  /**
   * Whether the kernel-lock row runs with fencing on: every append goes
   * through lock.write() and a waiter supersedes a turn past its maxHoldMs.
   * That needs the runtime to route its writes so (its later versions do);
   * the other rows need no runtime change.
   */
  fencing: boolean;
}

export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'a',
    title: 'SIGKILL while holding',
    story: 'invocation {victim} is SIGKILLed while it holds the lock',
    needsPidNamespace: false,
    victimExpected: false,
    fencing: false,
  },
  {
    id: 'b',
    title: 'SIGKILL, other pid namespace',
    story: 'invocation {victim} runs in its own pid namespace (another container on the same volume) and is SIGKILLed',
    needsPidNamespace: true,
    victimExpected: false,
    fencing: false,
  },
  {
    id: 'c',
    title: 'live slow writer, other namespace',
    story:
      'invocation {victim} runs in another pid namespace, alive, streaming its turn slowly (each line in two writes): the others must wait',
    needsPidNamespace: true,
    victimExpected: true,
    fencing: false,
  },
  {
    id: 'd',
    title: 'orphan lives on (client killed)',
    story:
      "invocation {victim}'s client is killed; the invocation lives on holding the lock for its whole run, appending progress lines",
    needsPidNamespace: false,
    victimExpected: false,
    fencing: true,
  },
  {
    id: 'e',
    title: 'gateway: hung run abandoned',
    story: 'a long-lived gateway runs every turn in-process; run {victim} hangs and is abandoned at its run timeout',
    needsPidNamespace: false,
    victimExpected: false,
    fencing: true,
  },
];

/** One cell row of the table: a scenario with one backend. */
export interface RunRow {
  scenario: ScenarioId;
  title: string;
  backend: Backend;
  /** Invocations expected to succeed (all but a victim the scenario sabotages). */
  expected: number;
  succeeded: number;
  overlappingWriters: number;
  tornLines: number;
  /** Time the expected invocations spent waiting for the session lock, failed waits included. */
  secondsLost: number;
  firstError: string | null;
  transcript: TranscriptStats;
  results: TurnResult[];
  /** Messages the run wrote to stderr (watchdog lines, for instance). */
  stderr: string[];
  /** Set when the run could not be done here. */
  skipped?: string;
  wallSeconds: number;
  /** This row ran with fencing on: it needs the runtime to route its appends through lock.write(). */
  fencing: boolean;
  /** Appends of a superseded turn that the lock refused (fencing on). */
  fencedWritesRefused: number;
  /**
   * (d), (e): milliseconds from the victim's first transcript line to the
   * next turn's (the turn that got the session after it), from the lines'
   * time stamps; each first line follows its turn's grant by a few ms.
   */
  takeoverMs: number | null;
}

const STARTUP_TIMEOUT_MS = 30_000;

interface RunContext {
  config: DemoConfig;
  backend: Backend;
  sessionFile: string;
  onInvocation: (inv: number) => void;
  stderr: string[];
  /** Fencing on (the kernel-lock rows of (d) and (e)). */
  fencing: boolean;
  /** Results of turns that do not count (the orphan's, the hung run's late one). */
  uncounted: TurnResult[];
}

function turnSpec(ctx: RunContext, inv: number): TurnSpec {
  return {
    inv,
    backend: ctx.backend,
    sessionFile: ctx.sessionFile,
    timeoutMs: ctx.config.timeoutMs,
    workMs: ctx.config.workMs,
    ...(ctx.fencing ? { fencing: true, maxHoldMs: ctx.config.fencedMaxHoldMs } : {}),
  };
}

function collect(ctx: RunContext, worker: Worker): void {
  for (const line of worker.stderr.split('\n')) if (line.trim() !== '') ctx.stderr.push(line.trim());
}

/** One ordinary invocation; `onAcquiring` runs once it is about to take the lock. */
async function runOne(ctx: RunContext, inv: number, onAcquiring?: () => void): Promise<TurnResult> {
  const worker = new Worker(selfCommand('--invocation', turnSpec(ctx, inv)));
  if (onAcquiring) {
    await worker.waitFor('acquiring', STARTUP_TIMEOUT_MS).then(onAcquiring, onAcquiring);
  }
  await worker.closed;
  collect(ctx, worker);
  return (
    worker.results[0] ?? {
      inv,
      ok: false,
      waitedMs: 0,
      error: `invocation process failed (exit ${worker.exitStatus}): ${worker.stderr.trim().split('\n').at(-1) || 'no output'}`,
    }
  );
}

/** The victim of (a)-(d); returns its result when it counts, and processes to wait for at the end. */
async function runVictim(
  scenario: ScenarioId,
  ctx: RunContext,
  inv: number,
): Promise<{ result?: Promise<TurnResult>; background: Worker[]; nextStarting?: () => void }> {
  const { config } = ctx;
  // Holds "forever" unless the scenario says otherwise: it is killed while holding.
  const holdForever = { ...turnSpec(ctx, inv), holdMs: 120_000 };
  if (scenario === 'a' || scenario === 'b') {
    const command = selfCommand('--invocation', holdForever);
    const worker = new Worker(scenario === 'b' ? inPidNamespace(command) : command);
    await worker.waitFor('holding', STARTUP_TIMEOUT_MS);
    // For (b) this kills `unshare`, whose --kill-child makes the kernel SIGKILL the invocation.
    worker.child.kill('SIGKILL');
    await worker.closed;
    return { background: [] };
  }
  if (scenario === 'c') {
    const slow = { ...turnSpec(ctx, inv), slowLines: config.slowLines, chunkGapMs: config.chunkGapMs };
    const worker = new Worker(inPidNamespace(selfCommand('--invocation', slow)), { stdin: true });
    await worker.waitFor('holding', STARTUP_TIMEOUT_MS);
    const result = worker.closed.then(
      () => worker.results[0] ?? { inv, ok: false, waitedMs: 0, error: `slow writer failed: ${worker.stderr.trim()}` },
    );
    // It streams until the next invocation is about to take the lock, then
    // writes its last lines: "longer than the others take to start",
    // whatever this machine's process start-up time is.
    const nextStarting = (): void => {
      worker.child.stdin?.end('finish\n');
    };
    return { result, background: [worker], nextStarting };
  }
  // (d): like `docker exec`, a client relays the invocation; its death leaves the invocation running.
  const orphan = { ...turnSpec(ctx, inv), holdMs: config.orphanRunMs, tickMs: config.orphanTickMs };
  const client = new Worker(selfCommand('--client', orphan));
  await client.waitFor('holding', STARTUP_TIMEOUT_MS);
  client.child.kill('SIGKILL');
  await client.exited;
  return { background: [client] };
}

async function runSequence(scenario: ScenarioId, ctx: RunContext): Promise<TurnResult[]> {
  const results: TurnResult[] = [];
  const background: Worker[] = [];
  let victimResult: Promise<TurnResult> | undefined;
  let nextStarting: (() => void) | undefined;
  for (let inv = 1; inv <= ctx.config.invocations; inv++) {
    ctx.onInvocation(inv);
    if (inv !== ctx.config.victim) {
      results.push(await runOne(ctx, inv, nextStarting));
      nextStarting = undefined;
      continue;
    }
    const victim = await runVictim(scenario, ctx, inv);
    background.push(...victim.background);
    victimResult = victim.result;
    nextStarting = victim.nextStarting;
  }
  nextStarting?.();
  await settle(background, ctx);
  if (victimResult) results.push(await victimResult);
  return results.sort((x, y) => x.inv - y.inv);
}

/** Waits for processes left running (the orphan, the slow writer); kills any still there after a bound. */
async function settle(workers: Worker[], ctx: RunContext): Promise<void> {
  const bound = ctx.config.orphanRunMs + ctx.config.timeoutMs + 30_000;
  for (const worker of workers) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), bound);
    });
    const timedOut = await Promise.race([worker.closed.then(() => false), late]);
    clearTimeout(timer);
    if (timedOut) {
      // Only pids of our own namespace (a client's child); never a pid printed from inside another namespace.
      worker.child.kill('SIGKILL');
      for (const pid of worker.spawnedPids()) killPid(pid);
      await worker.closed;
    }
    collect(ctx, worker);
    ctx.uncounted.push(...worker.results);
  }
}

async function runGateway(ctx: RunContext): Promise<TurnResult[]> {
  ctx.onInvocation(1);
  const worker = new Worker(
    selfCommand('--gateway', {
      backend: ctx.backend,
      sessionFile: ctx.sessionFile,
      config: ctx.config,
      fencing: ctx.fencing,
    }),
  );
  await worker.closed;
  collect(ctx, worker);
  ctx.uncounted.push(...worker.late);
  if (worker.results.length === 0) throw new Error(`the gateway process failed: ${worker.stderr.trim()}`);
  return worker.results;
}

/** Runs one scenario with one backend in `root` and measures it. */
export async function runScenario(
  scenario: Scenario,
  backend: Backend,
  config: DemoConfig,
  root: string,
  onInvocation: (inv: number) => void,
): Promise<RunRow> {
  const dir = path.join(root, `${scenario.id}-${backend}`, 'agents', 'main', 'sessions');
  mkdirSync(dir, { recursive: true });
  const sessionFile = path.join(dir, 'postfix-1777122625.jsonl');
  const fencing = scenario.fencing && backend === 'kernel-lock';
  const ctx: RunContext = { config, backend, sessionFile, onInvocation, stderr: [], fencing, uncounted: [] };
  const started = performance.now();
  const results = scenario.id === 'e' ? await runGateway(ctx) : await runSequence(scenario.id, ctx);
  const wallSeconds = (performance.now() - started) / 1000;
  let text = '';
  try {
    text = readFileSync(sessionFile, 'utf8');
  } catch {
    // no turn wrote anything
  }
  const transcript = analyzeTranscript(text);
  const counted = results.filter((r) => scenario.victimExpected || r.inv !== config.victim);
  const firstFailure = counted.find((r) => !r.ok && r.error !== undefined);
  const everyResult = [...new Set([...results, ...ctx.uncounted])];
  return {
    scenario: scenario.id,
    title: scenario.title,
    backend,
    expected: config.invocations - (scenario.victimExpected ? 0 : 1),
    succeeded: counted.filter((r) => r.ok).length,
    overlappingWriters: transcript.overlappingWriters,
    tornLines: transcript.tornLines,
    secondsLost: counted.reduce((sum, r) => sum + r.waitedMs, 0) / 1000,
    firstError: firstFailure?.error ?? null,
    transcript,
    results,
    stderr: ctx.stderr,
    wallSeconds,
    fencing,
    fencedWritesRefused: everyResult.reduce((sum, r) => sum + (r.refusedWrites ?? 0), 0),
    takeoverMs: scenario.id === 'd' || scenario.id === 'e' ? handoverMs(text, config.victim) : null,
  };
}

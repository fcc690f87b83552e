// The barrage's holder scenarios in the real runtime. Each runs in its own
// state directory (on tmpfs when there is one): one *victim* invocation
// takes the session lock and is held inside its model call by the mock
// model; something is done to it (SIGKILL, a pid namespace, its wrapper
// killed); then *followers* run one after another, as the report's harness
// sent its prompts. Measured: followers that succeeded, model calls that
// overlapped (two writers in one session), transcript entries that forked,
// what the lock file said while the victim held it, and the first error.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { InstalledRuntime } from './install.js';
import { createHome, type Invocation, type InvocationOutcome, startInvocation } from './invocation.js';
import { MOCK_REPLY, type MockModel, overlappingCalls } from './mock-model.js';
import { forkedEntries, lockFileIn, processGroup } from './observe.js';

export type RuntimeScenarioId = 'a' | 'b' | 'c' | 'd';
export type RuntimeBackend = 'stock' | 'kernel-lock';
export const RUNTIME_BACKENDS: readonly RuntimeBackend[] = ['stock', 'kernel-lock'];

/** A holder scenario. */
export interface RuntimeScenario {
  id: RuntimeScenarioId;
  title: string;
  story: string;
  /** The victim runs in its own pid namespace (another container on the same state directory). */
  victimInNamespace: boolean;
  /** What happens to the victim once it holds the lock. */
  fate: 'sigkill' | 'lives' | 'wrapper-killed';
}

export const RUNTIME_SCENARIOS: readonly RuntimeScenario[] = [
  {
    id: 'a',
    title: 'SIGKILL while holding',
    story: 'the holding invocation is SIGKILLed (its whole process group)',
    victimInNamespace: false,
    fate: 'sigkill',
  },
  {
    id: 'b',
    title: 'SIGKILL, other pid namespace',
    story: 'the holding invocation runs in its own pid namespace and is SIGKILLed',
    victimInNamespace: true,
    fate: 'sigkill',
  },
  {
    id: 'c',
    title: 'live holder, other pid namespace',
    story:
      'the holding invocation runs in its own pid namespace and stays alive inside its model call while the others run',
    victimInNamespace: true,
    fate: 'lives',
  },
  {
    id: 'd',
    title: 'orphan: wrapper killed, child lives',
    story:
      "the holding invocation's wrapper is SIGKILLed (a killed `docker exec` client); its respawned child lives on, holding",
    victimInNamespace: false,
    fate: 'wrapper-killed',
  },
];

/** One row of the table: a scenario with one backend. */
export interface RuntimeRow {
  scenario: RuntimeScenarioId;
  title: string;
  backend: RuntimeBackend;
  followers: number;
  followersOk: number;
  /** Pairs of model calls open at the same time on this session. */
  overlappingCalls: number;
  /** Transcript entries that share a parent with another entry (a forked session). */
  forkedEntries: number;
  /** What the lock file held while the victim held the lock. */
  lockRecord: 'kernel-lock' | 'legacy-marker' | 'none';
  lockRecordText: string | null;
  /** The victim's processes (pids in this pid namespace) while it held the lock. */
  victimPids: number[];
  /** The first follower's lock error, as the runtime printed it. */
  firstError: string | null;
  /** The pid that error names (`pid=N`), and whether it is one of the victim's processes. */
  namedPid: number | null;
  namedHolder: boolean;
  /** `kernel-lock/openclaw:` lines the runs wrote (a refusal would show here). */
  hookLines: string[];
  victimOutcome: string;
  seconds: number;
  followerOutcomes: Array<{ ok: boolean; seconds: number; error: string | null }>;
}

/** What every scenario run shares. */
export interface RuntimeContext {
  runtime: InstalledRuntime;
  model: MockModel;
  /** Where state directories go (tmpfs preferred). */
  root: string;
  /** kernel-lock's package root (linked into each state directory). */
  kernelLockRoot: string;
  compileCache: string;
  gatewayPort: number;
  followers: number;
  /** A prefix making this run's tags unique. */
  runId: string;
  log?: (line: string) => void;
}

const STARTUP_MS = 240_000;
const SETTLE_MS = 120_000;

/**
 * The lock error in an invocation's output, if any: the runtime prints it
 * on a line of its own ("Error: session file locked …") and inside
 * diagnostic lines (`error="Error: session file locked …"`); the first kind
 * is preferred, quotes and the "Error: " prefix are dropped.
 */
export function lockError(outcome: InvocationOutcome): string | null {
  const lines = `${outcome.stderr}\n${outcome.stdout}`.split('\n').filter((l) => l.includes('session file locked'));
  const line = lines.find((l) => !l.includes('="')) ?? lines[0];
  if (line === undefined) return null;
  return line.slice(line.indexOf('session file locked')).replace(/"\s*$/, '').trim();
}

function hookLines(outcomes: InvocationOutcome[]): string[] {
  const lines = outcomes.flatMap((o) => o.stderr.split('\n').filter((l) => l.startsWith('kernel-lock/openclaw:')));
  return [...new Set(lines)];
}

/** The invocation's outcome, SIGKILLing its process group if it has not ended within `ms`. */
async function settle(invocation: Invocation, ms: number): Promise<InvocationOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  const outcome = await Promise.race([invocation.exited, late]);
  clearTimeout(timer); // a pending timer would keep the process alive for minutes
  if (outcome !== null) return outcome;
  invocation.killGroup();
  return invocation.exited;
}

/** Runs one scenario with one backend. */
export async function runRuntimeScenario(
  ctx: RuntimeContext,
  scenario: RuntimeScenario,
  backend: RuntimeBackend,
): Promise<RuntimeRow> {
  const started = performance.now();
  const home = createHome(path.join(ctx.root, `${scenario.id}-${backend}`), ctx.runtime, {
    modelBaseUrl: ctx.model.baseUrl,
    gatewayPort: ctx.gatewayPort,
    compileCache: ctx.compileCache,
    kernelLockRoot: ctx.kernelLockRoot,
  });
  const hook = backend === 'kernel-lock';
  const base = `${ctx.runId}-${scenario.id}-${backend}`;
  const victimTag = `${base}-victim`;
  const log = (text: string): void => ctx.log?.(`(${scenario.id}) ${backend}: ${text}`);
  ctx.model.hold(victimTag);
  const victim = startInvocation(ctx.runtime, home, {
    message: `[kl ${victimTag}] prompt 6`,
    hook,
    pidNamespace: scenario.victimInNamespace,
  });
  const spawned: Invocation[] = [victim];
  const outcomes: InvocationOutcome[] = [];
  try {
    await ctx.model.waitForCall(victimTag, STARTUP_MS, victim.exited);
    // The runtime takes the session lock before its model call: the victim holds it now.
    const lockPath = lockFileIn(home.sessionsDir);
    const lockRecordText = lockPath === null ? null : readFileSync(lockPath, 'utf8');
    const lockRecord =
      lockRecordText === null
        ? 'none'
        : lockRecordText.includes('"format":"kernel-lock/1"')
          ? 'kernel-lock'
          : 'legacy-marker';
    const victimPids = processGroup(victim.pgid);
    log(`victim holds the lock (${lockRecord} record; pids ${victimPids.join(', ')})`);
    if (scenario.fate === 'sigkill') {
      victim.killGroup();
      outcomes.push(await victim.exited);
    } else if (scenario.fate === 'wrapper-killed') {
      const wrapperGone = new Promise<void>((resolve) => victim.child.once('exit', () => resolve()));
      victim.killWrapper();
      await wrapperGone;
    }
    const followerOutcomes: RuntimeRow['followerOutcomes'] = [];
    for (let n = 1; n <= ctx.followers; n++) {
      const follower = startInvocation(ctx.runtime, home, {
        message: `[kl ${base}-f${n}] prompt ${6 + n}`,
        hook,
        pidNamespace: false,
      });
      spawned.push(follower);
      const outcome = await settle(follower, STARTUP_MS);
      follower.killGroup();
      outcomes.push(outcome);
      const ok = outcome.code === 0 && outcome.stdout.includes(MOCK_REPLY);
      followerOutcomes.push({
        ok,
        seconds: outcome.seconds,
        error: ok ? null : (lockError(outcome) ?? lastLine(outcome)),
      });
      log(`follower ${n}: ${ok ? 'ok' : 'failed'} (${outcome.seconds.toFixed(1)} s)`);
    }
    ctx.model.release(victimTag);
    let victimOutcome = 'SIGKILLed';
    if (scenario.fate !== 'sigkill') {
      const outcome = await settle(victim, SETTLE_MS);
      outcomes.push(outcome);
      victimOutcome =
        scenario.fate === 'lives'
          ? outcome.code === 0 && outcome.stdout.includes(MOCK_REPLY)
            ? 'finished its turn'
            : `ended (${outcome.signal ?? outcome.code})`
          : 'its orphan finished its turn';
    }
    const firstError = followerOutcomes.find((f) => !f.ok)?.error ?? null;
    const namedPid = firstError === null ? null : Number(/pid=(\d+)/.exec(firstError)?.[1] ?? Number.NaN);
    return {
      scenario: scenario.id,
      title: scenario.title,
      backend,
      followers: ctx.followers,
      followersOk: followerOutcomes.filter((f) => f.ok).length,
      overlappingCalls: overlappingCalls(ctx.model.callsOf(`${base}-`)),
      forkedEntries: forkedEntries(home.sessionsDir),
      lockRecord,
      lockRecordText,
      victimPids,
      firstError,
      namedPid: namedPid !== null && Number.isSafeInteger(namedPid) ? namedPid : null,
      namedHolder: namedPid !== null && victimPids.includes(namedPid),
      hookLines: hookLines(outcomes),
      victimOutcome,
      seconds: (performance.now() - started) / 1000,
      followerOutcomes,
    };
  } finally {
    ctx.model.release(victimTag);
    for (const invocation of spawned) invocation.killGroup();
    await Promise.all(spawned.map((invocation) => invocation.exited));
  }
}

function lastLine(outcome: InvocationOutcome): string {
  const lines = `${outcome.stderr}\n${outcome.stdout}`.split('\n').filter((l) => l.trim() !== '');
  return `exit ${outcome.signal ?? outcome.code}: ${lines.at(-1) ?? 'no output'}`;
}

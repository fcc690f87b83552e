// (killed, oauth-killed) A runtime process holds one of the runtime's file
// locks and is SIGKILLed while a second one waits for it: when does the
// waiter get in, and how did it wait (stock polls with create attempts;
// kernel-lock sleeps in the kernel)?
import path from 'node:path';
import type { Invocation, InvocationOutcome } from '../../src/demo/runtime/invocation.js';
import type { ProbeHold } from './probe-log.js';
import {
  type Backend,
  configuredPort,
  type FsSafeContext,
  isConfig,
  killHolder,
  type LockRecord,
  lastLines,
  lockRecordOf,
  readIfThere,
  Stage,
} from './stage.js';

/** The waiter's polling around the kill, from its create attempts. */
function pollingAround(
  attempts: number[],
  killedAt: number,
): Pick<KilledRow, 'attemptsBeforeKill' | 'stepAroundKillMs'> {
  const before = attempts.filter((t) => t <= killedAt);
  const after = attempts.find((t) => t > killedAt);
  return {
    attemptsBeforeKill: before.length,
    stepAroundKillMs: before.length === 0 || after === undefined ? null : after - before.at(-1)!,
  };
}

/** One killed-holder run: the lock record while held, and how and when the waiter got in. */
export interface KilledRow {
  scenario: 'killed' | 'oauth-killed';
  backend: Backend;
  lockRecord: LockRecord;
  lockRecordText: string | null;
  /** How long the waiter had been waiting for the lock when the holder was killed. */
  waitedBeforeKillMs: number;
  /** The waiter got the lock while the holder was alive (must never happen). */
  grantedBeforeKill: boolean;
  /** From the SIGKILL to the waiter's grant. */
  grantAfterKillMs: number | null;
  /** Stock's create attempts (its polling) while it waited, and its backoff step around the kill: last attempt before it to the first after. */
  attemptsBeforeKill: number;
  stepAroundKillMs: number | null;
  /** The waiter's own outcome: committed its write, exit status. */
  waiterCommitted: boolean;
  waiterExit: number | null;
  waiterSays: string;
}

/** How a killed-holder scenario starts its two processes and judges the waiter. */
interface KilledPlan {
  /** The lock, for messages. */
  lock: string;
  /** Where the holder is held (ProbeHold.target: a target, or a directory of them ending in `/`). */
  hold: string;
  /** Whether an acquisition's target is this lock's. */
  isTarget: (target: string) => boolean;
  /** Starts a process taking the lock, held inside it when `hold` is given. */
  start: (hold?: ProbeHold) => Invocation;
  /** How long the waiter waits before the holder is killed. */
  waitMs: number;
  committed: (outcome: InvocationOutcome) => boolean;
}

/** A holder inside the lock, a waiter at it for `waitMs`, the holder SIGKILLed: when does the waiter get in? */
async function killedHolder(
  stage: Stage,
  scenario: KilledRow['scenario'],
  backend: Backend,
  plan: KilledPlan,
): Promise<KilledRow> {
  const holder = plan.start({ target: plan.hold, at: 'granted' });
  const holding = await stage.waitFor('holding', `holder inside the ${plan.lock}`, { unless: holder.exited });
  const lockFile = `${holding.target}.lock`;
  const lockRecordText = readIfThere(lockFile);
  const waiter = plan.start();
  const called = await stage.waitFor('call', `waiter at the ${plan.lock}`, {
    target: plan.isTarget,
    not: holding.pid,
    unless: waiter.exited,
  });
  // The waiter is in its wait (stock: its retry loop; kernel-lock: the kernel) before the kill.
  await new Promise((resolve) => setTimeout(resolve, plan.waitMs));
  const grantedEarly = stage.probe.events().some((e) => e.ev === 'granted' && e.pid === called.pid);
  const killedAt = killHolder(holder, holding);
  const granted = await stage
    .waitFor('granted', 'waiter granted after the kill', {
      target: plan.isTarget,
      not: holding.pid,
      timeoutMs: 60_000,
      unless: waiter.exited,
    })
    .catch(() => null);
  const outcome = await waiter.exited;
  return {
    scenario,
    backend,
    lockRecord: lockRecordOf(lockRecordText),
    lockRecordText,
    waitedBeforeKillMs: killedAt - called.t,
    grantedBeforeKill: grantedEarly,
    grantAfterKillMs: granted === null ? null : granted.t - killedAt,
    ...pollingAround(stage.attempts(called.pid, lockFile), killedAt),
    waiterCommitted: plan.committed(outcome),
    waiterExit: outcome.code,
    waiterSays: lastLines(outcome),
  };
}

/** (killed) The holder of the config lock is SIGKILLed while a second `config set` has waited 2 s. */
export async function killedScenario(ctx: FsSafeContext, backend: Backend): Promise<KilledRow> {
  const stage = new Stage(ctx, `killed-${backend}`);
  let port = 18800;
  try {
    return await killedHolder(stage, 'killed', backend, {
      lock: 'config lock',
      hold: stage.home.configPath,
      isTarget: isConfig(stage),
      start: (hold) => stage.configSet(backend, ++port, hold === undefined ? {} : { hold }),
      waitMs: 2000,
      // The waiter set the second port.
      committed: () => configuredPort(stage.home) === 18802,
    });
  } finally {
    await stage.end();
  }
}

/**
 * (oauth-killed) The same with the OAuth profile lock, taken by the runtime's
 * upsertAuthProfileWithLock (the plugin SDK's, as a provider plugin saves a
 * credential after its OAuth sign-in). Its options back off up to 10 s
 * between stock attempts, so the waiter waits 8 s before the kill.
 */
export async function oauthKilledScenario(ctx: FsSafeContext, backend: Backend): Promise<KilledRow> {
  const stage = new Stage(ctx, `oauth-killed-${backend}`);
  try {
    const locks = `${path.join(stage.home.stateDir, 'locks', 'oauth-refresh')}/`;
    return await killedHolder(stage, 'oauth-killed', backend, {
      lock: 'OAuth profile lock',
      hold: locks,
      isTarget: (target) => target.startsWith(locks),
      start: (hold) =>
        stage.upsertOAuthProfile(backend, 'openai-codex:kernel-lock', hold === undefined ? {} : { hold }),
      waitMs: 8000,
      committed: (outcome) => outcome.code === 0 && outcome.stdout.includes('"saved":true'),
    });
  } finally {
    await stage.end();
  }
}

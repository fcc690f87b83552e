// Two real runtime processes (openclaw 2026.9.x on Node 24) contending for
// one of the runtime's file locks (`@openclaw/fs-safe/file-lock`), with the
// stock backend and with kernel-lock through `--import
// kernel-lock/openclaw/register`: a torn lock file, a live holder in another
// pid namespace, and an agent turn (the killed holders are in killed.ts).
// The lock probe (fixtures/lock-probe.mjs) reports when each process asks for
// the lock, gets it and lets it go, and holds one process inside the lock (or,
// for the torn marker, between the stock lock file's creation and its payload
// write) for as long as a scenario needs.
import { existsSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ProbeEvent } from './probe-log.js';
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

/** (torn) A stock holder SIGKILLed between its lock file's creation and its payload write; then one `config set` per backend. */
export interface TornRow {
  scenario: 'torn';
  /** The lock file the killed holder left: its size (0: empty). */
  leftSize: number | null;
  stock: {
    exit: number | null;
    failedCode: string | null;
    failedAfterMs: number | null;
    attempts: number;
    says: string;
  };
  kernelLock: {
    exit: number | null;
    grantAfterCallMs: number | null;
    committed: boolean;
    lockFileAfter: boolean;
    /** Its probe events, for a failure message. */
    events: string[];
  };
}

export async function tornScenario(ctx: FsSafeContext): Promise<TornRow> {
  const stage = new Stage(ctx, 'torn');
  try {
    const target = stage.home.configPath;
    const holder = stage.configSet('stock', 18811, { hold: { target, at: 'created' } });
    const holding = await stage.waitFor('holding', 'stock holder between create and payload', {
      unless: holder.exited,
    });
    killHolder(holder, holding);
    await holder.exited;
    const leftSize = existsSync(stage.lockFile) ? statSync(stage.lockFile).size : null;
    // Stock first, alone: it meets only what the killed holder left.
    const stockFrom = stage.probe.count;
    const stockOutcome = await stage.configSet('stock', 18812).exited;
    const stockEvents = stage.probe.events().slice(stockFrom);
    const stockCall = stockEvents.find((e) => e.ev === 'call' && e.target === target);
    const stockFailed = stockEvents.find((e) => e.ev === 'failed' && e.pid === stockCall?.pid);
    const from = stage.probe.count;
    const kernelOutcome = await stage.configSet('kernel-lock', 18813).exited;
    const later = stage.probe.events().slice(from);
    const kernelCall = later.find((e) => e.ev === 'call' && e.target === target);
    const kernelGranted = later.find((e) => e.ev === 'granted' && e.pid === kernelCall?.pid);
    return {
      scenario: 'torn',
      leftSize,
      stock: {
        exit: stockOutcome.code,
        failedCode: stockFailed?.code ?? null,
        failedAfterMs: stockFailed === undefined || stockCall === undefined ? null : stockFailed.t - stockCall.t,
        attempts: stockCall === undefined ? 0 : stage.attempts(stockCall.pid, stage.lockFile).length,
        says: lastLines(stockOutcome),
      },
      kernelLock: {
        exit: kernelOutcome.code,
        grantAfterCallMs:
          kernelGranted === undefined || kernelCall === undefined ? null : kernelGranted.t - kernelCall.t,
        committed: configuredPort(stage.home) === 18813,
        lockFileAfter: existsSync(stage.lockFile),
        events: later.map((e) => `${e.pid} ${e.ev} ${e.target ?? e.lockPath ?? ''}`),
      },
    };
  } finally {
    await stage.end();
  }
}

/**
 * (pidns-live) The holder runs in another pid namespace (another container
 * on the same state directory) and stays inside the config lock until the
 * waiter is done: granted (the lock was taken from a live holder) or failed.
 */
export interface PidnsRow {
  scenario: 'pidns-live';
  backend: Backend;
  /** The holder's pid in its own namespace (what a stock marker records). */
  holderPid: number;
  lockRecord: LockRecord;
  lockRecordText: string | null;
  /** The waiter was granted the lock while the holder was alive inside it: an overlap. */
  overlapped: boolean;
  /** From the waiter's call to its grant (overlap) or its failure. */
  waiterGrantedAfterMs: number | null;
  waiterFailedAfterMs: number | null;
  waiterFailure: { code: string | undefined; message: string | undefined } | null;
  waiterExit: number | null;
  waiterSays: string;
  /** The holder, released after the waiter: finished its own write. */
  holderExit: number | null;
  holderCommitted: boolean;
}

export async function pidnsLiveScenario(ctx: FsSafeContext, backend: Backend): Promise<PidnsRow> {
  const stage = new Stage(ctx, `pidns-live-${backend}`);
  try {
    const target = stage.home.configPath;
    const releaseFile = path.join(stage.home.dir, 'release-holder');
    const holder = stage.configSet(backend, 18821, {
      hold: { target, at: 'granted', releaseFile },
      pidNamespace: true,
    });
    const holding = await stage.waitFor('holding', 'holder (other pid namespace) inside the config lock', {
      unless: holder.exited,
    });
    const lockRecordText = readIfThere(stage.lockFile);
    const waiter = stage.configSet(backend, 18822);
    const called = await stage.waitFor('call', 'waiter at the config lock', {
      target: isConfig(stage),
      not: holding.pid,
      unless: waiter.exited,
    });
    // The waiter's verdict: granted (overlap) or failed; either way it is over.
    const verdict = await stage.probe
      .waitFor(
        (e) => e.pid === called.pid && (e.ev === 'granted' || e.ev === 'failed'),
        `${stage.name}: waiter granted or failed`,
        60_000,
        waiter.exited,
      )
      .catch(() => null);
    const releasedAt = Date.now();
    writeFileSync(releaseFile, '');
    const [holderOutcome, waiterOutcome] = await Promise.all([holder.exited, waiter.exited]);
    // The grant was seen before the holder was told to release, so it came
    // while the holder was inside. On an idle machine the harness can see it
    // within the millisecond of the grant: the clocks tie, hence <=.
    const overlapped = verdict?.ev === 'granted' && verdict.t <= releasedAt;
    return {
      scenario: 'pidns-live',
      backend,
      holderPid: holding.pid,
      lockRecord: lockRecordOf(lockRecordText),
      lockRecordText,
      overlapped,
      waiterGrantedAfterMs: verdict?.ev === 'granted' ? verdict.t - called.t : null,
      waiterFailedAfterMs: verdict?.ev === 'failed' ? verdict.t - called.t : null,
      waiterFailure: verdict?.ev === 'failed' ? { code: verdict.code, message: verdict.message } : null,
      waiterExit: waiterOutcome.code,
      waiterSays: lastLines(waiterOutcome),
      holderExit: holderOutcome.code,
      holderCommitted: configuredPort(stage.home) === 18821,
    };
  } finally {
    await stage.end();
  }
}

/** (agent) One `openclaw agent --local` turn: the file locks it takes, and whether it ran. */
export interface AgentRow {
  scenario: 'agent';
  backend: Backend;
  exit: number | null;
  replied: boolean;
  /** Each acquisition: api, lock file name, options, and whether it was granted and released. */
  locks: Array<{
    api: string;
    lock: string;
    options: ProbeEvent['options'];
    granted: boolean;
    released: boolean;
    caller: string[];
  }>;
  hookLines: string[];
  says: string;
  seconds: number;
}

export async function agentScenario(ctx: FsSafeContext, backend: Backend, reply: string): Promise<AgentRow> {
  const stage = new Stage(ctx, `agent-${backend}`);
  try {
    const outcome = await stage.agentLocal(backend, `[kl fs-safe-agent-${backend}] hello`).exited;
    const events = stage.probe.events();
    const locks = events
      .filter((e) => e.ev === 'call')
      .map((call) => {
        const same = (e: ProbeEvent) => e.pid === call.pid && e.target === call.target;
        return {
          api: call.api ?? '',
          lock: path.relative(stage.home.dir, call.target ?? ''),
          options: call.options,
          granted: events.some((e) => e.ev === 'granted' && same(e)),
          released: events.some((e) => e.ev === 'released' && same(e)),
          caller: call.caller ?? [],
        };
      });
    return {
      scenario: 'agent',
      backend,
      exit: outcome.code,
      replied: outcome.stdout.includes(reply),
      locks,
      hookLines: [
        ...new Set(`${outcome.stderr}`.split('\n').filter((line) => line.startsWith('kernel-lock/openclaw:'))),
      ],
      says: lastLines(outcome),
      seconds: outcome.seconds,
    };
  } finally {
    await stage.end();
  }
}

// Two real runtime processes (openclaw 2026.9.x on Node 24) contending for
// one of the runtime's file locks (`@openclaw/fs-safe/file-lock`), with the
// stock backend and with kernel-lock through `--import
// kernel-lock/openclaw/register`. The lock probe (fixtures/lock-probe.mjs)
// reports when each process asks for the lock, gets it and lets it go, and
// holds one process inside the lock (or, for the torn marker, between the
// stock lock file's creation and its payload write) for as long as a
// scenario needs. Each scenario has its own state directory. Every process
// started is ended (killTree: the runtime's respawned child has its own
// process group; a pid namespace dies with its init).
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { InstalledRuntime } from '../../src/demo/runtime/install.js';
import {
  createHome,
  type Invocation,
  type InvocationOutcome,
  type RuntimeHome,
  startRuntimeCommand,
} from '../../src/demo/runtime/invocation.js';
import { LOCK_PROBE, type ProbeEvent, type ProbeHold, ProbeLog, probeEnv } from './probe-log.js';

export type Backend = 'stock' | 'kernel-lock';

/** What every scenario shares. */
export interface FsSafeContext {
  runtime: InstalledRuntime;
  /** Where state directories go (tmpfs). */
  root: string;
  kernelLockRoot: string;
  compileCache: string;
  gatewayPort: number;
  modelBaseUrl: string;
  log: (line: string) => void;
}

/** A runtime start takes 5–40 s on a loaded 2-core machine. */
const STARTUP_MS = 150_000;
const UPSERT = path.join(path.dirname(LOCK_PROBE), 'upsert-oauth-profile.mjs');

/** What the lock file said. */
export type LockRecord = 'kernel-lock' | 'legacy-marker' | 'empty' | 'none';

function lockRecordOf(text: string | null): LockRecord {
  if (text === null) return 'none';
  if (text === '') return 'empty';
  return text.includes('"format":"kernel-lock/1"') ? 'kernel-lock' : 'legacy-marker';
}

function readIfThere(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** The config's gateway.port (what `config set gateway.port …` committed), or null. */
function configuredPort(home: RuntimeHome): number | null {
  const text = readIfThere(home.configPath);
  if (text === null) return null;
  return (JSON.parse(text) as { gateway?: { port?: number } }).gateway?.port ?? null;
}

/** The runtime's own last words (its error line), for reports. */
export function lastLines(outcome: InvocationOutcome, count = 2): string {
  return `${outcome.stderr}\n${outcome.stdout}`
    .split('\n')
    .map((line) => line.trim())
    .filter(
      (line) =>
        line !== '' && !line.startsWith('kernel-lock/openclaw:') && !/postinstall|DeprecationWarning/.test(line),
    )
    .slice(-count)
    .join(' | ')
    .slice(0, 600);
}

/** One scenario's state directory, probe log and processes. */
class Stage {
  readonly home: RuntimeHome;
  readonly probe: ProbeLog;
  readonly #spawned: Invocation[] = [];

  constructor(
    readonly ctx: FsSafeContext,
    readonly name: string,
  ) {
    this.home = createHome(path.join(ctx.root, name), ctx.runtime, {
      modelBaseUrl: ctx.modelBaseUrl,
      gatewayPort: ctx.gatewayPort,
      compileCache: ctx.compileCache,
      kernelLockRoot: ctx.kernelLockRoot,
    });
    this.probe = new ProbeLog(path.join(this.home.dir, 'probe.jsonl'));
  }

  get lockFile(): string {
    return `${this.home.configPath}.lock`;
  }

  /** `openclaw config set gateway.port <port>`, probed. */
  configSet(backend: Backend, port: number, options: { hold?: ProbeHold; pidNamespace?: boolean } = {}): Invocation {
    return this.#start(backend, ['config', 'set', 'gateway.port', String(port)], options);
  }

  /** The OAuth profile write of a provider plugin (fixtures/upsert-oauth-profile.mjs), probed. */
  upsertOAuthProfile(backend: Backend, profileId: string, options: { hold?: ProbeHold } = {}): Invocation {
    const agentDir = path.join(this.home.stateDir, 'agents', 'main', 'agent');
    return this.#start(backend, [this.ctx.runtime.packageDir, agentDir, profileId], { ...options, script: UPSERT });
  }

  /** `openclaw agent --local --to … --message …` against the mock model, probed. */
  agentLocal(backend: Backend, message: string): Invocation {
    return this.#start(
      backend,
      ['agent', '--local', '--to', '+17777777710', '--message', message, '--timeout', '300'],
      {},
    );
  }

  #start(
    backend: Backend,
    args: string[],
    options: { hold?: ProbeHold; pidNamespace?: boolean; script?: string },
  ): Invocation {
    const invocation = startRuntimeCommand(this.ctx.runtime, this.home, args, {
      hook: backend === 'kernel-lock',
      pidNamespace: options.pidNamespace ?? false,
      preloads: [LOCK_PROBE],
      env: probeEnv(this.probe, options.hold, true),
      ...(options.script === undefined ? {} : { script: options.script }),
    });
    this.#spawned.push(invocation);
    return invocation;
  }

  /** The first event of `ev` by a process other than `not`, for `target`. */
  waitFor(
    ev: ProbeEvent['ev'],
    what: string,
    options: {
      target?: (t: string) => boolean;
      not?: number;
      timeoutMs?: number;
      unless?: Promise<unknown>;
      /** Only events from this index on (ProbeLog.count before the process started). */
      from?: number;
    } = {},
  ): Promise<ProbeEvent> {
    return this.probe.waitFor(
      (e) =>
        e.ev === ev &&
        (options.not === undefined || e.pid !== options.not) &&
        (options.target === undefined || (e.target !== undefined && options.target(e.target))),
      `${this.name}: ${what}`,
      options.timeoutMs ?? STARTUP_MS,
      options.unless,
      options.from,
    );
  }

  /** Stock fs-safe's create attempts on `lockPath` by process `pid` (kernel-lock makes none: it waits in the kernel). */
  attempts(pid: number, lockPath: string): number[] {
    return this.probe
      .events()
      .filter((e) => e.ev === 'attempt' && e.pid === pid && e.lockPath === lockPath)
      .map((e) => e.t);
  }

  /** Ends every process this stage started, then the probe. */
  async end(): Promise<void> {
    for (const invocation of this.#spawned) invocation.killTree();
    await Promise.all(this.#spawned.map((invocation) => invocation.exited));
    this.probe.close();
  }
}

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

/** SIGKILLs the process that holds (the runtime's respawned child, named by the probe), then the rest of its tree. */
function killHolder(holder: Invocation, holding: ProbeEvent): number {
  const at = Date.now();
  process.kill(holding.pid, 'SIGKILL');
  holder.killTree();
  return at;
}

const isConfig = (stage: Stage) => (target: string) => target === stage.home.configPath;

/** (killed) The holder of the config lock is SIGKILLed while a second `config set` waits for it. */
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
    const overlapped = verdict?.ev === 'granted' && verdict.t < releasedAt;
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

// What every e2e scenario of the runtime's file lock stands on: a state
// directory of its own (on tmpfs), the lock probe's event log
// (fixtures/lock-probe.mjs), and the runtime processes it starts, each
// probed, with or without kernel-lock's `--import` hook. Every process a
// stage started is ended with its whole tree (the runtime's respawned child
// has its own process group; a pid namespace dies with its init).
import { readFileSync } from 'node:fs';
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

export function lockRecordOf(text: string | null): LockRecord {
  if (text === null) return 'none';
  if (text === '') return 'empty';
  return text.includes('"format":"kernel-lock/1"') ? 'kernel-lock' : 'legacy-marker';
}

export function readIfThere(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** The config's gateway.port (what `config set gateway.port …` committed), or null. */
export function configuredPort(home: RuntimeHome): number | null {
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
export class Stage {
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

/** SIGKILLs the process that holds (the runtime's respawned child, named by the probe), then the rest of its tree. */
export function killHolder(holder: Invocation, holding: ProbeEvent): number {
  const at = Date.now();
  process.kill(holding.pid, 'SIGKILL');
  holder.killTree();
  return at;
}

/** Whether an acquisition's target is the stage's config file (the config write lock). */
export const isConfig = (stage: Stage) => (target: string) => target === stage.home.configPath;

// Shared utilities of the PostgreSQL engine tests: the test cluster's
// connection info (from the environment: see scripts/pg-cluster.sh), a
// superuser client that reads pg_locks, and agent processes that take locks
// on command and report stamped events.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { root, sleep } from '../helpers.js';
import { inCI, itNeeds, type TestFn } from '../privileges.js';

/** Connection info of a running test cluster. */
export interface PgTestEnv {
  /** Application role over TCP (loopback). */
  url: string;
  /** Application role over the Unix socket. */
  socketUrl: string;
  /** Superuser over the Unix socket. */
  adminUrl: string;
  bin: string;
  dir: string;
  osUser: string;
  port: number;
}

const HOW_TO_START = `No PostgreSQL test cluster: KERNEL_LOCK_PG_URL is not set.
The PostgreSQL engine is tested against a real server. \`npm test\` starts a
throwaway one itself (test/global-setup.ts, with scripts/pg-cluster.sh); when
running vitest some other way, start one and run with its environment:

  . "$(scripts/pg-cluster.sh start)" && npx vitest run test/pg
  scripts/pg-cluster.sh stop          # afterwards

See docs/PG.md ("Running the tests").`;

/** Why this run has no cluster (test/global-setup.ts could not start one), or undefined. */
const unavailable = process.env.KERNEL_LOCK_PG_UNAVAILABLE;

/**
 * \`it\` for the PostgreSQL engine's tests: skipped, one line each, only when a
 * normal user's machine could not start a server for the run (no PostgreSQL
 * installed; only root can install it). Never skipped in CI (test/privileges.ts).
 */
export const pgIt: TestFn = itNeeds(unavailable === undefined, `a PostgreSQL server (${unavailable})`);

/** The test cluster from the environment; throws, saying how to start one, when there is none. */
export function pgEnv(): PgTestEnv {
  const e = process.env;
  const url = e.KERNEL_LOCK_PG_URL;
  if (!url || !e.KERNEL_LOCK_PG_ADMIN_URL || !e.KERNEL_LOCK_PG_BIN) {
    // Only a placeholder: every test of the file is skipped (pgIt), so nothing connects.
    if (unavailable !== undefined && !inCI) return { ...NOWHERE };
    throw new Error(unavailable === undefined ? HOW_TO_START : `${HOW_TO_START}\n\nThis run: ${unavailable}`);
  }
  return {
    url,
    socketUrl: e.KERNEL_LOCK_PG_SOCKET_URL ?? url,
    adminUrl: e.KERNEL_LOCK_PG_ADMIN_URL,
    bin: e.KERNEL_LOCK_PG_BIN,
    dir: e.KERNEL_LOCK_PG_DIR ?? '',
    osUser: e.KERNEL_LOCK_PG_OS_USER ?? '',
    port: Number(e.KERNEL_LOCK_PG_PORT),
  };
}

const NOWHERE: PgTestEnv = {
  url: 'postgresql://nowhere.invalid/none',
  socketUrl: 'postgresql://nowhere.invalid/none',
  adminUrl: 'postgresql://nowhere.invalid/none',
  bin: '/nonexistent',
  dir: '/nonexistent',
  osUser: 'nobody',
  port: 0,
};

/** The cluster script. */
export const clusterScript = `${root}/scripts/pg-cluster.sh`;

/** Starts a cluster in `dir` with scripts/pg-cluster.sh; returns the KERNEL_LOCK_PG_* variables it exports. */
export function startClusterVariables(dir: string, extraEnv: Record<string, string> = {}): Record<string, string> {
  const envFile = execFileSync(clusterScript, ['start', dir], {
    env: { ...process.env, KERNEL_LOCK_PG_PORT: '', ...extraEnv },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
  const text = execFileSync('bash', ['-c', `. "${envFile}" && env -0`], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const vars: Record<string, string> = {};
  for (const entry of text.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0 && entry.startsWith('KERNEL_LOCK_PG_')) vars[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return vars;
}

/** Starts a private cluster in `dir` (for tests that restart the server or move it into a namespace). */
export function startCluster(dir: string, extraEnv: Record<string, string> = {}): PgTestEnv {
  const vars = startClusterVariables(dir, extraEnv);
  return {
    url: vars.KERNEL_LOCK_PG_URL!,
    socketUrl: vars.KERNEL_LOCK_PG_SOCKET_URL!,
    adminUrl: vars.KERNEL_LOCK_PG_ADMIN_URL!,
    bin: vars.KERNEL_LOCK_PG_BIN!,
    dir: vars.KERNEL_LOCK_PG_DIR!,
    osUser: vars.KERNEL_LOCK_PG_OS_USER!,
    port: Number(vars.KERNEL_LOCK_PG_PORT),
  };
}

/** Stops a private cluster and removes its directory. */
export function stopCluster(dir: string, extraEnv: Record<string, string> = {}): void {
  execFileSync(clusterScript, ['stop', dir], { env: { ...process.env, ...extraEnv }, stdio: 'ignore' });
}

/** A superuser client (pg_locks of every session, pg_terminate_backend). */
export async function adminClient(env: PgTestEnv): Promise<pg.Client> {
  const client = new pg.Client(env.adminUrl);
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** Advisory locks of the test database, granted and waiting (optionally only keys in `keys`). */
export async function advisoryLocks(
  admin: pg.Client,
  keys?: readonly bigint[],
): Promise<{ key: bigint; pid: number; mode: string; granted: boolean }[]> {
  const { rows } = await admin.query<{ key: string; pid: number; mode: string; granted: boolean }>(
    `SELECT ((classid::int8 << 32) | objid::int8)::text AS key, pid, mode, granted FROM pg_locks
     WHERE locktype = 'advisory' AND objsubid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
  );
  const all = rows.map((r) => ({ key: BigInt(r.key), pid: r.pid, mode: r.mode, granted: r.granted }));
  return keys === undefined ? all : all.filter((r) => keys.includes(r.key));
}

/** One event an agent printed. */
export interface AgentEvent {
  event: string;
  id?: string;
  t: string;
  [field: string]: unknown;
}

/** A child process taking locks on command (test/pg/fixtures/agent.mjs). */
export class Agent {
  readonly child: ChildProcess;
  readonly events: AgentEvent[] = [];
  stderr = '';
  #waiters: { match: (e: AgentEvent) => boolean; resolve: (e: AgentEvent) => void }[] = [];

  private constructor(child: ChildProcess) {
    this.child = child;
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let event: AgentEvent;
      try {
        event = JSON.parse(line) as AgentEvent;
      } catch {
        return;
      }
      this.events.push(event);
      for (const waiter of [...this.#waiters]) {
        if (waiter.match(event)) {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          waiter.resolve(event);
        }
      }
    });
  }

  /** Starts an agent (inside network namespace `netns` when given) and waits until it is ready. */
  static async start(url: string, options: object = {}, netns?: string): Promise<Agent> {
    const args = [`${root}/test/pg/fixtures/agent.mjs`, url, JSON.stringify(options)];
    const child = netns
      ? spawn('ip', ['netns', 'exec', netns, process.execPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const agent = new Agent(child);
    await agent.next((e) => e.event === 'ready');
    return agent;
  }

  send(command: Record<string, unknown>): void {
    this.child.stdin!.write(`${JSON.stringify(command)}\n`);
  }

  /** The first event (already seen or to come) that matches. */
  next(match: (e: AgentEvent) => boolean, timeoutMs = 30_000): Promise<AgentEvent> {
    const seen = this.events.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `agent: no matching event within ${timeoutMs} ms; events ${JSON.stringify(this.events)}; stderr ${this.stderr}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.push({
        match,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  /** Waits for the event `event` about lock `id`. */
  on(event: string, id: string, timeoutMs?: number): Promise<AgentEvent> {
    return this.next((e) => e.event === event && e.id === id, timeoutMs);
  }

  /** Waits for the end of the request `id`: granted, failed or busy. */
  outcome(id: string, timeoutMs?: number): Promise<AgentEvent> {
    return this.next((e) => e.id === id && ['granted', 'failed', 'busy'].includes(e.event), timeoutMs);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.kill(signal);
    });
  }
}

/** CLOCK_MONOTONIC now, in the agents' unit (ns), as a bigint. */
export const monotonicNs = (): bigint => process.hrtime.bigint();

/** Milliseconds between two agent stamps. */
export function msBetween(from: string | bigint, to: string | bigint): number {
  return Number(BigInt(to) - BigInt(from)) / 1e6;
}

/** One event of a session agent (test/pg/fixtures/session-agent.mjs). */
export interface SessionAgentEvent {
  event: string;
  /** CLOCK_MONOTONIC in ns. */
  t: string;
  [field: string]: unknown;
}

/** A process holding (or trying to hold) a session write lock of kernel-lock/session on the PostgreSQL engine. */
export class SessionAgent {
  readonly child: ChildProcess;
  readonly events: SessionAgentEvent[] = [];
  stderr = '';

  /**
   * Starts test/pg/fixtures/session-agent.mjs: `acquireSessionWriteLock({ sessionFile, ...options, engine })`
   * with `engine = new PgLocks(url, engineOptions)`; with a transcript it appends through `lock.write()`
   * every 20 ms. `prefix` runs it elsewhere (`ip netns exec …`, `unshare …`).
   */
  constructor(
    url: string,
    sessionFile: string,
    options: object,
    engineOptions: object,
    extra: { transcript?: string; prefix?: string[] } = {},
  ) {
    const args = [
      `${root}/test/pg/fixtures/session-agent.mjs`,
      url,
      sessionFile,
      JSON.stringify(options),
      JSON.stringify(engineOptions),
      ...(extra.transcript === undefined ? [] : [extra.transcript]),
    ];
    const command = [...(extra.prefix ?? []), process.execPath, ...args];
    this.child = spawn(command[0]!, command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as SessionAgentEvent);
      } catch {
        // not an event
      }
    });
  }

  /** The first event named `event`, seen or to come. */
  async next(event: string, timeoutMs = 20_000): Promise<SessionAgentEvent> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const seen = this.events.find((e) => e.event === event);
      if (seen !== undefined) return seen;
      if (performance.now() > deadline) {
        throw new Error(
          `session agent: no ${event} event within ${timeoutMs} ms; events ${JSON.stringify(this.events)}; stderr ${this.stderr}`,
        );
      }
      await sleep(10);
    }
  }

  /** Asks it to release; resolves when it has. */
  async release(): Promise<void> {
    this.child.stdin!.write('release\n');
    await this.next('released');
  }

  kill(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}

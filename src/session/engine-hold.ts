// The session lock on a lock engine (the `engine` option): for sessions
// shared across hosts, the lock is held by the engine the caller passes in
// (kernel-lock/pg's PgLocks: a PostgreSQL advisory lock, dropped by the
// server the instant the holder's session ends) instead of a file lock. No
// lock file, no lease file, no legacy markers: the engine is the truth about
// who holds the session, its token fences the hold, and its signal says when
// the lock is lost. This file knows engines only through src/lock/engine.ts;
// it never imports src/pg/ (the caller does).
import path from 'node:path';
import type { EngineLock, LockEngine } from '../lock/engine.js';
import { EngineLockLostError, type FencedHold } from './currency.js';
import type { SessionLockHolder } from './error.js';
import type { Grant } from './held.js';
import { formatAge } from './holder-detail.js';

/**
 * The default engine lock name of a session transcript: `session/<basename>`
 * (`session/<sessionId>.jsonl`). The base name is the one part of the path
 * that is the same on every host whatever the mount point of a shared
 * directory (`/mnt/shared/agents/main/sessions/x.jsonl` on one host is
 * `/data/openclaw/agents/main/sessions/x.jsonl` on another); any longer
 * suffix can differ across mounts, and two hosts naming one transcript
 * differently would both hold it. The runtime names transcripts by a random
 * session id, so base names do not repeat; two files that do share one only
 * wait for each other (too much exclusion, never too little). Pass
 * `lockName` for any other layout.
 */
export function sessionLockName(sessionFile: string): string {
  return `session/${path.basename(path.resolve(sessionFile))}`;
}

/** The key of an engine hold in the table of held sessions (reentrancy): engine kind and lock name. */
export function engineHoldKey(engine: LockEngine, lockName: string): string {
  // File holds are keyed by absolute paths, which start with '/': no clash.
  return `engine:${engine.kind}:${lockName}`;
}

/** Throws a TypeError naming the fix unless `engine` is a LockEngine the session lock can use. */
export function checkEngine(engine: unknown): asserts engine is LockEngine {
  const e = engine as Partial<LockEngine> | null;
  if (typeof e !== 'object' || e === null || typeof e.lock !== 'function' || typeof e.kind !== 'string') {
    throw new TypeError(
      'kernel-lock/session: engine must be a LockEngine (e.g. new PgLocks(url) from kernel-lock/pg), ' +
        `got ${e === null ? 'null' : typeof e}`,
    );
  }
  if (e.kind === 'kernel') {
    throw new TypeError(
      'kernel-lock/session: engine is the kernel engine, which has no fencing token; omit `engine` to lock ' +
        'the session on files (kernel locks with a fenced lease), or pass a PgLocks for sessions shared across hosts',
    );
  }
}

/** What an acquisition on an engine asks for. */
export interface EngineHoldRequest {
  engine: LockEngine;
  key: string;
  lockName: string;
  /** `<session>.lock`: named in errors, never created. */
  lockPath: string;
  owner: string | undefined;
  maxHoldMs: number;
  /** Milliseconds to wait in all (Infinity: forever). */
  timeoutMs: number;
}

/** The engine's wait timed out: who holds the session, as the engine reports it. */
export class EngineHoldTimeout extends Error {
  readonly holder: SessionLockHolder;
  readonly detail: string;
  override readonly cause: unknown;

  constructor(holder: SessionLockHolder, detail: string, cause: unknown) {
    super(detail);
    this.holder = holder;
    this.detail = detail;
    this.cause = cause;
  }
}

type Loose = Record<string, unknown> | null;
const asObject = (value: unknown): Loose =>
  typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
const positive = (value: unknown): number | null =>
  typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : null;

/**
 * The holder an engine's timeout error names. kernel-lock/pg's
 * PgLockTimeoutError carries the server's inspection (`inspection.holders`,
 * each with the owner record of its own session, trusted by the engine only
 * when it is that session's); read defensively, as anything the engine may
 * add or omit. The error's own message is kept in `detail`.
 */
function holderOf(error: unknown, engineKind: string): { holder: SessionLockHolder; detail: string } {
  const inspection = asObject(asObject(error)?.inspection);
  const holders = Array.isArray(inspection?.holders) ? inspection.holders.map(asObject) : [];
  const main = holders.find((h) => asObject(h?.record) !== null) ?? holders[0] ?? null;
  const record = asObject(main?.record);
  const heldForMs = typeof inspection?.heldForMs === 'number' ? inspection.heldForMs : null;
  const holder: SessionLockHolder = {
    pid: positive(record?.pid),
    command: null,
    owner: typeof record?.owner === 'string' ? record.owner : null,
    heldForMs,
    kind: 'engine',
    host: typeof record?.host === 'string' && record.host !== '' ? record.host : null,
    token: typeof record?.token === 'bigint' ? record.token : null,
  };
  if (record === null) {
    const said = error instanceof Error ? error.message : String(error);
    return { holder, detail: `held through the ${engineKind} engine (${said})` };
  }
  return { holder, detail: describeEngineHolder(holder, engineKind) };
}

/** `held by pid 4242 on host web-3 through the pg engine (owner "…", held 4m12s, fencing token 17)`. */
export function describeEngineHolder(holder: SessionLockHolder, engineKind: string): string {
  const parts: string[] = [];
  if (holder.owner !== null) parts.push(`owner ${JSON.stringify(holder.owner.slice(0, 80))}`);
  if (holder.heldForMs !== null) parts.push(`held ${formatAge(holder.heldForMs)}`);
  if (holder.token !== null && holder.token !== undefined) parts.push(`fencing token ${holder.token}`);
  const who = holder.pid === null ? 'a process' : `pid ${holder.pid}`;
  const where = holder.host ? ` on host ${holder.host}` : '';
  return `held by ${who}${where} through the ${engineKind} engine${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

/**
 * The engine lock as the fenced hold a session needs. Current while the
 * engine vouches for the lock (`verify()`: kernel-lock/pg checks that its
 * session answered recently enough that nobody else can have been granted
 * the lock); fenced writes check that right before running. An engine lock
 * cannot be held across a write the way the file fence is: a write that is
 * running when the lock is lost still lands, so the token is what the
 * receiver must check (docs/PG.md, "Sessions shared across hosts").
 */
function fencedHoldOf(lock: EngineLock, token: bigint, engineKind: string): FencedHold {
  const check = (): void => {
    if (lock.signal.aborted) {
      throw new EngineLockLostError(`the ${engineKind} engine lost the lock ${JSON.stringify(lock.name)}`, {
        cause: lock.signal.reason,
      });
    }
    if (!lock.verify()) {
      throw new EngineLockLostError(
        `the ${engineKind} engine no longer vouches for the lock ${JSON.stringify(lock.name)}`,
      );
    }
  };
  return {
    token,
    // Never aborted with a LeaseStaleError: the engine's own signal is followed as `lost` (held.ts).
    signal: lock.signal,
    assertCurrent: check,
    async write<T>(fn: () => T | Promise<T>): Promise<T> {
      check();
      return await fn();
    },
    writeSync<T>(fn: () => T): T {
      check();
      return fn();
    },
    release: () => lock.release(),
    // An engine releases over the network: start it; if the process exits
    // first, its engine session ends and the server drops the lock anyway.
    releaseSync: () => void lock.release().catch(() => {}),
  };
}

const isTimeout = (error: unknown): boolean => asObject(error)?.code === 'ELOCKED';

/**
 * Acquires the session on the engine, waiting as the engine waits (on the
 * server, for kernel-lock/pg). Rejects with EngineHoldTimeout when
 * `timeoutMs` passes first; leaves nothing held on any failure.
 */
export async function acquireOnEngine(req: EngineHoldRequest): Promise<Grant> {
  let lock: EngineLock;
  try {
    lock = await req.engine.lock(req.lockName, {
      timeout: req.timeoutMs,
      ...(req.owner === undefined ? {} : { owner: req.owner }),
    });
  } catch (error) {
    // The code, not the class: the engine may come from another bundle of kernel-lock.
    if (!isTimeout(error)) throw error;
    const { holder, detail } = holderOf(error, req.engine.kind);
    throw new EngineHoldTimeout(holder, detail, error);
  }
  if (typeof lock.token !== 'bigint') {
    await lock.release();
    throw new TypeError(
      `kernel-lock/session: the ${req.engine.kind} engine gave no fencing token for ${JSON.stringify(req.lockName)}; ` +
        'a session lock needs one (kernel-lock/pg has it)',
    );
  }
  return {
    key: req.key,
    lockPath: req.lockPath,
    lockName: req.lockName,
    lease: fencedHoldOf(lock, lock.token, req.engine.kind),
    marker: null,
    maxHoldMs: req.maxHoldMs,
    fencing: false,
    lost: lock.signal,
  };
}

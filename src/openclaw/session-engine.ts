// The `--import` hook's choice of lock engine for the runtime's session
// lock: files by default (kernel-lock/session), PostgreSQL when
// KERNEL_LOCK_SESSION_PG_URL is set, for gateways on several hosts that share
// transcripts (docs/PG.md, "Sessions shared across hosts"). The runtime
// cannot pass an engine itself, so the hook reads it from the environment,
// which its self-respawn and child processes inherit.
import type { LockEngine } from '../lock/engine.js';
import { PgLocks } from '../pg/engine.js';

/** The environment variable that puts the served session lock on PostgreSQL: a connection URL. */
export const SESSION_PG_URL_ENV = 'KERNEL_LOCK_SESSION_PG_URL';

/**
 * The environment variable that sets that engine's `deadPeerMs` (how long the
 * server waits for a silent host before it drops the host's locks; its holders
 * are told they lost them after 60% of it). Unset: PgLocks' default, 10 000 ms.
 */
export const SESSION_PG_DEAD_PEER_MS_ENV = 'KERNEL_LOCK_SESSION_PG_DEAD_PEER_MS';

/**
 * The engine the served session lock uses: undefined (files) when the URL
 * variable is unset or empty, else one PgLocks per call of this function (the
 * hook calls it once per process), made on first use: it connects lazily, and
 * a bad URL, a bad dead-peer setting or a missing `pg` package fails that
 * acquisition with the reason. It never falls back to files, which would not
 * exclude the other hosts.
 */
export function sessionEngineFromEnvironment(env: NodeJS.ProcessEnv = process.env): (() => LockEngine) | undefined {
  const url = env[SESSION_PG_URL_ENV];
  if (url === undefined || url === '') return undefined;
  let engine: PgLocks | undefined;
  return () => {
    engine ??= new PgLocks(url, { deadPeerMs: deadPeerMsFrom(env) });
    return engine;
  };
}

/** KERNEL_LOCK_SESSION_PG_DEAD_PEER_MS as PgLocks takes it; a value that is not plain digits is refused here, a number out of range by PgLocks. */
function deadPeerMsFrom(env: NodeJS.ProcessEnv): number | undefined {
  const text = env[SESSION_PG_DEAD_PEER_MS_ENV];
  if (text === undefined || text.trim() === '') return undefined;
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < 1000 || value > 3_600_000) {
    throw new RangeError(
      `kernel-lock: ${SESSION_PG_DEAD_PEER_MS_ENV}=${JSON.stringify(text)} is not a number of milliseconds from 1000 to 3600000. ` +
        `Set it to, say, 10000 (the default when it is unset), or unset it.`,
    );
  }
  return value;
}

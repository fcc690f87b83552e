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

let engine: PgLocks | undefined;

/**
 * The engine the served session lock uses: undefined (files) when the
 * variable is unset or empty, else one PgLocks per process, made on first use
 * (it connects lazily; a bad URL or a missing `pg` package fails that
 * acquisition with the reason, never falls back to files, which would not
 * exclude the other hosts).
 */
export function sessionEngineFromEnvironment(env: NodeJS.ProcessEnv = process.env): (() => LockEngine) | undefined {
  const url = env[SESSION_PG_URL_ENV];
  if (url === undefined || url === '') return undefined;
  return () => {
    engine ??= new PgLocks(url);
    return engine;
  };
}

// lock() and tryLock() on PostgreSQL advisory locks.
//
// Uncontended: one statement on the process's shared session
// (pg_try_advisory_lock + owner record + fencing token). Contended: the wait
// runs on the server, in pg_advisory_lock on a session of its own, bounded
// by lock_timeout = the time left (set in the same statement); the server
// wakes it when the holder releases or its session ends. Nothing polls, and
// no client-side clock abandons a wait the server still runs.
//
// A timeout, a cancel or an error can race the grant, and a session lock
// outlives the statement that failed: after every failed wait the session
// looks in pg_locks and releases what it finds (RELEASE_RACED_SQL) before
// the session is reused.
import os from 'node:os';
import { onAbort } from '../lock/abort-listeners.js';
import { abortError } from '../lock/errors.js';
import { PgLockError, PgLockTimeoutError } from './errors.js';
import { type HeldState, PgLockHandle, releaseHeld } from './handle.js';
import { describePgInspection, inspectKeys } from './inspect.js';
import { keyParts, lockKey } from './keys.js';
import type { PgLockRequest } from './options.js';
import { type LockSession, PgCode, type Row, sqlState } from './session.js';
import type { Sessions } from './sessions.js';
import { grantSql, HEARTBEAT_SQL, RELEASE_RACED_SQL } from './sql.js';

function display(name: string): string {
  return `pg:${name}`;
}

/**
 * Waits for a session (`promise`: a connection being opened, perhaps) unless
 * the signal aborts or the lock's time runs out first; a session that arrives
 * late goes to `late`. Connecting must not outlast the caller's timeout.
 */
async function sessionFor<T>(
  promise: Promise<T>,
  req: PgLockRequest,
  started: number,
  late: (value: T) => void,
): Promise<T> {
  const { signal } = req;
  // A single attempt (timeout 0) includes connecting; connectionTimeoutMillis bounds that.
  const left = req.timeout === 0 ? Number.POSITIVE_INFINITY : req.timeout - (performance.now() - started);
  if (signal === undefined && !Number.isFinite(left)) return promise;
  let stop = (): void => {};
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<never>((_, reject) => {
    if (signal !== undefined) stop = onAbort(signal, () => reject(abortError(signal, display(req.name))));
    // A timer can fire before its time by the clock (Node measures from the
    // loop's cached time, stale after a long stretch of JavaScript): fire
    // only once the lock's time has really run out, so that the caller, which
    // reads the clock, takes this for the timeout it is.
    const arm = (ms: number): void => {
      timer = setTimeout(() => {
        const rest = req.timeout - (performance.now() - started);
        if (rest > 0) return arm(rest);
        reject(
          new PgLockError(
            'ERR_KERNEL_LOCK_PG_CONNECTION',
            `kernel-lock/pg: no session with PostgreSQL within the lock's timeout (${req.timeout} ms) for ${JSON.stringify(req.name)}: the server is slow to accept connections or unreachable`,
          ),
        );
      }, ms);
    };
    if (Number.isFinite(left)) arm(Math.max(0, left));
  });
  try {
    return await Promise.race([promise, gaveUp]);
  } catch (error) {
    promise.then(late, () => {});
    throw error;
  } finally {
    stop();
    clearTimeout(timer);
  }
}

/** Parameters of grantSql (a wait appends its lock_timeout). */
function grantParams(sessions: Sessions, session: LockSession, key: bigint, req: PgLockRequest): unknown[] {
  const params: unknown[] = [
    key.toString(),
    session.info.backendStartUs,
    sessions.settings.namespace,
    req.name,
    os.hostname(),
    process.pid,
    req.owner ?? null,
  ];
  if (req.mode === 'shared') {
    const { classid, objid } = keyParts(key);
    params.push(String(classid), String(objid));
  }
  return params;
}

/** Releases a grant that raced a failed wait; closes the session if even that fails. */
async function releaseRaced(session: LockSession, key: bigint): Promise<void> {
  if (session.lostReason !== null) return;
  const { classid, objid } = keyParts(key);
  for (let attempt = 0; ; attempt += 1) {
    try {
      await session.query(RELEASE_RACED_SQL, [key.toString(), String(classid), String(objid)]);
      return;
    } catch (error) {
      if (sqlState(error) === PgCode.queryCanceled && attempt < 2) continue;
      session.lose(
        new PgLockError(
          'ERR_KERNEL_LOCK_PG_CONNECTION',
          'kernel-lock/pg: could not check for a grant that raced a failed wait; the session was closed (which drops it)',
          { cause: error },
        ),
      );
      return;
    }
  }
}

/** Turns a granted row into a handle; the key's claim on `session` becomes the held entry. */
async function install(
  sessions: Sessions,
  session: LockSession,
  key: bigint,
  req: PgLockRequest,
  row: Row,
): Promise<PgLockHandle> {
  const state: HeldState = {
    session,
    key,
    mode: req.mode,
    name: req.name,
    objects: sessions.objects,
    released: false,
    controller: new AbortController(),
    recycle: () => sessions.recycle(session),
  };
  session.claims.set(key, {
    lose(reason) {
      if (!state.released) state.controller.abort(reason);
    },
  });
  session.changed();
  if (Number(row.backend_pid) !== session.info.backendPid) {
    // The grant was made by another server process than the session's own:
    // a transaction pooler. The lock stays with a server session that other
    // clients will be handed.
    const reason = new PgLockError(
      'ERR_KERNEL_LOCK_PG_POOLER',
      `kernel-lock/pg: the lock was granted to backend ${row.backend_pid}, not to this session's backend ${session.info.backendPid}: a transaction pooler is in between; connect to PostgreSQL directly`,
    );
    session.lose(reason);
    throw reason;
  }
  if (row.collision !== null && row.collision !== undefined) {
    await releaseHeld(state);
    throw new PgLockError(
      'ERR_KERNEL_LOCK_PG_KEY_COLLISION',
      `kernel-lock/pg: the key of ${JSON.stringify(req.name)} (namespace ${JSON.stringify(sessions.settings.namespace)}) is also held as ${row.collision
        .split('\n')
        .map((n) => JSON.stringify(n))
        .join(', ')}: two names share one 64-bit key; use another namespace for one of them`,
    );
  }
  return new PgLockHandle({
    state,
    namespace: sessions.settings.namespace,
    token: BigInt(row.token ?? '0'),
    acquiredAtMs: Number(row.acquired_at_ms),
  });
}

/** One non-blocking attempt on `session`; null when someone else holds the lock. */
async function tryOn(
  sessions: Sessions,
  session: LockSession,
  key: bigint,
  req: PgLockRequest,
): Promise<PgLockHandle | null> {
  session.claims.set(key, null);
  let rows: Row[];
  try {
    rows = await session.query(grantSql(sessions.objects, req.mode, false), grantParams(sessions, session, key, req));
  } catch (error) {
    session.failed(error);
    // pg_try_advisory_lock may have succeeded before the statement failed.
    await releaseRaced(session, key);
    session.claims.delete(key);
    session.changed();
    throw session.lostReason ?? error;
  }
  if (rows.length === 0) {
    session.claims.delete(key);
    session.changed();
    return null;
  }
  return install(sessions, session, key, req, rows[0]!);
}

async function timeoutError(sessions: Sessions, req: PgLockRequest, key: bigint, started: number): Promise<Error> {
  const waited = performance.now() - started;
  try {
    const shared = await sessions.shared();
    const [inspection] = await inspectKeys(shared, sessions.objects, {
      key,
      name: req.name,
      namespace: sessions.settings.namespace,
      selfPids: sessions.selfPids(),
    });
    return new PgLockTimeoutError(req.name, waited, describePgInspection(inspection!), inspection!);
  } catch (error) {
    return new PgLockTimeoutError(req.name, waited, `(not inspectable: ${(error as Error).message})`, null);
  }
}

/** The contended path: a server-side wait on a session of its own. */
async function waitFor(sessions: Sessions, key: bigint, req: PgLockRequest, started: number): Promise<PgLockHandle> {
  const left = req.timeout - (performance.now() - started);
  if (left <= 0) throw await timeoutError(sessions, req, key, started);
  let session: LockSession;
  try {
    session = await sessionFor(sessions.waiter(), req, started, (s) => sessions.recycle(s));
  } catch (error) {
    // The lock was busy and the time ran out while a waiting session connected.
    if (error instanceof PgLockError && req.timeout - (performance.now() - started) <= 0) {
      throw await timeoutError(sessions, req, key, started);
    }
    throw error;
  }
  // The shared session heartbeats while we wait: this session cannot (its
  // statement is running), and if the server is gone, the wait is too.
  const shared = await sessions.shared().catch(() => null);
  const unwatch = shared?.watch() ?? ((): void => {});
  session.claims.set(key, null);
  sessions.waiting.add(session);
  const params = grantParams(sessions, session, key, req);
  // lock_timeout is whole milliseconds; 0 would mean "forever".
  params.push(Number.isFinite(left) ? String(Math.max(1, Math.ceil(left))) : '0');
  let cancelling: Promise<void> | null = null;
  const stopAbort =
    req.signal === undefined
      ? (): void => {}
      : onAbort(req.signal, () => {
          cancelling = sessions.cancel(session);
        });
  // Not a query timeout: the server bounds the wait (lock_timeout). This
  // only closes a session whose server stopped answering altogether.
  const guard = Number.isFinite(left)
    ? setTimeout(
        () =>
          session.lose(
            new PgLockError(
              'ERR_KERNEL_LOCK_PG_CONNECTION',
              `kernel-lock/pg: no answer from PostgreSQL ${sessions.settings.deadPeerMs} ms after a wait's lock_timeout expired; the waiting session was closed`,
            ),
          ),
        left + sessions.settings.deadPeerMs,
      )
    : undefined;
  let rows: Row[] | undefined;
  let failure: unknown;
  try {
    rows = await session.query(grantSql(sessions.objects, req.mode, true), params);
    if (rows.length === 0) throw new Error('kernel-lock/pg: the server granted the lock but returned no owner record');
  } catch (error) {
    rows = undefined;
    failure = error;
    session.failed(error);
  } finally {
    clearTimeout(guard);
    stopAbort();
    sessions.waiting.delete(session);
    unwatch();
  }
  // A cancel still on its way would hit the next statement: let it land.
  if (cancelling !== null) await cancelling;
  const aborted = req.signal?.aborted === true;
  if (rows !== undefined) {
    if (!aborted) return confirm(sessions, session, key, req, rows[0]!);
    // Granted as the caller gave up: drop it at once.
    const handle = await install(sessions, session, key, req, rows[0]!).catch(() => null);
    await handle?.release();
    throw abortError(req.signal!, display(req.name));
  }
  if (session.lostReason !== null) {
    if (aborted) throw abortError(req.signal!, display(req.name));
    throw session.lostReason;
  }
  await releaseRaced(session, key);
  session.claims.delete(key);
  session.changed();
  sessions.recycle(session);
  if (aborted) throw abortError(req.signal!, display(req.name));
  const state = sqlState(failure);
  if (state === PgCode.lockNotAvailable) throw await timeoutError(sessions, req, key, started);
  if (state === PgCode.queryCanceled) {
    throw new PgLockError(
      'ERR_KERNEL_LOCK_PG_CONNECTION',
      `kernel-lock/pg: the wait for ${JSON.stringify(req.name)} was cancelled on the server (pg_cancel_backend or an administrator)`,
      { cause: failure },
    );
  }
  throw failure;
}

/**
 * The wait's statement may have been sent long ago: its reply does not prove
 * the server heard from this session recently. When it is too old, one
 * heartbeat does, before the lock becomes a handle (whose loss deadline
 * counts from the last such proof) and the caller is told it holds it.
 */
async function confirm(
  sessions: Sessions,
  session: LockSession,
  key: bigint,
  req: PgLockRequest,
  row: Row,
): Promise<PgLockHandle> {
  if (performance.now() + sessions.settings.heartbeatMs >= session.validUntil) {
    let failure: unknown;
    try {
      const beat = await session.query(HEARTBEAT_SQL);
      if (Number(beat[0]?.pid) !== session.info.backendPid) failure = new Error('the backend changed');
    } catch (error) {
      failure = error;
      session.failed(error);
    }
    if (failure !== undefined) {
      // Ending the session is what releases the grant now.
      session.lose(
        new PgLockError(
          'ERR_KERNEL_LOCK_PG_LOST',
          `kernel-lock/pg: the lock ${JSON.stringify(req.name)} was granted, but the session could not be confirmed alive (${(failure as Error).message}); the session was closed`,
          { cause: failure },
        ),
      );
      throw session.lostReason;
    }
  }
  return install(sessions, session, key, req, row);
}

/**
 * Acquires `req` (lock(): waiting up to req.timeout; tryLock(): `once`).
 * Resolves to null only for a single attempt that found the lock held.
 */
export async function acquire(sessions: Sessions, req: PgLockRequest, once: boolean): Promise<PgLockHandle | null> {
  const started = performance.now();
  if (req.signal?.aborted) throw abortError(req.signal, display(req.name));
  const key = lockKey(sessions.settings.namespace, req.name);
  const shared = await sessionFor(sessions.shared(), req, started, () => {});
  if (!shared.claims.has(key)) {
    const handle = await tryOn(sessions, shared, key, req);
    if (handle !== null) {
      if (req.signal?.aborted) {
        await handle.release();
        throw abortError(req.signal, display(req.name));
      }
      return handle;
    }
    if (once) return null;
  } else if (once || req.timeout === 0) {
    // This process holds the key on its shared session: one attempt on a
    // session of its own says whether another holder is compatible.
    const session = await sessions.waiter();
    const handle = await tryOn(sessions, session, key, req).catch((error: unknown) => {
      sessions.recycle(session);
      throw error;
    });
    if (handle === null) sessions.recycle(session);
    if (handle !== null || once) return handle;
  }
  return waitFor(sessions, key, req, started);
}

// BASELINE, NOT PART OF THE LIBRARY: a faithful re-implementation of the
// legacy OpenClaw session write lock (the O_EXCL JSON marker that kernel-lock
// replaces), kept so the demo and the benchmarks compare against the real
// protocol rather than a straw man. Do not use it for anything else.
//
// The protocol, as the legacy module implements it:
// - acquire: open `<lock>` with O_CREAT|O_EXCL ('wx') and write
//   JSON.stringify({ pid, createdAt, starttime }, null, 2);
// - on EEXIST read the marker; reclaim it (rm, then retry at once) when it is
//   stale: no valid pid, the pid is dead (kill(pid, 0)), the pid is alive but
//   its start time differs from the recorded one (recycled), or createdAt is
//   older than staleMs (30 min); a marker without pid/createdAt is judged by
//   its mtime instead;
// - otherwise sleep min(1000, 50 * attempt) ms and retry until timeoutMs;
// - on timeout throw `session file locked (timeout ${timeoutMs}ms): pid=${pid} ${lockPath}`
//   (`unknown` instead of `pid=…` when the marker names none);
// - reentrant acquisitions in one process share the marker (a refcount),
//   only when the caller passes allowReentrant: true (2026.4.22 and later);
// - a watchdog sweep (every 60 s) force-releases markers held longer than
//   maxHoldMs (5 min) by closing and deleting them;
// - exit and SIGINT/SIGTERM/SIGQUIT/SIGABRT handlers delete held markers
//   (they cannot run on SIGKILL, OOM kills or a lost container).
// The demo passes a shorter watchdog interval, scaled like every other
// duration in it; that is the only knob added.

import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

interface LegacyPayload {
  pid?: number;
  createdAt?: string;
  starttime?: number;
}

interface LegacyHeld {
  count: number;
  handle: fs.FileHandle;
  lockPath: string;
  acquiredAt: number;
  maxHoldMs: number;
  releasePromise?: Promise<void> | undefined;
}

/** Legacy defaults. */
export const LEGACY_TIMEOUT_MS = 10_000;
export const LEGACY_STALE_MS = 30 * 60 * 1000;
export const LEGACY_MAX_HOLD_MS = 5 * 60 * 1000;
export const LEGACY_WATCHDOG_INTERVAL_MS = 60_000;

const HELD = new Map<string, LegacyHeld>();
let watchdog: NodeJS.Timeout | undefined;
let cleanupRegistered = false;

function isValidNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

function resolvePositiveMs(value: number | undefined, fallback: number, allowInfinity = false): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) return fallback;
  if (value === Number.POSITIVE_INFINITY) return allowInfinity ? value : fallback;
  return Number.isFinite(value) ? value : fallback;
}

function startTimeOf(pid: number): number | null {
  try {
    const stat = fsSync.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const value = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    return Number.isSafeInteger(value) ? value : null;
  } catch {
    return null;
  }
}

function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readPayload(lockPath: string): Promise<LegacyPayload | null> {
  try {
    const parsed = JSON.parse(await fs.readFile(lockPath, 'utf8')) as Record<string, unknown>;
    const payload: LegacyPayload = {};
    if (isValidNumber(parsed.pid) && parsed.pid > 0) payload.pid = parsed.pid;
    if (typeof parsed.createdAt === 'string') payload.createdAt = parsed.createdAt;
    if (isValidNumber(parsed.starttime)) payload.starttime = parsed.starttime;
    return payload;
  } catch {
    return null;
  }
}

/** Why legacy would call this marker stale (empty: it would wait). */
export function legacyStaleReasons(payload: LegacyPayload | null, staleMs: number, nowMs: number): string[] {
  const pid = isValidNumber(payload?.pid) && payload.pid > 0 ? payload.pid : null;
  const alive = pid !== null && isPidAlive(pid);
  const createdMs = payload?.createdAt ? Date.parse(payload.createdAt) : Number.NaN;
  const ageMs = Number.isFinite(createdMs) ? Math.max(0, nowMs - createdMs) : null;
  const stored = isValidNumber(payload?.starttime) ? payload.starttime : null;
  const recycled = alive && pid !== null && stored !== null && (startTimeOf(pid) ?? stored) !== stored;
  const reasons: string[] = [];
  if (pid === null) reasons.push('missing-pid');
  else if (!alive) reasons.push('dead-pid');
  else if (recycled) reasons.push('recycled-pid');
  if (ageMs === null) reasons.push('invalid-createdAt');
  else if (ageMs > staleMs) reasons.push('too-old');
  return reasons;
}

async function shouldReclaim(lockPath: string, reasons: string[], staleMs: number, nowMs: number): Promise<boolean> {
  if (reasons.length === 0) return false;
  if (!reasons.every((r) => r === 'missing-pid' || r === 'invalid-createdAt')) return true;
  // A marker without pid or date (being written, or garbage): judge by mtime.
  try {
    return nowMs - (await fs.stat(lockPath)).mtimeMs > staleMs;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

async function releaseHeld(key: string, held: LegacyHeld, force = false): Promise<boolean> {
  if (HELD.get(key) !== held) return false;
  if (force) held.count = 0;
  else {
    held.count -= 1;
    if (held.count > 0) return false;
  }
  if (held.releasePromise) {
    await held.releasePromise.catch(() => undefined);
    return true;
  }
  HELD.delete(key);
  held.releasePromise = (async () => {
    await held.handle.close().catch(() => undefined);
    await fs.rm(held.lockPath, { force: true }).catch(() => undefined);
  })();
  try {
    await held.releasePromise;
    return true;
  } finally {
    held.releasePromise = undefined;
  }
}

function startWatchdog(intervalMs: number): void {
  if (watchdog !== undefined) return;
  watchdog = setInterval(() => {
    const now = Date.now();
    for (const [key, held] of HELD) {
      const heldFor = now - held.acquiredAt;
      if (heldFor <= held.maxHoldMs) continue;
      console.warn(
        `[session-write-lock] releasing lock held for ${heldFor}ms (max=${held.maxHoldMs}ms): ${held.lockPath}`,
      );
      void releaseHeld(key, held, true);
    }
  }, intervalMs);
  watchdog.unref();
}

function releaseAllSync(): void {
  for (const [key, held] of HELD) {
    void held.handle.close().catch(() => undefined);
    try {
      fsSync.rmSync(held.lockPath, { force: true });
    } catch {
      // best effort, as legacy
    }
    HELD.delete(key);
  }
}

function registerCleanup(): void {
  if (cleanupRegistered) return;
  cleanupRegistered = true;
  process.on('exit', releaseAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGABRT'] as const) {
    const handler = (): void => {
      releaseAllSync();
      if (process.listenerCount(signal) === 1) {
        process.off(signal, handler);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, handler);
  }
}

/** Options of the legacy session lock (the runtime's contract, plus the demo's watchdog interval). */
export interface LegacySessionLockOptions {
  sessionFile: string;
  timeoutMs?: number;
  staleMs?: number;
  maxHoldMs?: number;
  allowReentrant?: boolean;
  /** Watchdog sweep interval (legacy: 60 s). */
  watchdogIntervalMs?: number;
  /** Install the exit/signal cleanup handlers (legacy: always). Default true. */
  cleanupHandlers?: boolean;
}

/** The legacy acquireSessionWriteLock(), faithfully. */
export async function acquireLegacySessionWriteLock(
  params: LegacySessionLockOptions,
): Promise<{ release(): Promise<void>; lockPath: string }> {
  if (params.cleanupHandlers !== false) registerCleanup();
  startWatchdog(params.watchdogIntervalMs ?? LEGACY_WATCHDOG_INTERVAL_MS);
  const timeoutMs = resolvePositiveMs(params.timeoutMs, LEGACY_TIMEOUT_MS, true);
  const staleMs = resolvePositiveMs(params.staleMs, LEGACY_STALE_MS);
  const maxHoldMs = resolvePositiveMs(params.maxHoldMs, LEGACY_MAX_HOLD_MS);
  const sessionFile = path.resolve(params.sessionFile);
  const dir = path.dirname(sessionFile);
  await fs.mkdir(dir, { recursive: true });
  let realDir = dir;
  try {
    realDir = await fs.realpath(dir);
  } catch {
    // as legacy
  }
  const key = path.join(realDir, path.basename(sessionFile));
  const lockPath = `${key}.lock`;
  return acquireMarker(key, lockPath, timeoutMs, staleMs, maxHoldMs, params.allowReentrant ?? false);
}

/**
 * The baseline's small API for benchmarks: the legacy protocol on an explicit
 * marker path, no reentrancy, no cleanup handlers.
 */
export async function acquireLegacyLock(params: {
  lockPath: string;
  timeoutMs?: number;
  staleMs?: number;
  maxHoldMs?: number;
}): Promise<{ release(): Promise<void>; lockPath: string }> {
  startWatchdog(LEGACY_WATCHDOG_INTERVAL_MS);
  const lockPath = path.resolve(params.lockPath);
  return acquireMarker(
    lockPath,
    lockPath,
    resolvePositiveMs(params.timeoutMs, LEGACY_TIMEOUT_MS, true),
    resolvePositiveMs(params.staleMs, LEGACY_STALE_MS, true),
    resolvePositiveMs(params.maxHoldMs, LEGACY_MAX_HOLD_MS),
    false,
  );
}

async function acquireMarker(
  key: string,
  lockPath: string,
  timeoutMs: number,
  staleMs: number,
  maxHoldMs: number,
  allowReentrant: boolean,
): Promise<{ release(): Promise<void>; lockPath: string }> {
  const existing = HELD.get(key);
  if (allowReentrant && existing) {
    existing.count += 1;
    return { lockPath, release: () => releaseHeld(key, existing).then(() => undefined) };
  }
  const startedAt = Date.now();
  let attempt = 0;
  while (Date.now() - startedAt < timeoutMs) {
    attempt += 1;
    let handle: fs.FileHandle | null = null;
    try {
      handle = await fs.open(lockPath, 'wx');
      const payload: LegacyPayload = { pid: process.pid, createdAt: new Date().toISOString() };
      const starttime = startTimeOf(process.pid);
      if (starttime !== null) payload.starttime = starttime;
      await handle.writeFile(JSON.stringify(payload, null, 2), 'utf8');
      const held: LegacyHeld = { count: 1, handle, lockPath, acquiredAt: Date.now(), maxHoldMs };
      HELD.set(key, held);
      return { lockPath, release: () => releaseHeld(key, held).then(() => undefined) };
    } catch (error) {
      if (handle) {
        await handle.close().catch(() => undefined);
        await fs.rm(lockPath, { force: true }).catch(() => undefined);
      }
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const payload = await readPayload(lockPath);
      const nowMs = Date.now();
      const reasons = legacyStaleReasons(payload, staleMs, nowMs);
      if (await shouldReclaim(lockPath, reasons, staleMs, nowMs)) {
        await fs.rm(lockPath, { force: true });
        continue;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * attempt)));
    }
  }
  const payload = await readPayload(lockPath);
  const owner = typeof payload?.pid === 'number' ? `pid=${payload.pid}` : 'unknown';
  throw Object.assign(new Error(`session file locked (timeout ${timeoutMs}ms): ${owner} ${lockPath}`), {
    name: 'SessionWriteLockTimeoutError',
    code: 'OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT',
    timeoutMs,
    owner,
    lockPath,
  });
}

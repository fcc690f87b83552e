// One agent turn on the session, as the runtime does it: take the session
// write lock, append a `begin` line to the transcript, work, append `end`,
// release. The same code runs with either backend; only the lock differs.
// With `fencing` (kernel-lock only) the turn does what the runtime's later
// versions do: every append goes through the lock's fenced write(), and a
// waiter may supersede the turn once it is older than maxHoldMs.
import { appendFileSync } from 'node:fs';
import { acquireSessionWriteLock } from '../session/acquire.js';
import type { Backend } from './config.js';
import { acquireLegacySessionWriteLock } from './legacy-marker.js';

/** What one invocation is asked to do. */
export interface TurnSpec {
  inv: number;
  backend: Backend;
  sessionFile: string;
  timeoutMs: number;
  workMs: number;
  /** A slow, streaming writer: body lines in two pieces each, this many after it is told to finish. */
  slowLines?: number;
  chunkGapMs?: number;
  maxHoldMs?: number;
  legacyWatchdogIntervalMs?: number;
  /** Per-run acquisitions in a gateway must not join another run's lock. */
  allowReentrant?: boolean;
  /** kernel-lock: appends go through lock.write(), and a waiter may supersede the turn past maxHoldMs. */
  fencing?: boolean;
  /** While holding (a `hold`), append a progress line this often. */
  tickMs?: number;
}

/** How the turn went. */
export interface TurnResult {
  inv: number;
  ok: boolean;
  /** Time spent acquiring the lock (until granted or failed). */
  waitedMs: number;
  error?: string;
  /** The lock was taken away (watchdog) before the turn ended: its last write was dropped. */
  fenced?: boolean;
  /** Appends the lock refused (fencing on): the turn was superseded and tried to write anyway. */
  refusedWrites?: number;
}

interface HeldLock {
  release(): Promise<void>;
  signal?: AbortSignal;
  write?: <T>(fn: () => T | Promise<T>) => Promise<T>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function acquire(spec: TurnSpec): Promise<HeldLock> {
  const common = {
    sessionFile: spec.sessionFile,
    timeoutMs: spec.timeoutMs,
    ...(spec.maxHoldMs === undefined ? {} : { maxHoldMs: spec.maxHoldMs }),
    ...(spec.allowReentrant === undefined ? {} : { allowReentrant: spec.allowReentrant }),
  };
  if (spec.backend === 'legacy') {
    return acquireLegacySessionWriteLock({
      ...common,
      ...(spec.legacyWatchdogIntervalMs === undefined ? {} : { watchdogIntervalMs: spec.legacyWatchdogIntervalMs }),
    });
  }
  return acquireSessionWriteLock({
    ...common,
    owner: `demo invocation ${spec.inv}`,
    ...(spec.fencing ? { fencing: true } : {}),
  });
}

function line(spec: TurnSpec, ev: string, extra: Record<string, unknown> = {}): string {
  return `${JSON.stringify({ inv: spec.inv, ev, pid: process.pid, at: Date.now(), ...extra })}\n`;
}

/**
 * Runs one turn. `hold` (if given) replaces the work: it resolves when the
 * turn may end. A slow writer streams until `streamUntil` resolves.
 */
export async function runTurn(
  spec: TurnSpec,
  hooks: {
    onAcquiring?: () => void;
    onHolding?: () => void;
    hold?: () => Promise<void>;
    streamUntil?: Promise<void>;
  } = {},
): Promise<TurnResult> {
  const transcript = spec.sessionFile;
  hooks.onAcquiring?.();
  const started = performance.now();
  let held: HeldLock;
  try {
    held = await acquire(spec);
  } catch (error) {
    return { inv: spec.inv, ok: false, waitedMs: performance.now() - started, error: (error as Error).message };
  }
  const waitedMs = performance.now() - started;
  let refused = 0;
  // The runtime's append path. With fencing, the lock's fenced write: it
  // refuses once a successor took over. Without, the lock's signal: a lock
  // whose watchdog fired no longer owns the session (kernel-lock aborts
  // `signal`; the legacy lock cannot tell).
  const append = async (text: string): Promise<boolean> => {
    if (spec.fencing && held.write) {
      try {
        await held.write(() => appendFileSync(transcript, text));
        return true;
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'OPENCLAW_SESSION_WRITE_LOCK_STALE') throw error;
        refused += 1;
        return false;
      }
    }
    if (held.signal?.aborted) return false;
    appendFileSync(transcript, text);
    return true;
  };
  try {
    await append(line(spec, 'begin'));
    hooks.onHolding?.();
    if (hooks.hold) {
      // A run that lives on writes progress now and then (a streaming reply).
      let n = 0;
      const ticker = spec.tickMs
        ? setInterval(() => void append(line(spec, 'progress', { n: ++n })).catch(() => {}), spec.tickMs)
        : undefined;
      try {
        await hooks.hold();
      } finally {
        if (ticker) clearInterval(ticker);
      }
    } else if (spec.slowLines) {
      const gap = spec.chunkGapMs ?? 50;
      // Streams until told that the next invocation is trying to start (or
      // a safety bound passes), then streams `slowLines` more lines.
      let told = hooks.streamUntil === undefined;
      void hooks.streamUntil?.then(() => {
        told = true;
      });
      const bound = performance.now() + 20_000;
      let remaining = spec.slowLines;
      for (let n = 1; remaining > 0; n++) {
        // A streamed message: the line is written in two pieces.
        const whole = line(spec, 'chunk', { n, text: 'x'.repeat(40) });
        const cut = Math.floor(whole.length / 2);
        await append(whole.slice(0, cut));
        await sleep(gap);
        await append(whole.slice(cut));
        await sleep(gap);
        if (told || performance.now() > bound) remaining -= 1;
      }
    } else await sleep(spec.workMs);
    const ended = await append(line(spec, 'end'));
    const fencedOut = spec.fencing ? { refusedWrites: refused } : {};
    return ended
      ? { inv: spec.inv, ok: true, waitedMs, ...fencedOut }
      : {
          inv: spec.inv,
          ok: false,
          waitedMs,
          fenced: true,
          ...fencedOut,
          error: spec.fencing
            ? `superseded: ${refused} late write(s) refused`
            : 'lock force-released; final write dropped',
        };
  } finally {
    await held.release();
  }
}

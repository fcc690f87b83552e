// One agent turn on the session, as the runtime does it: take the session
// write lock, append a `begin` line to the transcript, work, append `end`,
// release. The same code runs with either backend; only the lock differs.
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
}

interface HeldLock {
  release(): Promise<void>;
  signal?: AbortSignal;
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
  return acquireSessionWriteLock({ ...common, owner: `demo invocation ${spec.inv}` });
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
  // The runtime's append path: a lock whose watchdog fired no longer owns
  // the session (kernel-lock aborts `signal`; the legacy lock cannot tell).
  const append = (text: string): boolean => {
    if (held.signal?.aborted) return false;
    appendFileSync(transcript, text);
    return true;
  };
  try {
    append(line(spec, 'begin'));
    hooks.onHolding?.();
    if (hooks.hold) await hooks.hold();
    else if (spec.slowLines) {
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
        append(whole.slice(0, cut));
        await sleep(gap);
        append(whole.slice(cut));
        await sleep(gap);
        if (told || performance.now() > bound) remaining -= 1;
      }
    } else await sleep(spec.workMs);
    const ended = append(line(spec, 'end'));
    return ended
      ? { inv: spec.inv, ok: true, waitedMs }
      : { inv: spec.inv, ok: false, waitedMs, fenced: true, error: 'lock force-released; final write dropped' };
  } finally {
    await held.release();
  }
}

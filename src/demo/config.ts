// The demo's knobs. Every duration is compressed from the real runtime's
// (10 s lock timeout, 300 s run timeout, 5 min max hold, 60 s watchdog
// sweep) so a full run takes a minute, and the ratios that decide the
// outcome are kept: see each field.
import { resolveSessionLockMaxHoldFromTimeout } from '../session/durations.js';

export type Backend = 'legacy' | 'kernel-lock';
export const BACKENDS: readonly Backend[] = ['legacy', 'kernel-lock'];

export interface DemoConfig {
  quick: boolean;
  /** Sequential agent invocations per run. */
  invocations: number;
  /** The invocation the scenario does something to (the reported failure started after prompt 6; quick mode: 3). */
  victim: number;
  /** Each turn's work between its begin and end lines. */
  workMs: number;
  /** Session lock acquisition timeout of every invocation. */
  timeoutMs: number;
  /**
   * (c): the slow writer streams lines, each in two pieces `chunkGapMs`
   * apart, until the next invocation is about to take the lock, then
   * `slowLines` more (about slowLines × 2 × chunkGapMs, well inside the timeout).
   */
  slowLines: number;
  chunkGapMs: number;
  /** (d): how long the orphaned invocation keeps running (and holding) after its client died. */
  orphanRunMs: number;
  /** (e): the gateway abandons a run after this long (longer than a lock wait plus a turn). */
  runTimeoutMs: number;
  /**
   * (e): maxHoldMs for both backends, by the runtime's rule (run timeout +
   * grace) with a compressed grace: short enough that the run after the hung
   * one can still get the lock within its own timeout.
   */
  maxHoldMs: number;
  /** (e): the legacy watchdog sweep interval, compressed in the same ratio as 60 s : 5 min. */
  legacyWatchdogIntervalMs: number;
  /** (e): when the hung run wakes up and tries to finish its turn. */
  hangWakeMs: number;
  /**
   * (d), fencing on: the orphan's maxHoldMs, after which the next invocation
   * supersedes it. Compressed below the lock timeout, so that the first
   * invocation after the orphan waits it out instead of timing out (in the
   * runtime, maxHoldMs is minutes and the lock timeout 10 to 60 s: the
   * invocations inside the orphan's maxHoldMs still time out, and the first
   * one after it proceeds).
   */
  fencedMaxHoldMs: number;
  /** (d): the orphan appends a progress line this often while it lives on (its late writes, once superseded). */
  orphanTickMs: number;
}

/** The configuration for `--quick` (CI) or a full run, with an optional lock timeout. */
export function demoConfig(options: { quick: boolean; timeoutMs?: number | undefined }): DemoConfig {
  const quick = options.quick;
  const timeoutMs = options.timeoutMs ?? (quick ? 1000 : 2000);
  // A run may wait for the lock and still finish inside its own timeout.
  const runTimeoutMs = Math.round(timeoutMs * 1.5);
  const maxHoldMs = resolveSessionLockMaxHoldFromTimeout({
    timeoutMs: runTimeoutMs,
    graceMs: Math.round(runTimeoutMs / 3),
    minMs: runTimeoutMs,
  });
  return {
    quick,
    // Quick (CI): two turns before the victim and four after it; each is a
    // process start, the bulk of the run time on a loaded machine.
    invocations: quick ? 7 : 30,
    victim: quick ? 3 : 6,
    workMs: quick ? 30 : 100,
    timeoutMs,
    slowLines: 4,
    chunkGapMs: 50,
    // Long enough for several invocations in a row to time out, as in the report.
    orphanRunMs: timeoutMs * 4,
    runTimeoutMs,
    maxHoldMs,
    legacyWatchdogIntervalMs: Math.round(maxHoldMs / 5),
    hangWakeMs: runTimeoutMs * 2,
    fencedMaxHoldMs: Math.round(timeoutMs / 2),
    orphanTickMs: Math.round(timeoutMs / 4),
  };
}

// Processes that take part in the file-lock contract: this repository's
// kernel-lock/fs-safe or the published @openclaw/fs-safe (0.18.1, 0.21.0),
// optionally inside another pid namespace.
import { fixture, type Holder, lineFrom, runFixture, spawnHolder } from '../../helpers.js';

export type Impl = 'kernel' | 'stock-0.18' | 'stock-0.21';

/** Options a party passes through (payload is an object here; policy "runtime" is openclaw's stale policy). */
export type PartyOptions = Record<string, unknown>;

/** A process holding `target` until told otherwise. */
export function holdIn(impl: Impl, target: string, options: PartyOptions = {}, prefix: string[] = []): Promise<Holder> {
  const args = [fixture('fs-safe-party.mjs'), impl, 'hold', target, JSON.stringify(options)];
  return prefix.length === 0
    ? spawnHolder(process.execPath, args)
    : spawnHolder(prefix[0]!, [...prefix.slice(1), process.execPath, ...args]);
}

/** Tells a hold party to release and waits until it has. */
export async function releaseHeld(holder: Holder): Promise<void> {
  const released = lineFrom(holder.child, 'released');
  holder.child.stdin?.write('release\n');
  await released;
}

/** The outcome of one acquisition attempt in a fresh process. */
export interface Attempt {
  ok: boolean;
  ms: number;
  code?: string;
  message?: string;
  name?: string;
}

/** One acquisition (then release) in a separate process. */
export async function attemptIn(impl: Impl, target: string, options: PartyOptions = {}, timeoutMs = 30_000) {
  return (await runFixture('fs-safe-party.mjs', [impl, 'try', target, JSON.stringify(options)], {
    timeoutMs,
  })) as unknown as Attempt;
}

/** Starts an attempt without waiting for it. */
export function startAttempt(impl: Impl, target: string, options: PartyOptions = {}) {
  return attemptIn(impl, target, options, 60_000);
}

/** The error `run` fails with (a test failure if it succeeds). */
export async function failure<E = Error & { code?: unknown }>(run: () => unknown): Promise<E> {
  try {
    await run();
  } catch (error) {
    return error as E;
  }
  throw new Error('expected a failure');
}

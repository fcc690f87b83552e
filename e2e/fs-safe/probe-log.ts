// The harness's side of the lock probe (fixtures/lock-probe.mjs): the
// events the probed runtime processes append to one file, read as they
// arrive (inotify on the file, no polling), and waited for.
import { type FSWatcher, readFileSync, watch, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The probe preload, for RuntimeCommandOptions.preloads. */
export const LOCK_PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'lock-probe.mjs');

/** One event of a probed process (see fixtures/lock-probe.mjs). */
export interface ProbeEvent {
  ev: 'call' | 'granted' | 'failed' | 'released' | 'holding' | 'resumed' | 'created' | 'attempt';
  /** The process, in its own pid namespace. */
  pid: number;
  /** Date.now() in that process. */
  t: number;
  api?: string;
  target?: string;
  lockPath?: string;
  code?: string;
  message?: string;
  size?: number;
  options?: { managerKey?: string; retries?: number; staleMs?: number; timeoutMs?: number; staleRecovery?: string };
  caller?: string[];
}

/** Where a probed process holds the first acquisition of a target. */
export interface ProbeHold {
  /** The target (its lock is `<target>.lock`), or a directory ending in `/`: the first target inside it. */
  target: string;
  /** `granted`: inside the lock; `created`: stock fs-safe, between the lock file's creation and its payload. */
  at: 'granted' | 'created';
  /** The hold ends when this file exists; never if omitted. */
  releaseFile?: string;
}

/** The environment that turns the probe on for one process (`attempts`: report stock's create attempts too). */
export function probeEnv(log: ProbeLog, hold?: ProbeHold, attempts = false): NodeJS.ProcessEnv {
  return {
    KL_PROBE_EVENTS: log.file,
    ...(attempts ? { KL_PROBE_ATTEMPTS: '1' } : {}),
    ...(hold === undefined
      ? {}
      : {
          KL_PROBE_HOLD_TARGET: hold.target,
          KL_PROBE_HOLD_AT: hold.at,
          ...(hold.releaseFile === undefined ? {} : { KL_PROBE_RELEASE: hold.releaseFile }),
        }),
  };
}

/** The event file of one scenario. */
export class ProbeLog {
  readonly #watcher: FSWatcher;
  readonly #waiters = new Set<() => void>();

  constructor(readonly file: string) {
    writeFileSync(file, '');
    this.#watcher = watch(file, () => {
      for (const wake of [...this.#waiters]) wake();
    });
    this.#watcher.on('error', () => {}); // the scenario's directory removed under it
  }

  /** Every event so far, in the order they were appended. */
  events(): ProbeEvent[] {
    return readFileSync(this.file, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as ProbeEvent);
  }

  /** How many events there are so far (to wait for later ones only). */
  get count(): number {
    return this.events().length;
  }

  /**
   * The first event matching `match`, as soon as it is appended; rejects
   * after `timeoutMs`, or when `unless` settles first (the process it
   * waits on ended).
   */
  waitFor(
    match: (event: ProbeEvent) => boolean,
    what: string,
    timeoutMs: number,
    unless?: Promise<unknown>,
    from = 0,
  ): Promise<ProbeEvent> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (error: Error | null, event?: ProbeEvent): void => {
        this.#waiters.delete(check);
        clearTimeout(timer);
        if (error === null) resolve(event!);
        else reject(error);
      };
      const check = (): void => {
        try {
          const found = this.events().slice(from).find(match);
          if (found !== undefined) finish(null, found);
        } catch (error) {
          finish(error as Error);
        }
      };
      timer = setTimeout(
        () => finish(new Error(`no probe event "${what}" within ${timeoutMs} ms: ${JSON.stringify(this.events())}`)),
        timeoutMs,
      );
      unless?.then(
        () => {
          check();
          if (this.#waiters.has(check)) finish(new Error(`the process ended before "${what}"`));
        },
        () => {},
      );
      this.#waiters.add(check);
      check();
    });
  }

  close(): void {
    this.#watcher.close();
    for (const wake of this.#waiters) wake();
  }
}

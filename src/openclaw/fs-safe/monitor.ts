// onCompromised without a timer. fs-safe re-reads the sidecar every
// compromiseCheckIntervalMs; here an inotify watch on the locked inode
// (fs.watch) reports the moment the file is unlinked or renamed over (the
// kernel raises IN_ATTRIB when its link count drops), and only then is the
// handle verified. The check also runs at release and at verifyStillHeld(),
// so a lost watch (inotify limits) loses no more than the early warning.
import { type FSWatcher, watch } from 'node:fs';
import type { LockHandle } from '../../lock/handle.js';
import type { SidecarLockCompromisedInfo } from './types.js';

/** Watches one held lock; `check()` verifies and fires the callback at most once. */
export class CompromiseMonitor {
  #watcher: FSWatcher | null = null;
  #fired = false;
  readonly #handle: LockHandle;
  readonly #callback: (info: SidecarLockCompromisedInfo) => void;
  readonly #info: SidecarLockCompromisedInfo;
  readonly #receiver: unknown;

  constructor(
    handle: LockHandle,
    callback: (info: SidecarLockCompromisedInfo) => void,
    info: SidecarLockCompromisedInfo,
    receiver: unknown,
  ) {
    this.#handle = handle;
    this.#callback = callback;
    this.#info = info;
    this.#receiver = receiver;
    try {
      this.#watcher = watch(info.lockPath, { persistent: false }, () => this.check());
      this.#watcher.on('error', () => this.stop());
    } catch {
      // No watch (inotify limit, exotic file system): checks still run at
      // release and at verifyStillHeld().
      this.#watcher = null;
    }
  }

  /** Verifies the lock; on the first failure stops watching and calls back. Returns the verdict. */
  check(): boolean {
    if (this.#fired) return false;
    if (this.#handle.verify()) return true;
    this.#fired = true;
    this.stop();
    // A throwing callback must not break release or verification; fs-safe
    // calls it from a timer, where a throw is an uncaught exception too.
    queueMicrotask(() => Reflect.apply(this.#callback, this.#receiver, [{ ...this.#info }]));
    return false;
  }

  stop(): void {
    this.#watcher?.close();
    this.#watcher = null;
  }
}

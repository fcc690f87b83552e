// The holders of a file's locks as /proc tells them: each lock /proc/locks
// lists, with what /proc/<pid> says about the process the kernel names.
// The lock layer merges these with its own probe and owner record
// (lock/holder-look.ts); nothing here opens the lock file.
import type { LockKind, LockMode, LockRange, ProcLock } from './proc-locks.js';
import { lookAtProcess, ownPidNamespace, type ProcessInfo, pidInProc } from './process-info.js';
import type { Steps } from './steps.js';

/** A process holding a lock through one of its descriptors (found in /proc/<pid>/fdinfo). */
export interface DescriptorProcess {
  pid: number;
  alive: boolean;
  argv: string[] | null;
}

/** One kernel lock on the file. */
export interface LockHolder {
  /**
   * The holder's pid as the kernel reports it, in the pid namespace of /proc.
   * -1: an OFD lock (it belongs to an open file, not a process). null: the
   * kernel did not name it (found only by probing: typically a process in a
   * pid namespace we cannot see, i.e. another container).
   */
  pid: number | null;
  kind: LockKind;
  mode: LockMode;
  /** Byte range of fcntl locks (length 0 = to end of file); absent for flock. */
  range?: LockRange;
  /** True when the kernel named a pid we can look at (pid > 0). */
  visible: boolean;
  /** Whether that pid is alive; null when not visible. For flock, a dead pid means the descriptor was inherited. */
  alive: boolean | null;
  /** Whether the holder is in our pid namespace; false when it is provably elsewhere, null when unknown. */
  sameNamespace: boolean | null;
  /** True when the holder is this process. */
  self: boolean;
  /** The holder's pid inside its own (nested) pid namespace, when that differs from `pid`; else null. */
  pidInNamespace: number | null;
  /** Command line of the visible, live holder. */
  argv: string[] | null;
  /**
   * Processes holding this lock through a descriptor, looked up only when the
   * kernel's pid does not name a live process (OFD locks, flock locks whose
   * taker exited after passing the descriptor on); null when not looked up.
   */
  descriptors: DescriptorProcess[] | null;
}

/** One look at each process per inspection, however many locks name it. */
export class ProcessLookups {
  private readonly seen = new Map<number, ProcessInfo>();

  /** What /proc says about `pid`, read on first use. */
  *of(pid: number): Steps<ProcessInfo> {
    let info = this.seen.get(pid);
    if (info === undefined) {
      info = yield* lookAtProcess(pid);
      this.seen.set(pid, info);
    }
    return info;
  }
}

/** A holder as the kernel lists it, with its process looked up when the kernel names one. */
export function* holderFromKernel(lock: ProcLock, processes: ProcessLookups): Steps<LockHolder> {
  const holder: LockHolder = {
    pid: lock.pid,
    kind: lock.kind,
    mode: lock.mode,
    visible: lock.pid > 0,
    alive: null,
    sameNamespace: null,
    self: false,
    pidInNamespace: null,
    argv: null,
    descriptors: null,
  };
  if (lock.range !== undefined) holder.range = lock.range;
  if (lock.pid > 0) {
    const info = yield* processes.of(lock.pid);
    holder.alive = info.alive;
    holder.self = lock.pid === pidInProc();
    if (info.alive) {
      holder.argv = info.argv;
      const own = ownPidNamespace();
      holder.sameNamespace = info.pidNamespace === null || own === null ? null : info.pidNamespace === own;
      const inner = info.nspid?.at(-1);
      if (inner !== undefined && inner !== lock.pid) holder.pidInNamespace = inner;
    }
  }
  return holder;
}

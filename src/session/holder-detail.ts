// The words after the legacy prefix of a SessionWriteLockError: who holds the
// session. For a kernel lock they come from the core's timeout error, whose
// holder is inspected from the kernel (/proc/locks, a probe, the record); for
// a live legacy marker they say what we know and why we had to poll.
import { readFileSync } from 'node:fs';
import type { LockTimeoutError } from '../lock/errors.js';
import type { HolderSnapshot } from '../lock/holder-snapshot.js';
import { effectiveHolder, mainHolder, printable } from '../lock/holder-text.js';
import type { LiveLegacyHolder } from './legacy-markers.js';

const positivePid = (value: unknown): number | null =>
  typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : null;

/**
 * The holder's pid: the live process the kernel names (or that holds the
 * locked descriptor), else the pid its owner record names (a holder in a pid
 * namespace we cannot see), else null.
 */
export function holderPid(inspection: HolderSnapshot | null): number | null {
  if (inspection === null) return null;
  const main = mainHolder(inspection);
  const live = main === undefined ? null : effectiveHolder(main);
  return positivePid(live?.pid) ?? positivePid(main?.pid) ?? positivePid(inspection.record?.pid);
}

/** Pid and holder text of a core timeout error (its message after the path). */
export function describeTimeout(error: LockTimeoutError): { pid: number | null; detail: string } {
  const marker = `: ${error.path}`;
  const at = error.message.indexOf(marker);
  const detail = at < 0 ? '' : error.message.slice(at + marker.length).trim();
  return { pid: holderPid(error.holder), detail };
}

function commandOf(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    return argv.length === 0 ? '' : `, "${printable(argv.join(' '), 60)}"`;
  } catch {
    return '';
  }
}

function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${Math.round(ms / 1000)}s`;
}

/** Holder text for a timeout caused by a live legacy marker. */
export function legacyTimeoutDetail(legacy: LiveLegacyHolder): string {
  return (
    `held by an old-version process through its legacy marker: pid ${legacy.pid} (alive, same start time` +
    `${commandOf(legacy.pid)}, marker age ${seconds(legacy.ageMs)}). It takes no kernel lock and cannot wake ` +
    `waiters, so this acquisition polled its marker; finish the upgrade of that process, or set legacyMarkers: 'ignore' ` +
    'once no old version writes this session'
  );
}

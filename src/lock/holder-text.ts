// Words for a holder snapshot: the "held by ..." text of timeout errors,
// of `kernel-lock sweep` and of describeInspection(), and the pieces of
// `kernel-lock status` cells. Everything that came from another process
// (owner labels, command lines, host names) is stripped of control and
// bidirectional-override characters first: a hostile label must not be able
// to rewrite an operator's terminal or forge a log line.
import {
  type HolderSnapshot,
  type LeaseHolderView,
  type LockHolder,
  SEARCH_CUT_SHORT_NOTE,
} from './holder-snapshot.js';
import { currentLeaseHolder } from './lease-view.js';

/** Printable form of untrusted text: control and bidi-override characters removed, length bounded. */
export function printable(text: string, max = 120): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '');
  if (clean.length <= max) return clean;
  // Never cut between the two halves of a surrogate pair (an emoji): half of one prints as U+FFFD.
  const end = /[\ud800-\udbff]/.test(clean[max - 2] ?? '') ? max - 2 : max - 1;
  return `${clean.slice(0, end)}…`;
}

/** Untrusted text in double quotes, printable, with quotes and backslashes escaped (JSON string syntax). */
export function quoted(text: string, max = 120): string {
  return JSON.stringify(printable(text, max));
}

/** A command line for display: arguments joined by spaces, printable, bounded. */
export function commandText(argv: readonly string[] | null | undefined, max = 60): string {
  if (argv === null || argv === undefined || argv.length === 0) return '';
  return printable(argv.join(' '), max);
}

/** 850ms, 12s, 4m12s, 2h03m, 3d04h. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** The holder a snapshot is mostly about: the current lease holder, else the exclusive one, else the first. */
export function mainHolder(snapshot: HolderSnapshot): LockHolder | undefined {
  return (
    currentLeaseHolder(snapshot.lease, snapshot.holders) ??
    snapshot.holders.find((h) => h.mode === 'exclusive') ??
    snapshot.holders[0]
  );
}

/** The live process that actually holds the lock, when the kernel or fdinfo names one. */
export function effectiveHolder(holder: LockHolder): { pid: number; argv: string[] | null } | null {
  if (holder.visible && holder.alive && holder.pid !== null) return { pid: holder.pid, argv: holder.argv };
  const live = holder.descriptors?.find((d) => d.alive);
  return live === undefined ? null : { pid: live.pid, argv: live.argv };
}

function recordParts(snapshot: HolderSnapshot, withPid: boolean): string[] {
  const { record } = snapshot;
  if (record === null || snapshot.recordMatchesHolder === false) return [];
  const parts: string[] = [];
  if (withPid && record.hostname !== undefined) parts.push(`host ${quoted(record.hostname, 64)}`);
  if (withPid && record.pid !== undefined) parts.push(`recorded pid ${record.pid}`);
  if (withPid && record.argv !== undefined && record.argv.length > 0)
    parts.push(JSON.stringify(commandText(record.argv)));
  if (record.owner !== undefined) parts.push(`owner ${quoted(record.owner, 80)}`);
  if (snapshot.heldForMs !== null) parts.push(`held ${formatDuration(snapshot.heldForMs)}`);
  return parts;
}

function subjectAndParts(snapshot: HolderSnapshot, holder: LockHolder): [string, string[]] {
  const live = effectiveHolder(holder);
  if (live !== null) {
    const parts = ['alive'];
    if (live.pid === holder.pid && holder.sameNamespace === false) {
      parts.push(
        holder.pidInNamespace === null
          ? 'in another pid namespace'
          : `pid ${holder.pidInNamespace} in its own pid namespace`,
      );
    }
    const command = commandText(live.argv);
    if (command !== '') parts.push(JSON.stringify(command));
    if (live.pid !== holder.pid && holder.pid !== null && holder.pid > 0) {
      parts.push(`descriptor inherited from exited pid ${holder.pid}`);
    }
    if (holder.pid === -1) parts.push('OFD lock');
    return [`pid ${live.pid}`, [...parts, ...recordParts(snapshot, false)]];
  }
  if (holder.visible && holder.pid !== null) {
    return [
      `pid ${holder.pid}`,
      ['exited; a process that inherited its descriptor still holds it', ...recordParts(snapshot, false)],
    ];
  }
  if (holder.pid === -1) {
    const parts = ['OFD locks carry no pid'];
    // Bounded so that a timeout stays cheap: on a host with more descriptors
    // than the bound, the holder may be in a process the search did not reach.
    if (snapshot.notes.includes(SEARCH_CUT_SHORT_NOTE)) parts.push('the search of /proc for its process was cut short');
    return ['an unknown process', [...parts, ...recordParts(snapshot, true)]];
  }
  const parts = recordParts(snapshot, true);
  if (holder.sameNamespace === false) {
    if (snapshot.record === null) parts.push('no owner record');
    return ['a process in another pid namespace', parts];
  }
  return ['a process the kernel does not name here', parts];
}

/**
 * The text after the path in a timeout message, e.g. `held by pid 4687
 * (alive, "node openclaw agent --to …", owner "agent main", held 4m12s)` or
 * `held by a process in another pid namespace (host "typhon", recorded pid 4687)`.
 */
export function describeSnapshot(snapshot: HolderSnapshot): string {
  if (!snapshot.held) {
    return snapshot.exists
      ? 'held by another process (released before it could be inspected)'
      : 'held by another process (released and removed before it could be inspected)';
  }
  const holder = mainHolder(snapshot)!;
  const shared = holder.mode === 'shared' ? ' (shared)' : '';
  if (snapshot.state === 'held-by-self') {
    const parts = [...recordParts(snapshot, false), ...leaseParts(snapshot)];
    return `held${shared} by this process (pid ${process.pid}${parts.length > 0 ? `, ${parts.join(', ')}` : ''})`;
  }
  const [subject, parts] = subjectAndParts(snapshot, holder);
  // A lease's members hold shared flock locks and its holders one OFD lock each: the lease parts tell them.
  if (snapshot.lease !== null) return `held by ${subject} (${[...parts, ...leaseParts(snapshot)].join(', ')})`;
  const others = snapshot.holders.length - 1;
  const more = others > 0 ? ` and ${others} other holder${others > 1 ? 's' : ''}` : '';
  return `held${shared} by ${subject}${parts.length > 0 ? ` (${parts.join(', ')})` : ''}${more}`;
}

/** A lease holder for display: `token 15 (pid 99 "node writer.js")`. */
export function leaseHolderText(holder: LeaseHolderView): string {
  const who =
    holder.pid === null ? 'process not named here' : `pid ${holder.pid}${holder.alive === false ? ', exited' : ''}`;
  const command = commandText(holder.argv);
  return `token ${holder.token} (${who}${command === '' ? '' : ` ${JSON.stringify(command)}`})`;
}

/** The lease facts of a holder text: token, when it may be superseded, superseded holders still alive. */
export function leaseParts(snapshot: HolderSnapshot, now = Date.now()): string[] {
  const lease = snapshot.lease;
  if (lease === null) return [];
  const parts: string[] = [];
  if (lease.current === null) {
    parts.push(`lease ${lease.token} is over (released, or its holder died)`);
  } else if (lease.takeoverAfterMs === null) {
    parts.push(`lease token ${lease.token}, never superseded while alive`);
  } else {
    const granted = lease.grantedAt === null ? Number.NaN : Date.parse(lease.grantedAt);
    const left = granted + lease.takeoverAfterMs - now;
    const when = Number.isFinite(left) && left > 0 ? `in ${formatDuration(left)}` : 'now';
    parts.push(`lease token ${lease.token}, may be superseded ${when}`);
  }
  if (lease.fenced) parts.push('the fence is held (a fenced write or a token change in progress)');
  if (lease.superseded.length > 0) {
    const n = lease.superseded.length;
    parts.push(
      `${n} superseded holder${n > 1 ? 's' : ''} still alive: ${lease.superseded.map(leaseHolderText).join(', ')}`,
    );
  }
  return parts;
}

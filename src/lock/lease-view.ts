// What a look at a lock file says about its lease (lease-layout.ts): the
// last token handed out, whether its holder is alive, and which superseded
// holders are still alive. Probed through a descriptor of our own with
// F_OFD_GETLK, one query per held liveness byte (a pure query: nothing is
// taken); the processes behind the bytes come from the descriptor search.
// It lives in the lock layer because the look (holder-look.ts) that timeout
// errors and inspect() share must know which kernel lock is the current
// lease to name the right holder and to match its owner record.
import { readSync } from 'node:fs';
import { Flag, native } from '../native/binding.js';
import type { DescriptorHolder } from '../proc/descriptors.js';
import type { LockHolder, ProcessLookups } from '../proc/holders.js';
import type { Steps } from '../proc/steps.js';
import type { LeaseHolderView, LeaseView } from './holder-snapshot.js';
import { FENCE_BYTE, holderByte, parseSlot, SLOT_BYTES, SLOT_OFFSET, tokenOfByte } from './lease-layout.js';

/** Superseded holders listed at most (each costs one query). */
const MAX_SUPERSEDED = 64;

/** What the probe found on a lease file, before processes are attached. */
export interface LeaseProbe {
  token: number;
  grantedAtMs: number;
  takeoverAfterMs: number;
  currentAlive: boolean;
  superseded: number[];
  fenced: boolean;
}

function held(fd: number, start: number, length: number): number | null {
  // A shared-lock query conflicts only with exclusive locks: every lock a lease takes on these bytes.
  const conflict = native.getLock(fd, Flag.ofd | Flag.shared, start, length);
  return conflict === null ? null : conflict[2];
}

/** Reads the token slot through `fd` and probes the lease's bytes; null when the file carries no lease. */
export function probeLease(fd: number): LeaseProbe | null {
  if (!native.ofdSupported) return null;
  try {
    const bytes = Buffer.alloc(SLOT_BYTES);
    const length = readSync(fd, bytes, 0, SLOT_BYTES, SLOT_OFFSET);
    const slot = parseSlot(bytes.subarray(0, length));
    if (slot === null || slot === 'invalid' || slot.token === 0) return null;
    // F_OFD_GETLK names one conflicting lock, not the lowest: split the
    // range around each one found until every held byte is known.
    const superseded: number[] = [];
    const ranges: [number, number][] = [[holderByte(1), holderByte(slot.token)]]; // [from, to): older tokens only
    while (ranges.length > 0 && superseded.length < MAX_SUPERSEDED) {
      const [from, to] = ranges.pop()!;
      if (from >= to) continue;
      const start = held(fd, from, to - from);
      const token = start === null ? null : tokenOfByte(start);
      if (start === null || token === null || start < from || start >= to) continue;
      superseded.push(token);
      ranges.push([from, start], [start + 1, to]);
    }
    superseded.sort((a, b) => a - b);
    return {
      token: slot.token,
      grantedAtMs: slot.grantedAtMs,
      takeoverAfterMs: slot.takeoverAfterMs,
      // A plain whole-file lock conflicts with every byte: only a lock that
      // starts at the byte itself is the lease's.
      currentAlive: held(fd, holderByte(slot.token), 1) === holderByte(slot.token),
      superseded,
      fenced: held(fd, FENCE_BYTE, 1) === FENCE_BYTE,
    };
  } catch {
    return null;
  }
}

function holderView(token: number): LeaseHolderView {
  return { token: String(token), pid: null, alive: null, argv: null };
}

/** The JSON view of a probe (processes filled in later by attachLeasePids). */
export function leaseView(probe: LeaseProbe): LeaseView {
  return {
    token: String(probe.token),
    grantedAt: probe.grantedAtMs > 0 ? new Date(probe.grantedAtMs).toISOString() : null,
    takeoverAfterMs: Number.isFinite(probe.takeoverAfterMs) ? probe.takeoverAfterMs : null,
    current: probe.currentAlive ? holderView(probe.token) : null,
    superseded: probe.superseded.map(holderView),
    fenced: probe.fenced,
  };
}

/** Names the process behind each liveness byte, from a descriptor search's holders of the file. */
export function* attachLeasePids(
  view: LeaseView,
  found: readonly DescriptorHolder[],
  processes: ProcessLookups,
): Steps<void> {
  for (const holder of [view.current, ...view.superseded]) {
    if (holder === null) continue;
    const byte = holderByte(Number(holder.token));
    const match = found.find((d) => d.kind === 'ofd' && d.range?.start === byte);
    if (match === undefined) continue;
    const info = yield* processes.of(match.pid);
    holder.pid = match.pid;
    holder.alive = info.alive;
    holder.argv = info.argv;
  }
}

/** The kernel lock that is the current lease, among a look's holders. */
export function currentLeaseHolder(view: LeaseView | null, holders: readonly LockHolder[]): LockHolder | undefined {
  if (view?.current == null) return undefined;
  const byte = holderByte(Number(view.current.token));
  return holders.find((h) => h.kind === 'ofd' && h.mode === 'exclusive' && h.range?.start === byte);
}

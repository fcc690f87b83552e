// Describes who holds a lock, for the message of a timeout error: an
// inspection (the kernel's word on the holder, its liveness and namespace,
// and the owner record when it matches) turned into words.
import { describeInspection, printable } from '../inspect/format.js';
import { inspectSync } from '../inspect/inspect.js';
import type { LockInspection } from '../inspect/types.js';
import type { LockRequest } from './options.js';

export { printable };

/** A holder description: the text appended to the timeout message, and the inspection behind it. */
export interface HolderDescription {
  detail: string;
  holder: LockInspection | null;
}

/** Synchronous describeHolder(), for lockSync()'s timeout. */
export function describeHolderSync(req: LockRequest): HolderDescription {
  try {
    const holder = inspectSync(req.path);
    return { detail: describeInspection(holder), holder };
  } catch (error) {
    // The inspection is a courtesy; the timeout itself is the error.
    return { detail: `held by another process (not inspectable: ${(error as Error).message})`, holder: null };
  }
}

/** Inspects the lock file and formats who holds it. */
export async function describeHolder(req: LockRequest): Promise<HolderDescription> {
  return describeHolderSync(req);
}

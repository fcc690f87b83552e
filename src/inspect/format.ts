// Words for an inspection. The text itself is the lock layer's (a timeout
// error names its holder in exactly the same words); an inspection is a
// holder snapshot with more fields, so it is described the same way.
import { describeSnapshot } from '../lock/holder-text.js';
import type { LockInspection } from './types.js';

export {
  commandText,
  effectiveHolder,
  formatDuration,
  leaseHolderText,
  mainHolder,
  printable,
  quoted,
} from '../lock/holder-text.js';

/**
 * The "held by ..." text for an inspection, e.g. `held by pid 4687 (alive,
 * "node openclaw agent --to …", owner "agent main", held 4m12s)`.
 */
export function describeInspection(inspection: LockInspection): string {
  return describeSnapshot(inspection);
}

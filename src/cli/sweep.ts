// `kernel-lock sweep <dir>`: remove unheld lock files, safely.
import { parseArgs } from 'node:util';
import { describeInspection, printable } from '../inspect/format.js';
import { inspect } from '../inspect/inspect.js';
import { sweepOutcomes, sweepResult } from '../inspect/sweep.js';
import { displayPath, rawPath } from '../lock/path-text.js';
import { terminalSafeJson } from './json.js';
import { UsageError } from './usage.js';

/** Printed after a sweep that removed files: who it is safe with (docs/GUARANTEES.md). */
export const PEERS_NOTE =
  'note: sweep is safe only next to lockers that re-check the file after locking (kernel-lock); ' +
  "never sweep files locked by flock(1), Python's fcntl, lockf(3) or SQLite (kernel-lock sweep --help)";

/** Identifies the JSON document `sweep --json` prints. */
export const SWEEP_SCHEMA = 'kernel-lock/sweep/1';

/** Runs `sweep`; resolves with the exit status. */
export async function sweepCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      suffix: { type: 'string', default: '.lock' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('sweep needs exactly one directory', 'sweep');
  if (values.suffix === '') throw new UsageError('--suffix must not be empty', 'sweep');
  const dryRun = values['dry-run'];
  const outcomes = await sweepOutcomes(positionals[0]!, { suffix: values.suffix, dryRun });
  const result = sweepResult(outcomes);
  if (values.json) {
    process.stdout.write(`${terminalSafeJson({ schema: SWEEP_SCHEMA, dryRun, ...result })}\n`);
  } else {
    const verb = dryRun ? 'would remove' : 'removed';
    for (const outcome of outcomes) {
      if (outcome.action === 'removed' || outcome.action === 'would-remove') {
        process.stdout.write(`${verb}  ${displayPath(outcome)}\n`);
      }
    }
    for (const kept of result.kept) {
      let why = kept.detail;
      if (kept.reason === 'held') {
        try {
          why = describeInspection(await inspect(rawPath(kept)));
        } catch {
          // keep the sweep's own words
        }
      }
      process.stdout.write(`kept  ${displayPath(kept)}: ${printable(why, 400)}\n`);
    }
    process.stdout.write(`${verb} ${result.removed.length}, kept ${result.kept.length}\n`);
    if (result.removed.length > 0) process.stdout.write(`${PEERS_NOTE}\n`);
  }
  return result.kept.some((k) => k.reason === 'error') ? 1 : 0;
}

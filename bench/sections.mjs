// The parts of `npm run bench`, in order. Each section has a key (its place
// in results.json), a title, its parameters for the quick and the full run,
// and either a `measure(cfg, specs, dir, pool)` function run in this
// process, or a `script` run as a child process that writes its own results
// file (read back into results.json under the section's key). A section
// may narrow the contenders (`specsFor`), in quick runs especially.
//
// Adding a measurement means adding an entry here (and, for the report, a
// table in report.mjs or a line in goals.mjs): run.mjs does not change.
import { baselineDist } from './contenders.mjs';
import { crowd } from './crowd.mjs';
import { handoff } from './handoff.mjs';
import { heldMany } from './held.mjs';
import { crashRecovery, scale, threadpoolHealth, throughput, uncontended, waitingCost } from './measurements.mjs';

/** The contenders the issue-16 goals are judged on, and their C floors. */
export const GOAL_CONTENDERS = [
  'c-floor-keep',
  'c-floor-remove',
  'c-floor-twowake',
  'kl-async-flock-keep',
  'kl-async-flock-remove',
  'kl-sync-flock-keep',
];

/** In quick runs, only the goal contenders (and their baseline twins) where a section says so. */
function goalsOnlyWhenQuick(specs, quick) {
  if (!quick) return specs;
  return specs.filter((spec) => GOAL_CONTENDERS.includes(spec.id.replace(/^base-/, '')));
}

const baselineArgs = baselineDist ? [`--baseline=${baselineDist}`] : [];

export const sections = [
  {
    key: 'uncontended',
    title: '1. uncontended cycle',
    measure: uncontended,
    quick: { warmupMs: 30, rounds: 6, roundMs: 25 },
    full: { warmupMs: 200, rounds: 30, roundMs: 100 },
  },
  {
    key: 'handoff',
    title: '2. hand-off across processes (C holder)',
    measure: handoff,
    specsFor: goalsOnlyWhenQuick,
    // At least 500 hand-offs per contender and settle time, in short blocks.
    quick: { settles: [2], rounds: 20, perBlock: 25, pollPerBlock: 2 },
    full: { settles: [1, 3, 10], rounds: 20, perBlock: 25, pollPerBlock: 4 },
  },
  {
    key: 'crashRecovery',
    title: '3. crash recovery',
    measure: crashRecovery,
    specsFor: goalsOnlyWhenQuick,
    quick: { rounds: 1, killsPerRound: 2, cHolderKillsPerRound: 3, staleKillsPerRound: 1, settleMs: 5, maxPrewarm: 12 },
    full: { rounds: 5, killsPerRound: 5, cHolderKillsPerRound: 5, staleKillsPerRound: 1, settleMs: 5, maxPrewarm: 40 },
  },
  {
    key: 'waitingCost',
    title: '4. CPU while waiting',
    measure: waitingCost,
    specsFor: goalsOnlyWhenQuick,
    quick: { waiters: 4, holdMs: 250, settleMs: 100, quietMs: 300, drainMs: 10_000 },
    full: { waiters: 16, holdMs: 5000, settleMs: 500, quietMs: 15_000, drainMs: 30_000 },
  },
  {
    key: 'threadpoolHealth',
    title: '5. readFile with waiters pending',
    measure: threadpoolHealth,
    quick: { waiterCounts: [0, 8, 64], samples: 20, stallMs: 200, settleMs: 50, drainMs: 10_000 },
    full: { waiterCounts: [0, 8, 64], samples: 200, stallMs: 2000, settleMs: 200, drainMs: 30_000 },
  },
  {
    key: 'throughput',
    title: '6. contended throughput',
    measure: throughput,
    specsFor: goalsOnlyWhenQuick,
    quick: { processes: 4, rounds: 1, durationMs: 200 },
    full: { processes: 4, rounds: 3, durationMs: 1000 },
  },
  {
    key: 'scale',
    title: '7. scale',
    measure: scale,
    specsFor: goalsOnlyWhenQuick,
    quick: { locks: 500, waiters: 64, settleMs: 100, timeoutMs: 2000 },
    full: { locks: 10_000, waiters: 256, settleMs: 1000, timeoutMs: 30_000 },
  },
  {
    key: 'heldMany',
    title: '8. a lock cycle with 10,000 other locks held',
    measure: heldMany,
    quick: { locks: 10_000, rounds: 2, roundMs: 80 },
    full: { locks: 10_000, rounds: 5, roundMs: 150 },
  },
  {
    key: 'crowd',
    title: '9. N waiters in one process',
    measure: crowd,
    specsFor: goalsOnlyWhenQuick,
    quick: { counts: [8, 512], rounds: 1 },
    full: { counts: [8, 64, 512], rounds: 3 },
  },
  {
    // The async inspection API on a busy host, in a process of its own (it
    // measures its own event loop); the baseline build beside this one.
    key: 'inspection',
    title: '10. inspection with 10,000 locks on the host',
    script: 'inspection.mjs',
    nodeArgs: ['--expose-gc'],
    resultsFile: 'inspection-results.json',
    quick: { args: ['--quick', ...baselineArgs] },
    full: { args: baselineArgs },
  },
];

/** The contenders a section measures: `sections` on a spec restricts it to those sections. */
export function specsForSection(section, specs, quick) {
  const mine = specs.filter((spec) => !spec.sections || spec.sections.includes(section.key));
  return section.specsFor ? section.specsFor(mine, quick) : mine;
}

// The real-runtime table: the same columns as the simulated demo where they
// apply, and one summary line per scenario, written from the measured rows:
// who wins and why, and whether doing better needs a change in the runtime.
import type { RuntimeRow, RuntimeScenarioId } from './scenarios.js';
import { RUNTIME_SCENARIOS } from './scenarios.js';

function cut(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** The error without its lock path: `session file locked (10000ms): pid=42 held by pid 42 (…)`. */
function compact(message: string): string {
  return message.replace(/^session file locked \(timeout (\d+)ms\): (\S+) \S+/, 'session file locked ($1ms): $2');
}

const clean = (row: RuntimeRow): boolean => row.overlappingCalls === 0 && row.forkedEntries === 0;
const allOk = (row: RuntimeRow): boolean => row.followersOk === row.followers;

/** Who wins scenario `id`, and why, from its rows. */
export function scenarioSummary(id: RuntimeScenarioId, rows: readonly RuntimeRow[]): string {
  const stock = rows.find((r) => r.scenario === id && r.backend === 'stock');
  const kernel = rows.find((r) => r.scenario === id && r.backend === 'kernel-lock');
  if (kernel === undefined) return 'kernel-lock not run.';
  if (kernel.hookLines.some((l) => l.includes('not replacing'))) {
    return `the hook did not link this runtime build (${cut(kernel.hookLines[0]!, 160)}): the kernel-lock row ran on the stock lock.`;
  }
  const named = kernel.namedHolder
    ? 'the error names the holder (pid, command, age)'
    : 'the error does not name the holder';
  switch (id) {
    case 'a':
    case 'b':
      if (allOk(kernel) && clean(kernel) && (stock === undefined || (allOk(stock) && clean(stock)))) {
        return id === 'a'
          ? 'tie: both succeed. The stock lock reclaims the dead pid (it is in the followers’ pid namespace); kernel-lock has nothing to reclaim, the kernel released the lock at the death. No runtime change needed.'
          : 'tie in outcome: both succeed. The stock lock reclaims by guessing (the recorded pid means nothing in this pid namespace: dead or another process); kernel-lock does not guess, the kernel released the lock. No runtime change needed.';
      }
      return `kernel-lock ${allOk(kernel) ? 'succeeds' : 'LOST invocations'}; stock ${stock && allOk(stock) ? 'succeeds' : 'lost invocations'}.`;
    case 'c':
      if (clean(kernel) && stock !== undefined && !clean(stock)) {
        return (
          `kernel-lock wins: the stock lock was taken from a LIVE writer in another pid namespace (${stock.overlappingCalls} overlapping model call(s), ` +
          `${stock.forkedEntries} forked transcript entries); kernel-lock never overlapped it, its followers waited and timed out, ${named}. ` +
          'Those timeouts are correct (a live writer holds the session); fewer of them needs a runtime change: hold the session lock around transcript writes, not the whole model call.'
        );
      }
      return clean(kernel)
        ? `kernel-lock never overlapped (${named}); the stock run did not overlap this time.`
        : `kernel-lock OVERLAPPED (${kernel.overlappingCalls} call(s)): this must not happen.`;
    case 'd':
      return (
        `neither wins: a live orphan holds the lock, so both fail (${stock ? `stock ${stock.followers - stock.followersOk}` : 'stock not run'}, kernel-lock ${kernel.followers - kernel.followersOk} failed); ` +
        `with kernel-lock ${named}. Nobody may take a lock from a live holder: removing it needs fencing (supersession, kernel-lock's lease) ` +
        'and the runtime routing its writes through the fenced lock, a runtime change. This is the reported cascade.'
      );
  }
}

/** The table and summaries. */
export function renderRuntimeReport(rows: readonly RuntimeRow[], spec: string): string {
  const out: string[] = [`kernel-lock demo --runtime ${spec}: the real runtime, a mock model, state on tmpfs`, ''];
  const widths = [38, 12, 6, 8, 7, 13];
  const pad = (cells: string[]): string =>
    cells.map((cell, i) => (i < widths.length ? cell.padEnd(widths[i]!) : cell)).join(' ');
  out.push(pad(['scenario', 'backend', 'ok', 'overlap', 'forked', 'lock record', 'first error']));
  for (const row of rows) {
    out.push(
      pad([
        `(${row.scenario}) ${row.title}`,
        row.backend,
        `${row.followersOk}/${row.followers}`,
        String(row.overlappingCalls),
        String(row.forkedEntries),
        row.lockRecord,
        row.firstError === null ? '-' : cut(compact(row.firstError), 130),
      ]),
    );
  }
  out.push(
    '',
    'ok: invocations after the holder that completed their turn. overlap: pairs of model calls on the session open at once.',
  );
  out.push(
    'forked: transcript entries continuing a parent another entry continues (two writers). lock record: what the lock file said while held.',
  );
  out.push('');
  for (const scenario of RUNTIME_SCENARIOS) {
    const mine = rows.filter((r) => r.scenario === scenario.id);
    if (mine.length === 0) continue;
    out.push(`(${scenario.id}) ${scenario.story}.`, `    ${scenarioSummary(scenario.id, mine)}`);
  }
  return out.join('\n');
}

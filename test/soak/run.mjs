#!/usr/bin/env node
// Soak: the chaos run of the CI quick mode (test/reliability/fixtures/chaos.mjs,
// same workers, same checker) for longer, with more kills, round after round
// over every kind and mode until the time budget is spent; then 100 000+
// acquire/release cycles per kind checking that RSS, descriptors and threads
// stay flat. Prints one line per round and a summary; exits 1 on any violation.
//
//   npm run soak                      # 10 minutes
//   npm run soak -- --minutes 120     # hours
//   npm run soak -- --kills 200 --cycles 500000
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runChaos } from '../reliability/fixtures/chaos.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    kills: { type: 'string', default: '120' }, // per round, for each configuration
    iterations: { type: 'string', default: '400' }, // per worker slot
    cycles: { type: 'string', default: '100000' }, // acquire/release cycles per kind
  },
});
const budgetMs = Number(values.minutes) * 60_000;
const kills = Number(values.kills);
const iterations = Number(values.iterations);
const cycles = Number(values.cycles);
const started = performance.now();
const configs = ['flock', 'ofd', 'posix'].flatMap((kind) => [0, 40].map((sharedPercent) => ({ kind, sharedPercent })));

const totals = { rounds: 0, sections: 0, kills: 0, maxKillToAcquireMs: 0, maxWaitMs: 0, violations: [] };
let round = 0;
do {
  for (const config of configs) {
    const { stats, violations } = await runChaos({
      ...config,
      workers: 6,
      iterations,
      kills,
      deadlineMs: 30 * 60_000,
    });
    totals.rounds++;
    totals.sections += stats.sections;
    totals.kills += stats.kills;
    totals.maxKillToAcquireMs = Math.max(totals.maxKillToAcquireMs, stats.killToNextAcquireMs.max);
    totals.maxWaitMs = Math.max(totals.maxWaitMs, stats.maxWaitMs);
    totals.violations.push(...violations.map((v) => `${config.kind}/${config.sharedPercent}%: ${v}`));
    const status = violations.length === 0 ? 'ok' : `${violations.length} VIOLATIONS (data kept in ${stats.keptDir})`;
    console.log(
      `round ${round} ${config.kind} shared ${config.sharedPercent}%: ${stats.sections} sections, ${stats.kills} kills, ` +
        `kill->next acquire max ${stats.killToNextAcquireMs.max} ms, ${stats.seconds} s: ${status}`,
    );
    for (const v of violations.slice(0, 5)) console.log(`  ${v}`);
  }
  round++;
} while (performance.now() - started < budgetMs);

// Flatness: a fresh process per kind, so one kind's warm-up does not hide another's growth.
const cycleResults = [];
for (const kind of ['flock', 'ofd', 'posix']) {
  const result = spawnSync(
    process.execPath,
    ['--expose-gc', path.join(here, '..', 'reliability', 'fixtures', 'cycles.mjs'), kind, String(cycles)],
    { encoding: 'utf8' },
  );
  const line = result.stdout.trim().split('\n').pop() ?? '';
  let report;
  try {
    report = JSON.parse(line);
  } catch {
    totals.violations.push(`cycles ${kind}: no report (exit ${result.status}): ${result.stderr.slice(0, 500)}`);
    continue;
  }
  cycleResults.push(report);
  console.log(`cycles ${kind}: ${JSON.stringify(report)}`);
  if (!report.flat) totals.violations.push(`cycles ${kind}: not flat: ${JSON.stringify(report)}`);
}

console.log('\n=== soak summary ===');
console.log(`duration           ${((performance.now() - started) / 60_000).toFixed(1)} min`);
console.log(`chaos rounds       ${totals.rounds} (${configs.length} configurations per round)`);
console.log(`critical sections  ${totals.sections}`);
console.log(`SIGKILLs           ${totals.kills}`);
console.log(`kill -> next acquisition, worst  ${totals.maxKillToAcquireMs} ms`);
console.log(`longest wait for the lock        ${totals.maxWaitMs} ms`);
for (const r of cycleResults) {
  console.log(
    `cycles ${r.kind.padEnd(5)} ${r.cycles} in ${r.seconds} s; RSS ${r.rssMiB.join(' -> ')} MiB; fds ${r.fds.join(' -> ')}; threads ${r.threads.join(' -> ')}`,
  );
}
console.log(`violations         ${totals.violations.length}`);
for (const v of totals.violations.slice(0, 50)) console.log(`  ${v}`);
process.exit(totals.violations.length === 0 ? 0 : 1);

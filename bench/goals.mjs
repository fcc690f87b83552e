// The goals of issue 16, judged from one run: each as a ratio, for this
// build and (when the run has a baseline build) the one before it, with the
// per-round spread where the measurement has rounds. Used by the report
// and the SVG.
import { fmt } from './stats.mjs';

const median = (values) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : sorted[Math.floor(sorted.length / 2)];
};
const spread = (values) => {
  const finite = (values ?? []).filter(Number.isFinite);
  if (finite.length === 0) return '';
  return `rounds: median ${fmt(median(finite))}× (${fmt(Math.min(...finite))}–${fmt(Math.max(...finite))}, ${finite.length} rounds)`;
};

/** One goal line: { goal, target, unit, rows: [{ build, value, detail }] }. */
function goal(text, target, rows) {
  return { goal: text, target, rows: rows.filter(Boolean) };
}

/**
 * Hand-off ratio rows per settle time. `twoWake`: the ratio to the C waiter
 * with two wake-ups (thread + eventfd + epoll) instead of the contender's
 * own C floor; informative (no target, no verdict).
 */
function handoffRows(run, id, floorId, field, target, { twoWake = false } = {}) {
  const h = run.measurements.handoff;
  if (!h?.perSettle) return [];
  const lines = [];
  for (const [settle, { results, loads }] of Object.entries(h.perSettle)) {
    for (const [build, cid] of [
      ['this build', id],
      [run.baseline?.name, `base-${id}`],
    ]) {
      const r = results[cid];
      const f = results[floorId];
      const ratios = twoWake ? r?.twoWake : r;
      if (!build || !r || r.na || !f || f.na || !ratios) continue;
      const value = field === 'p50' ? ratios.ratioP50 : ratios.ratioP99;
      lines.push({
        build,
        key: `${settle} ms`,
        value,
        met: target === null ? null : value <= target,
        detail:
          `settle ${settle} ms: ${fmt(r[field])} µs vs C ${fmt(f[field])} µs, n=${r.n}` +
          (field === 'p50' ? `; ${spread(ratios.roundRatios)}` : '') +
          `; load ${fmt(Math.min(...loads))}–${fmt(Math.max(...loads))}`,
      });
    }
  }
  return lines;
}

function uncontendedRows(run, id, floorId, target) {
  const u = run.measurements.uncontended?.results;
  if (!u) return [];
  const lines = [];
  for (const [build, cid] of [
    ['this build', id],
    [run.baseline?.name, `base-${id}`],
  ]) {
    const r = u[cid];
    const f = u[floorId];
    if (!build || !r || r.na || !f) continue;
    const value = r.p50 / f.p50;
    lines.push({
      build,
      value,
      met: value <= target,
      detail: `${fmt(r.p50)} µs vs C ${fmt(f.p50)} µs; ${spread(r.roundRatios)}`,
    });
  }
  return lines;
}

function heldRows(run, ids, target) {
  const m = run.measurements.heldMany?.results;
  if (!m) return [];
  const lines = [];
  for (const id of ids) {
    for (const [build, cid] of [
      ['this build', id],
      [run.baseline?.name, `base-${id}`],
    ]) {
      const r = m[cid];
      if (!build || !r || r.na) continue;
      lines.push({
        build,
        key: id,
        value: r.ratio,
        met: r.ratio <= target,
        detail: `${id}: ${fmt(r.oneP50)} µs with 1 held, ${fmt(r.manyP50)} µs with ${r.locks.toLocaleString('en-US')}; ${spread(r.roundRatios)}`,
      });
    }
  }
  return lines;
}

function crowdRows(run, ids, target) {
  const m = run.measurements.crowd?.results;
  const counts = run.config.crowd?.counts;
  if (!m || !counts) return [];
  const lines = [];
  for (const id of ids) {
    for (const [build, cid] of [
      ['this build', id],
      [run.baseline?.name, `base-${id}`],
    ]) {
      const r = m[cid];
      if (!build || !r || r.na) continue;
      const per = counts.map((n) => `${n}: ${fmt(r.byCount[n]?.cpuPerHandoffUs)} µs`).join(', ');
      const overtakers = counts.map((n) => r.byCount[n]?.overtakers ?? '–').join('/');
      const last = r.byCount[counts[counts.length - 1]];
      lines.push({
        build,
        key: id,
        value: r.flatness,
        met: r.flatness <= target && last?.overtakers === 0,
        detail: `${id}: CPU per hand-off ${per}; served out of queue order: ${overtakers}`,
      });
    }
  }
  return lines;
}

/** The longest event-loop block of the async inspection API, from bench/inspection.mjs's results. */
function inspectionRows(run, target) {
  const m = run.measurements.inspection;
  if (!m) return [];
  if (m.na) return [{ build: 'this build', value: Number.NaN, met: null, detail: `n/a: ${m.na}` }];
  const loop = m.results?.loop;
  if (!Array.isArray(loop))
    return [{ build: 'this build', value: Number.NaN, met: null, detail: 'see bench/inspection-results.md' }];
  const idle = Math.max(...loop.filter((row) => row.build?.startsWith('idle')).map((row) => row.blockP50));
  const rows = [];
  for (const [build, name] of [
    ['this build', 'current'],
    [run.baseline?.name, 'baseline'],
  ]) {
    const mine = loop.filter((row) => row.build === name);
    if (!build || mine.length === 0) continue;
    const worst = Math.max(...mine.map((row) => row.blockP50));
    const worstMax = Math.max(...mine.map((row) => row.blockMax));
    rows.push({
      build,
      value: worst,
      met: worst <= target,
      unit: 'ms',
      detail: `worst operation's median longest block ${fmt(worst)} ms, longest ever ${fmt(worstMax)} ms (an idle loop measured the same way: ${fmt(idle)} ms); bench/inspection-results.md`,
    });
  }
  return rows;
}

/** Every goal of issue 16 with its rows. */
export function issue16Goals(run) {
  return [
    goal(
      'Hand-off p50 ≤ 2× the C floor (same C holder; lock() flock, default options)',
      2,
      handoffRows(run, 'kl-async-flock-keep', 'c-floor-keep', 'p50', 2),
    ),
    goal(
      'Hand-off p99 ≤ 3× the C floor (same C holder)',
      3,
      handoffRows(run, 'kl-async-flock-keep', 'c-floor-keep', 'p99', 3),
    ),
    goal(
      'Hand-off p50 ÷ the C waiter with two wake-ups (informative: thread + eventfd + epoll, the shape of every async waiter)',
      null,
      handoffRows(run, 'kl-async-flock-keep', 'c-floor-twowake', 'p50', null, { twoWake: true }),
    ),
    goal(
      'Hand-off with removeOnRelease, p50 (informative; the C floor unlinks too)',
      2,
      handoffRows(run, 'kl-async-flock-remove', 'c-floor-remove', 'p50', 2),
    ),
    goal(
      'Uncontended cycle ≤ 1.15× the same-syscalls C program, default options (await lock(); await release())',
      1.15,
      uncontendedRows(run, 'kl-async-flock-keep', 'c-floor-keep', 1.15),
    ),
    goal(
      'A lock cycle with 10,000 locks held ≤ 1.2× the cycle with one held',
      1.2,
      heldRows(run, ['kl-async-flock-keep', 'kl-sync-flock-keep', 'kl-async-posix-keep', 'kl-sync-posix-keep'], 1.2),
    ),
    goal(
      'N waiters in one process: CPU per hand-off flat from the fewest to the most waiters (ratio ≤ 1.2), served in queue order',
      1.2,
      crowdRows(run, ['kl-async-flock-keep', 'kl-async-flock-remove'], 1.2),
    ),
    goal(
      'The async inspection API never blocks the event loop for more than 1 ms with 10,000 locks on the host',
      1,
      inspectionRows(run, 1),
    ),
  ];
}

/** The goals as Markdown. */
export function goalsMarkdown(run) {
  const lines = [
    '| goal | build | ratio | target | verdict | how measured |',
    '| --- | --- | ---: | ---: | --- | --- |',
  ];
  for (const g of issue16Goals(run)) {
    if (g.rows.length === 0) {
      lines.push(`| ${g.goal} | – | – | ${g.target ?? '–'} | not measured in this run | |`);
      continue;
    }
    for (const row of g.rows) {
      const verdict = row.met === null || row.met === undefined ? '–' : row.met ? 'met' : '**missed**';
      const unit = row.unit ?? '×';
      lines.push(
        `| ${g.goal}${row.key ? ` — ${row.key}` : ''} | ${row.build} | ${fmt(row.value)}${Number.isFinite(row.value) ? unit : ''} | ${g.target === null ? '–' : `${g.target}${unit}`} | ${verdict} | ${row.detail} |`,
      );
    }
  }
  return lines.join('\n');
}

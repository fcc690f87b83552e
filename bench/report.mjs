// The Markdown report: four tables of absolute figures and ratios, the
// targets of issue 6 checked against this run, and what each n/a means.
import { fmt } from './stats.mjs';

/** An n/a reason fit for a table cell: one line, bounded. */
function reason(text) {
  const line =
    String(text)
      .split('\n')
      .find((part) => part.trim() !== '' && !/^\s*at /.test(part)) ?? '';
  return line.length > 140 ? `${line.slice(0, 139)}…` : line;
}

const na = (entry) => (entry?.na ? `n/a: ${reason(entry.na)}` : null);

function table(header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

/** The C floor run that does the same work as the contender (keep or unlink). */
function floorFor(spec) {
  return spec.keepsFile ? 'c-floor-keep' : 'c-floor-remove';
}

function waitShort(spec) {
  if (spec.floor) return 'kernel (flock)';
  return (
    {
      'sleeps in the kernel on a dedicated thread': 'kernel, own thread',
      'sleeps in the kernel, blocking the calling JS thread': 'kernel, blocks JS',
      'sleeps in the kernel on a libuv threadpool thread': 'kernel, libuv pool',
      'polls with timers': 'polling',
    }[spec.wait] ?? spec.wait
  );
}

function costTable(run) {
  const m1 = run.measurements.uncontended.results;
  const m6 = run.measurements.throughput.results;
  const legacy = m1['legacy-marker'];
  const rows = run.specs.map((spec) => {
    const r = m1[spec.id];
    const floor = m1[floorFor(spec)];
    const t = m6[spec.id];
    const cycles = na(t) ?? `${fmt(t.cyclesPerSecond)}${t.linesOk ? '' : ` (${t.torn} torn lines!)`}`;
    return [
      spec.label,
      waitShort(spec),
      fmt(r.p50),
      fmt(r.p99),
      spec.floor ? '1' : `${fmt(r.p50 / floor.p50)}×`,
      legacy && !Number.isNaN(legacy.p50) ? `${fmt(legacy.p50 / r.p50)}×` : '–',
      cycles,
    ];
  });
  return table(
    [
      'contender',
      'waits by',
      '1. µs/cycle p50',
      'p99',
      '× C floor (same work)',
      'legacy ÷ this',
      `6. cycles/s (${run.config.throughput.processes} procs)`,
    ],
    rows,
  );
}

function waitTable(run) {
  const { handoff, crashRecovery, waitingCost } = run.measurements;
  const cpu = run.config.waitingCost;
  const rows = run.specs.map((spec) => {
    const h = handoff.results[spec.id];
    const c = crashRecovery.results[spec.id];
    const cc = crashRecovery.withCHolder[spec.id];
    const w = waitingCost.results[spec.id];
    const cpuCell =
      na(w) ??
      `${fmt(w.schedSeconds)} (stat ${fmt(w.statSeconds)})${w.stillWaiting ? '' : ' – a waiter got the lock!'}`;
    return [
      spec.label,
      spec.timeout,
      na(h) ?? fmt(h.p50),
      na(h) ? '' : fmt(h.p99),
      na(h) ? '' : String(h.n),
      na(c) ?? fmt(c.p50),
      na(c) ? '' : fmt(c.p99),
      na(c) ? '' : String(c.n),
      na(cc) ?? `${fmt(cc.p50)} / ${fmt(cc.p99)}`,
      cpuCell,
    ];
  });
  return table(
    [
      'contender',
      'timeout',
      '2. hand-off p50 µs',
      'p99 µs',
      'n',
      '3. crash recovery p50 ms',
      'p99 ms',
      'n',
      '3b. C holder killed: p50 / p99 ms',
      `4. CPU s, ${cpu.waiters} waiters, ${cpu.holdMs / 1000} s hold`,
    ],
    rows,
  );
}

function readFileCell(entry) {
  if (!entry) return '–';
  if (entry.na) return `n/a: ${reason(entry.na)}`;
  if (entry.stalled && entry.n === 0) return `stalled (> ${entry.stallMs} ms): threadpool exhausted`;
  if (entry.stalled) return `${fmt(entry.p50)} then stalled (> ${entry.stallMs} ms)`;
  return fmt(entry.p50);
}

function threadpoolTable(run) {
  const m5 = run.measurements.threadpoolHealth.results;
  const counts = run.config.threadpoolHealth.waiterCounts;
  const rows = run.specs.map((spec) => {
    const r = m5[spec.id];
    if (r.na) return [spec.label, `n/a: ${reason(r.na)}`, ...counts.slice(1).map(() => ''), ''];
    const idle = r.byWaiters[counts[0]];
    const most = r.byWaiters[counts[counts.length - 1]];
    let ratio = '–';
    if (most?.stalled) ratio = '∞ (stalled)';
    else if (idle && most && !idle.na && !most.na) ratio = `${fmt(most.p50 / idle.p50)}×`;
    return [spec.label, ...counts.map((n) => readFileCell(r.byWaiters[n])), ratio];
  });
  return table(
    [
      'contender',
      ...counts.map((n) => `5. readFile p50 µs, ${n} waiters`),
      `${counts[counts.length - 1]} waiters ÷ idle`,
    ],
    rows,
  );
}

function scaleTable(run) {
  const m7 = run.measurements.scale.results;
  const cfg = run.config.scale;
  const rows = run.specs.map((spec) => {
    const { many, waiters } = m7[spec.id];
    const manyCells = many.na
      ? [`n/a: ${reason(many.na)}`, '', '']
      : [fmt(many.acquireMs), fmt(many.releaseMs), fmt(many.rssDeltaBytes / 2 ** 20)];
    let waiterCells;
    if (waiters.na) waiterCells = [`n/a: ${reason(waiters.na)}`, ''];
    else if (waiters.timedOut)
      waiterCells = [`${waiters.served}/${waiters.waiters} within ${cfg.timeoutMs / 1000} s`, '–'];
    else waiterCells = [`${waiters.served}/${waiters.waiters}`, fmt(waiters.longestMs)];
    return [spec.label, ...manyCells, ...waiterCells];
  });
  return table(
    [
      'contender',
      `7. hold ${cfg.locks.toLocaleString('en-US')} locks: ms`,
      'release all: ms',
      'RSS + MB',
      `${cfg.waiters} waiters on one lock: served`,
      'longest wait after release, ms',
    ],
    rows,
  );
}

function verdict(ok) {
  return ok ? 'met' : '**MISSED**';
}

/** The issue's targets, checked against this run. */
export function targets(run) {
  const m = run.measurements;
  const u = m.uncontended.results;
  const lines = [];
  const within = (id, floorId) => {
    if (!u[id] || !u[floorId]) return;
    const ratio = u[id].p50 / u[floorId].p50;
    lines.push(
      `- Uncontended ${id} within 1.5× of ${floorId}: ${fmt(u[id].p50)} µs vs ${fmt(u[floorId].p50)} µs = ${fmt(ratio)}× — ${verdict(ratio <= 1.5)}`,
    );
  };
  for (const kind of ['flock', 'ofd']) {
    within(`kl-async-${kind}-keep`, 'c-floor-keep');
    within(`kl-async-${kind}-remove`, 'c-floor-remove');
  }
  const legacy = u['legacy-marker']?.p50;
  const def = legacy / u['kl-async-flock-remove']?.p50;
  const keep = legacy / u['kl-async-flock-keep']?.p50;
  lines.push(`- Default (remove) ≥ 8× faster than the legacy marker: ${fmt(def)}× — ${verdict(def >= 8)}`);
  lines.push(`- Keep-file ≥ 25× faster than the legacy marker: ${fmt(keep)}× — ${verdict(keep >= 25)}`);
  const fsExt = u['fs-ext-async']?.p50;
  if (fsExt !== undefined && u['kl-async-flock-keep'])
    lines.push(
      `- Keep-file at or below fs-ext's bare async flock: ${fmt(u['kl-async-flock-keep'].p50)} µs vs ${fmt(fsExt)} µs — ${verdict(u['kl-async-flock-keep'].p50 <= fsExt)}`,
    );
  const h = m.handoff.results;
  const hk = h['kl-async-flock-keep'];
  const hr = h['kl-async-flock-remove'];
  if (hk && !hk.na) {
    lines.push(`- Hand-off p50 ≤ 100 µs (keep-file, async flock): ${fmt(hk.p50)} µs — ${verdict(hk.p50 <= 100)}`);
    lines.push(`- Hand-off p99 ≤ 1 ms (keep-file, async flock): ${fmt(hk.p99)} µs — ${verdict(hk.p99 <= 1000)}`);
    if (hr && !hr.na) {
      lines.push(
        `- Extra cost of re-opening after the unlink (removeOnRelease): p50 ${fmt(hr.p50)} µs vs ${fmt(hk.p50)} µs keep-file = +${fmt(hr.p50 - hk.p50)} µs`,
      );
    }
  }
  const c = m.crashRecovery.results['kl-async-flock-keep'];
  const cc = m.crashRecovery.withCHolder['kl-async-flock-keep'];
  const cf = m.crashRecovery.results['c-floor-keep'];
  if (c && !c.na) {
    lines.push(
      `- Crash recovery p50 ≤ 5 ms: ${fmt(c.p50)} ms — ${verdict(c.p50 <= 5)}` +
        (cc && !cc.na
          ? `; with a C holder killed (waiter side only): ${fmt(cc.p50)} ms — ${verdict(cc.p50 <= 5)}`
          : '') +
        (cf && !cf.na ? `; C floor (C holder, C waiter): ${fmt(cf.p50)} ms` : ''),
    );
  }
  const w = m.waitingCost.results['kl-async-flock-keep'];
  if (w && !w.na) {
    // "~0": all waiters together under 1% of one core during the hold.
    const budget = (0.01 * w.holdMs) / 1000;
    lines.push(
      `- Waiting costs ~0 CPU (${w.waiters} waiters, ${w.holdMs / 1000} s): ${fmt(w.schedSeconds)} CPU s (budget ${fmt(budget)} s = 1% of a core) — ${verdict(w.schedSeconds <= budget)}`,
    );
  }
  const t = m.threadpoolHealth.results['kl-async-flock-keep'];
  const counts = run.config.threadpoolHealth.waiterCounts;
  if (t && !t.na) {
    const idle = t.byWaiters[counts[0]];
    const most = t.byWaiters[counts[counts.length - 1]];
    if (idle && most && !idle.na && !most.na) {
      const ratio = most.stalled ? Number.POSITIVE_INFINITY : most.p50 / idle.p50;
      lines.push(
        `- readFile with ${counts[counts.length - 1]} waiters within 2× of idle: ${fmt(most.p50)} µs vs ${fmt(idle.p50)} µs = ${fmt(ratio)}× — ${verdict(ratio <= 2)}`,
      );
    }
  }
  return lines.join('\n');
}

/** The whole report as Markdown. */
export function markdown(run) {
  const { machine } = run;
  const notes = run.specs.filter((spec) => spec.note).map((spec) => `- ${spec.label}: ${spec.note}.`);
  return [
    `## kernel-lock benchmark (${run.quick ? 'quick' : 'full'} run, ${run.startedAt})`,
    '',
    `Machine: ${machine.cpuModel}, ${machine.cpus} CPUs, ${machine.memGiB} GiB, Linux ${machine.kernel}, ` +
      `${machine.fsType} (${machine.dir}); Node ${machine.node}; load average at start ${machine.loadStart.join(' ')}, ` +
      `at end ${run.loadEnd.join(' ')}. Legacy baseline: ${run.legacySource}.`,
    '',
    '### Cost: uncontended cycle (1) and contended throughput (6)',
    '',
    costTable(run),
    '',
    '### Waiting: hand-off (2), crash recovery (3), CPU while waiting (4)',
    '',
    waitTable(run),
    '',
    '### Threadpool health (5): fs.promises.readFile latency while waits are pending in the same process',
    '',
    threadpoolTable(run),
    '',
    '### Scale (7)',
    '',
    scaleTable(run),
    '',
    '### Targets (issue 6)',
    '',
    targets(run),
    '',
    '### Notes',
    '',
    ...notes,
    `- Hand-off: ${run.config.handoff.rounds}×${run.config.handoff.perRound} hand-offs per contender ` +
      `(${run.config.handoff.rounds}×${run.config.handoff.pollPerRound} for polling locks, whose hand-off is their poll interval).`,
    `- Crash recovery: ${run.config.crashRecovery.rounds}×${run.config.crashRecovery.killsPerRound} kills per contender ` +
      `(${run.config.crashRecovery.rounds}×${run.config.crashRecovery.staleKillsPerRound} for proper-lockfile, which waits for its 2 s stale threshold); ` +
      `${run.config.crashRecovery.rounds}×${run.config.crashRecovery.cHolderKillsPerRound} kills of a C holder (3b).`,
    '- Crash recovery (3b): the killed holder is a C process and the contender waits; (3) minus (3b) is the time the kernel takes to tear down a SIGKILLed Node process (address space, threads) before it closes its files and drops its locks.',
    `- CPU (4): control — ${run.measurements.waitingCost.control.waiters} idle Node processes that wait for nothing used ` +
      `${fmt(run.measurements.waitingCost.control.schedSeconds)} CPU s over the same ${run.config.waitingCost.holdMs / 1000} s.`,
    '- CPU (4): sum over the waiter processes of /proc/<pid>/task/*/schedstat run time (ns precision); "stat" is utime+stime from /proc/<pid>/stat (10 ms ticks).',
    '- os-lock takes POSIX locks, which belong to the process: waiters inside one process do not exclude each other (5, 7).',
  ].join('\n');
}

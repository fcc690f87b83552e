// The Markdown report: the goals of issue 16 judged from this run (ratios,
// per round), then a table per measurement (absolute figures and ratios),
// the load during each, and what each n/a means.
import { goalsMarkdown } from './goals.mjs';
import { floorFor } from './measurements.mjs';
import { fmt } from './stats.mjs';

/** An n/a reason fit for a table cell: one line, bounded. */
function reason(text) {
  const line =
    String(text)
      .split('\n')
      .find((part) => part.trim() !== '' && !/^\s*at /.test(part)) ?? '';
  return line.length > 140 ? `${line.slice(0, 139)}…` : line;
}

const na = (entry) => {
  if (entry === undefined) return 'not measured in this run';
  return entry?.na ? `n/a: ${reason(entry.na)}` : null;
};
const median = (values) => {
  const sorted = (values ?? []).filter(Number.isFinite).sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : sorted[Math.floor(sorted.length / 2)];
};
const range = (values) => {
  const finite = (values ?? []).filter(Number.isFinite);
  return finite.length === 0
    ? '–'
    : `${fmt(median(finite))}× (${fmt(Math.min(...finite))}–${fmt(Math.max(...finite))})`;
};

function table(header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
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
  const m1 = run.measurements.uncontended?.results ?? {};
  const m6 = run.measurements.throughput?.results ?? {};
  const legacy = m1['legacy-marker'];
  const rows = run.specs
    .filter((spec) => m1[spec.id] || m6[spec.id])
    .map((spec) => {
      const r = m1[spec.id];
      const floor = m1[floorFor(spec)];
      const t = m6[spec.id];
      const cycles = na(t) ?? `${fmt(t.cyclesPerSecond)}${t.linesOk ? '' : ` (${t.torn} torn lines!)`}`;
      if (!r || r.na) return [spec.label, waitShort(spec), na(r), '', '', '', '', cycles];
      return [
        spec.label,
        waitShort(spec),
        fmt(r.p50),
        fmt(r.p99),
        spec.floor || !floor ? '1' : `${fmt(r.p50 / floor.p50)}×`,
        spec.floor ? '' : range(r.roundRatios),
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
      'per-round ratio: median (min–max)',
      'legacy ÷ this',
      `6. cycles/s (${run.config.throughput?.processes ?? 4} procs)`,
    ],
    rows,
  );
}

function handoffTable(run) {
  const h = run.measurements.handoff;
  if (!h?.perSettle) return 'Not measured in this run.';
  const rows = [];
  for (const spec of run.specs) {
    for (const [settle, { results }] of Object.entries(h.perSettle)) {
      const r = results[spec.id];
      if (r === undefined) continue;
      if (r.na) {
        rows.push([spec.label, `${settle}`, `n/a: ${reason(r.na)}`, '', '', '', '', '', '']);
        continue;
      }
      rows.push([
        spec.label,
        `${settle}`,
        fmt(r.p50),
        fmt(r.p99),
        String(r.n),
        r.ratioP50 === undefined ? (spec.floor ? '1' : '–') : `${fmt(r.ratioP50)}×`,
        r.ratioP99 === undefined ? (spec.floor ? '1' : '–') : `${fmt(r.ratioP99)}×`,
        r.roundRatios ? range(r.roundRatios) : '',
        r.twoWake
          ? `${fmt(r.twoWake.ratioP50)}× / ${fmt(r.twoWake.ratioP99)}×; rounds ${range(r.twoWake.roundRatios)}`
          : '',
      ]);
    }
  }
  return table(
    [
      'waiter',
      'settle ms',
      '2. hand-off p50 µs',
      'p99 µs',
      'n',
      'p50 ÷ C floor',
      'p99 ÷ C floor',
      'per-round p50 ratio: median (min–max)',
      '÷ C two wake-ups: p50 / p99; per-round p50',
    ],
    rows,
  );
}

function waitTable(run) {
  const { crashRecovery, waitingCost } = run.measurements;
  const cpu = run.config.waitingCost;
  const rows = run.specs
    .filter((spec) => crashRecovery?.results[spec.id] || waitingCost?.results[spec.id])
    .map((spec) => {
      const c = crashRecovery?.results[spec.id];
      const cc = crashRecovery?.withCHolder[spec.id];
      const w = waitingCost?.results[spec.id];
      const cpuCell =
        na(w) ??
        `${fmt(w.schedSeconds)} (stat ${fmt(w.statSeconds)})${w.stillWaiting ? '' : ' – a waiter got the lock!'}`;
      return [
        spec.label,
        spec.timeout,
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
      '3. crash recovery p50 ms',
      'p99 ms',
      'n',
      '3b. C holder killed: p50 / p99 ms',
      `4. CPU s, ${cpu?.waiters} waiters, ${(cpu?.holdMs ?? 0) / 1000} s hold`,
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
  const m5 = run.measurements.threadpoolHealth?.results ?? {};
  const counts = run.config.threadpoolHealth?.waiterCounts ?? [];
  const rows = run.specs
    .filter((spec) => m5[spec.id])
    .map((spec) => {
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
  const m7 = run.measurements.scale?.results ?? {};
  const cfg = run.config.scale;
  const rows = run.specs
    .filter((spec) => m7[spec.id])
    .map((spec) => {
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

function heldTable(run) {
  const m8 = run.measurements.heldMany?.results ?? {};
  const rows = run.specs
    .filter((spec) => m8[spec.id] && !m8[spec.id].na)
    .map((spec) => {
      const r = m8[spec.id];
      return [spec.label, fmt(r.oneP50), fmt(r.manyP50), `${fmt(r.ratio)}×`, range(r.roundRatios)];
    });
  const locks = (run.config.heldMany?.locks ?? 10_000).toLocaleString('en-US');
  return table(
    [
      'contender',
      '8. cycle p50 µs, 1 other lock held',
      `with ${locks} held`,
      'ratio (median of rounds)',
      'per-round ratio: median (min–max)',
    ],
    rows,
  );
}

function crowdTable(run) {
  const m9 = run.measurements.crowd?.results ?? {};
  const counts = run.config.crowd?.counts ?? [];
  const rows = run.specs
    .filter((spec) => m9[spec.id] && !m9[spec.id].na)
    .map((spec) => {
      const r = m9[spec.id];
      return [
        spec.label,
        ...counts.map((n) => {
          const c = r.byCount[n];
          return c ? `${fmt(c.cpuPerHandoffUs)} µs / ${c.overtakers} / ${fmt(c.wallMs)} ms` : '–';
        }),
        `${fmt(r.flatness)}×`,
      ];
    });
  return table(
    [
      'contender',
      ...counts.map((n) => `9. ${n} waiters: CPU per hand-off / served out of order / wall`),
      `CPU per hand-off, ${counts[counts.length - 1]} ÷ ${counts[0]}`,
    ],
    rows,
  );
}

function loadLine(run) {
  const parts = Object.entries(run.measurements).map(
    ([key, m]) => `${key} ${m.loadStart?.[0] ?? '?'}→${m.loadEnd?.[0] ?? '?'}`,
  );
  return `Load average (1 min) at the start and end of each part: ${parts.join(', ')}.`;
}

/** The whole report as Markdown. */
export function markdown(run) {
  const { machine } = run;
  const notes = run.specs.filter((spec) => spec.note).map((spec) => `- ${spec.label}: ${spec.note}.`);
  const h = run.config.handoff;
  const c = run.config.crashRecovery;
  const parts = [
    `## kernel-lock benchmark (${run.quick ? 'quick' : 'full'} run, ${run.startedAt})`,
    '',
    `Machine: ${machine.cpuModel}, ${machine.cpus} CPUs, ${machine.memGiB} GiB, Linux ${machine.kernel}, ` +
      `${machine.fsType} (${machine.dir}); Node ${machine.node}; load average at start ${machine.loadStart.join(' ')}, ` +
      `at end ${run.loadEnd.join(' ')}. Legacy baseline: ${run.legacySource}.` +
      (run.baseline ? ` Baseline build ("${run.baseline.name}"): ${run.baseline.dist}.` : ''),
    '',
    loadLine(run),
    '',
    '### Goals (issue 16), as ratios measured side by side in this run',
    '',
    goalsMarkdown(run),
    '',
  ];
  if (run.measurements.uncontended || run.measurements.throughput) {
    parts.push('### Cost: uncontended cycle (1) and contended throughput (6)', '', costTable(run), '');
  }
  if (run.measurements.handoff) {
    parts.push(
      '### Hand-off across processes (2): the same C holder releases, the contender waits',
      '',
      handoffTable(run),
      '',
    );
  }
  if (run.measurements.crashRecovery || run.measurements.waitingCost) {
    parts.push('### Waiting: crash recovery (3), CPU while waiting (4)', '', waitTable(run), '');
  }
  if (run.measurements.threadpoolHealth) {
    parts.push(
      '### Threadpool health (5): fs.promises.readFile latency while waits are pending in the same process',
      '',
      threadpoolTable(run),
      '',
    );
  }
  if (run.measurements.scale) parts.push('### Scale (7)', '', scaleTable(run), '');
  if (run.measurements.heldMany) parts.push('### Many locks held (8)', '', heldTable(run), '');
  if (run.measurements.crowd) parts.push('### N waiters in one process (9)', '', crowdTable(run), '');
  parts.push('### Notes', '', ...notes);
  if (h) {
    parts.push(
      `- Hand-off (2): the holder is a C process (bench/floor.c) of the waiter's lock kind, for every waiter (a process of the same library for marker locks); it releases on "drop" and reports the instant only afterwards, so nothing is written inside the measured window. ` +
        `${h.rounds} rounds × ${h.perBlock} hand-offs per contender and settle time (${h.pollPerBlock} for polling locks), blocks interleaved A B C … C B A; ratios are to the C waiter with the same holder, in the same run; "per-round" compares the blocks of the same round. ` +
        `The C waiter blocked in flock(2) pays one wake-up; "C, thread + eventfd + epoll" pays the two every async Node waiter pays (a thread blocked in the lock call wakes, then wakes the event loop): its ratio is the second wake-up's cost on this machine, and "÷ C two wake-ups" compares an async waiter (kernel lock, file kept) with that shape.`,
    );
  }
  if (c) {
    parts.push(
      `- Crash recovery: ${c.rounds}×${c.killsPerRound} kills per contender (${c.rounds}×${c.staleKillsPerRound} for proper-lockfile, which waits for its 2 s stale threshold); ${c.rounds}×${c.cHolderKillsPerRound} kills of a C holder (3b). (3) minus (3b) is the time the kernel takes to tear down a SIGKILLed Node process before it closes its files.`,
    );
  }
  if (run.measurements.waitingCost) {
    parts.push(
      `- CPU (4): control — ${run.measurements.waitingCost.control.waiters} idle Node processes that wait for nothing used ` +
        `${fmt(run.measurements.waitingCost.control.schedSeconds)} CPU s over the same ${run.config.waitingCost.holdMs / 1000} s; ` +
        'the figure is the sum over the waiter processes of /proc/<pid>/task/*/schedstat run time; "stat" is utime+stime (10 ms ticks).',
    );
  }
  parts.push(
    "- Scale (7) and many locks held (8): the lock files exist before the measurement (creating 10,000 inodes is the file system's cost).",
    '- N waiters (9): each waiter is started once the previous one sleeps in the kernel, so the kernel queue order is the start order; CPU is getrusage of the waiting process (every thread) from the first release to the last waiter served.',
    '- os-lock takes POSIX locks, which belong to the process: waiters inside one process do not exclude each other (5, 7).',
  );
  if (run.quick) {
    parts.push(
      '- Quick run: hand-off, crash recovery, waiting cost, throughput and scale measure only the goal contenders and their C floors.',
    );
  }
  return parts.join('\n');
}

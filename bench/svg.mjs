// bench/results.svg: first the ratios (issue 16's goals with their
// targets, the hand-off per settle time, the uncontended cycle), each bar
// a ratio to the C floor measured in the same run; then latency
// distributions per contender, one panel per measurement, on a log axis
// (the contenders differ by orders of magnitude): whisker p1..p99, box
// p25..p75, bar at the median. Hand-written SVG, no dependency.
import { issue16Goals } from './goals.mjs';
import { floorFor } from './measurements.mjs';

const ROW = 18;
const LABEL_WIDTH = 300;
const PLOT_WIDTH = 560;
const PAD = 12;
const COLORS = {
  'kernel-lock': '#1f77b4',
  'C floor': '#444444',
  'fs-ext': '#2ca02c',
  'fs-native-extensions': '#17becf',
  'os-lock': '#9467bd',
  'proper-lockfile': '#ff7f0e',
  'legacy marker': '#d62728',
  'kernel-lock before': '#9ecae1',
};

const escapeXml = (text) => String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function panel(title, unit, rows, top) {
  const valid = rows.filter((row) => row.summary && !row.summary.na && row.summary.n > 0);
  const lo = Math.min(...valid.map((row) => row.summary.p1));
  const hi = Math.max(...valid.map((row) => row.summary.p99));
  const minExp = Math.floor(Math.log10(Math.max(lo, 1e-3)));
  const maxExp = Math.ceil(Math.log10(Math.max(hi, lo * 10)));
  const x = (value) =>
    LABEL_WIDTH + ((Math.log10(Math.max(value, 10 ** minExp)) - minExp) / (maxExp - minExp)) * PLOT_WIDTH;
  const parts = [];
  parts.push(`<text x="${PAD}" y="${top + 16}" font-weight="bold">${escapeXml(title)}</text>`);
  const plotTop = top + 26;
  const plotBottom = plotTop + rows.length * ROW;
  for (let e = minExp; e <= maxExp; e++) {
    const gx = x(10 ** e);
    parts.push(`<line x1="${gx}" y1="${plotTop}" x2="${gx}" y2="${plotBottom}" stroke="#ddd"/>`);
    parts.push(
      `<text x="${gx}" y="${plotBottom + 14}" text-anchor="middle" font-size="11">${escapeXml(`${10 ** e} ${unit}`)}</text>`,
    );
  }
  rows.forEach((row, i) => {
    const cy = plotTop + i * ROW + ROW / 2;
    const color = COLORS[row.lib] ?? '#333';
    parts.push(
      `<text x="${LABEL_WIDTH - 8}" y="${cy + 4}" text-anchor="end" font-size="12">${escapeXml(row.label)}</text>`,
    );
    const s = row.summary;
    if (!s || s.na || s.n === 0) {
      parts.push(`<text x="${LABEL_WIDTH + 4}" y="${cy + 4}" font-size="11" fill="#888">n/a</text>`);
      return;
    }
    parts.push(
      `<g><title>${escapeXml(`${row.label}: p50 ${s.p50.toFixed(1)} ${unit}, p99 ${s.p99.toFixed(1)} ${unit}, n=${s.n}`)}</title>`,
    );
    parts.push(`<line x1="${x(s.p1)}" y1="${cy}" x2="${x(s.p99)}" y2="${cy}" stroke="${color}"/>`);
    parts.push(
      `<rect x="${x(s.p25)}" y="${cy - 5}" width="${Math.max(1, x(s.p75) - x(s.p25))}" height="10" fill="${color}" fill-opacity="0.35" stroke="${color}"/>`,
    );
    parts.push(
      `<line x1="${x(s.p50)}" y1="${cy - 7}" x2="${x(s.p50)}" y2="${cy + 7}" stroke="${color}" stroke-width="2.5"/>`,
    );
    parts.push('</g>');
  });
  return { svg: parts.join('\n'), height: plotBottom + 24 - top };
}

/**
 * A panel of ratio bars on a linear axis from 0, with a dashed line at each
 * row's target (when it has one) and at 1 (the C floor).
 */
function ratioPanel(title, rows, top) {
  const valid = rows.filter((row) => Number.isFinite(row.value));
  const hi = Math.max(2, ...valid.map((row) => Math.min(row.value, 20)), ...rows.map((row) => row.target ?? 0)) * 1.1;
  const x = (value) => LABEL_WIDTH + (Math.min(value, hi) / hi) * PLOT_WIDTH;
  const parts = [`<text x="${PAD}" y="${top + 16}" font-weight="bold">${escapeXml(title)}</text>`];
  const plotTop = top + 26;
  const plotBottom = plotTop + rows.length * ROW;
  const step = hi > 10 ? 2 : hi > 4 ? 1 : 0.5;
  for (let v = 0; v <= hi; v += step) {
    parts.push(`<line x1="${x(v)}" y1="${plotTop}" x2="${x(v)}" y2="${plotBottom}" stroke="#eee"/>`);
    parts.push(`<text x="${x(v)}" y="${plotBottom + 14}" text-anchor="middle" font-size="11">${v}×</text>`);
  }
  parts.push(`<line x1="${x(1)}" y1="${plotTop}" x2="${x(1)}" y2="${plotBottom}" stroke="#444"/>`);
  rows.forEach((row, i) => {
    const cy = plotTop + i * ROW + ROW / 2;
    const color = COLORS[row.lib] ?? '#1f77b4';
    parts.push(
      `<text x="${LABEL_WIDTH - 8}" y="${cy + 4}" text-anchor="end" font-size="12">${escapeXml(row.label)}</text>`,
    );
    if (!Number.isFinite(row.value)) {
      parts.push(`<text x="${LABEL_WIDTH + 4}" y="${cy + 4}" font-size="11" fill="#888">n/a</text>`);
      return;
    }
    parts.push(`<g><title>${escapeXml(`${row.label}: ${row.value.toFixed(2)}×`)}</title>`);
    parts.push(
      `<rect x="${LABEL_WIDTH}" y="${cy - 6}" width="${Math.max(1, x(row.value) - LABEL_WIDTH)}" height="12" fill="${color}" fill-opacity="0.7"/>`,
    );
    parts.push(
      `<text x="${x(row.value) + 4}" y="${cy + 4}" font-size="11">${row.value.toFixed(2)}×${row.value > hi ? ' →' : ''}</text>`,
    );
    if (row.target !== undefined) {
      parts.push(
        `<line x1="${x(row.target)}" y1="${cy - 8}" x2="${x(row.target)}" y2="${cy + 8}" stroke="#d62728" stroke-width="2" stroke-dasharray="3,2"/>`,
      );
    }
    parts.push('</g>');
  });
  return { svg: parts.join('\n'), height: plotBottom + 24 - top };
}

function goalRows(run) {
  const rows = [];
  for (const g of issue16Goals(run)) {
    for (const row of g.rows) {
      if (row.unit === 'ms') continue; // not a ratio
      const short = g.goal.split(' (')[0].split(':')[0];
      rows.push({
        label: `${short}${row.key ? `, ${row.key}` : ''} [${row.build}]`.slice(0, 60),
        value: row.value,
        target: g.target ?? undefined, // informative goals have none
        lib: row.build === 'this build' ? 'kernel-lock' : 'kernel-lock before',
      });
    }
  }
  return rows;
}

function handoffRatioRows(run) {
  const rows = [];
  for (const [settle, { results }] of Object.entries(run.measurements.handoff?.perSettle ?? {})) {
    for (const spec of run.specs) {
      const r = results[spec.id];
      if (!r || r.na || r.ratioP50 === undefined) continue; // the one-wake C floors have none
      rows.push({ label: `${spec.label}, settle ${settle} ms`, value: r.ratioP50, lib: spec.lib });
    }
  }
  return rows;
}

function handoffTwoWakeRows(run) {
  const rows = [];
  for (const [settle, { results }] of Object.entries(run.measurements.handoff?.perSettle ?? {})) {
    for (const spec of run.specs) {
      const r = results[spec.id];
      if (!r || r.na || !r.twoWake) continue;
      rows.push({ label: `${spec.label}, settle ${settle} ms`, value: r.twoWake.ratioP50, lib: spec.lib });
    }
  }
  return rows;
}

function uncontendedRatioRows(run) {
  const u = run.measurements.uncontended?.results ?? {};
  return run.specs
    .filter((spec) => !spec.floor && u[spec.id] && !u[spec.id].na && u[floorFor(spec)])
    .map((spec) => ({ label: spec.label, value: u[spec.id].p50 / u[floorFor(spec)].p50, lib: spec.lib }));
}

/** Renders the ratio panels and the latency panels of a run. */
export function renderSvg(run) {
  let top = 36;
  const bodies = [];
  const ratioPanels = [
    ['Goals of issue 16: ratio (bar) and target (red dashes); 1× = the C floor', goalRows(run)],
    ['2. Hand-off p50 ÷ C waiter with the same C holder, per settle time', handoffRatioRows(run)],
    ['2. Hand-off p50 ÷ the C two-wake waiter (thread + eventfd + epoll), per settle time', handoffTwoWakeRows(run)],
    ['1. Uncontended cycle p50 ÷ C floor doing the same system calls', uncontendedRatioRows(run)],
  ];
  for (const [title, rows] of ratioPanels) {
    if (rows.length === 0) continue;
    const { svg, height } = ratioPanel(title, rows, top);
    bodies.push(svg);
    top += height + 16;
  }
  const m = run.measurements;
  const panels = [
    ['1. Uncontended acquire + release', 'µs', m.uncontended?.results],
    [
      `2. Hand-off across processes (C holder releases → waiter holds), settle ${run.config.handoff?.settles?.[0]} ms`,
      'µs',
      m.handoff?.results,
    ],
    ['3. Crash recovery (SIGKILL holder → waiter holds)', 'ms', m.crashRecovery?.results],
    ['3b. Crash recovery, killed holder is a C process', 'ms', m.crashRecovery?.withCHolder],
  ];
  for (const [title, unit, results] of panels) {
    if (!results) continue;
    const rows = run.specs
      .filter((spec) => results[spec.id])
      .map((spec) => ({ label: spec.label, lib: spec.lib, summary: results[spec.id] }));
    if (rows.length === 0) continue;
    const { svg, height } = panel(title, unit, rows, top);
    bodies.push(svg);
    top += height + 16;
  }
  const width = LABEL_WIDTH + PLOT_WIDTH + 40;
  const subtitle = `${run.quick ? 'quick' : 'full'} run ${run.startedAt} · Node ${run.machine.node} · ${run.machine.cpuModel} ×${run.machine.cpus} · load ${run.machine.loadStart[0]}→${run.loadEnd[0]} · distributions: whisker p1–p99, box p25–p75, bar p50`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${top}" viewBox="0 0 ${width} ${top}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${PAD}" y="20" font-size="15" font-weight="bold">kernel-lock vs peers: ratios to the C floor, then latency distributions</text>`,
    `<text x="${PAD}" y="32" font-size="10" fill="#555">${escapeXml(subtitle)}</text>`,
    ...bodies,
    '</svg>',
    '',
  ].join('\n');
}

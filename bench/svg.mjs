// bench/results.svg: latency distributions per contender, one panel per
// measurement, on a log axis (the contenders differ by orders of magnitude).
// Each row: whisker p1..p99, box p25..p75, bar at the median. Hand-written
// SVG, no dependency.

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

/** Renders the three latency panels of a run. */
export function renderSvg(run) {
  const panels = [
    ['1. Uncontended acquire + release', 'µs', run.measurements.uncontended.results],
    ['2. Hand-off across processes (release → waiter holds)', 'µs', run.measurements.handoff.results],
    ['3. Crash recovery (SIGKILL holder → waiter holds)', 'ms', run.measurements.crashRecovery.results],
    ['3b. Crash recovery, killed holder is a C process', 'ms', run.measurements.crashRecovery.withCHolder],
  ];
  let top = 36;
  const bodies = [];
  for (const [title, unit, results] of panels) {
    const rows = run.specs.map((spec) => ({ label: spec.label, lib: spec.lib, summary: results[spec.id] }));
    const { svg, height } = panel(title, unit, rows, top);
    bodies.push(svg);
    top += height + 16;
  }
  const width = LABEL_WIDTH + PLOT_WIDTH + 40;
  const subtitle = `${run.quick ? 'quick' : 'full'} run ${run.startedAt} · Node ${run.machine.node} · ${run.machine.cpuModel} ×${run.machine.cpus} · whisker p1–p99, box p25–p75, bar p50`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${top}" viewBox="0 0 ${width} ${top}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${PAD}" y="20" font-size="15" font-weight="bold">kernel-lock vs peers: latency distributions</text>`,
    `<text x="${PAD}" y="32" font-size="10" fill="#555">${escapeXml(subtitle)}</text>`,
    ...bodies,
    '</svg>',
    '',
  ].join('\n');
}

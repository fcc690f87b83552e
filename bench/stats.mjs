// Sample summaries: the percentiles the tables and the SVG show.

/** Percentile by nearest rank over a sorted array. */
function rank(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/** Summary of a sample set (any unit; the caller names it). */
export function summarize(samples) {
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    n,
    min: sorted[0] ?? Number.NaN,
    p1: rank(sorted, 1),
    p25: rank(sorted, 25),
    p50: rank(sorted, 50),
    p75: rank(sorted, 75),
    p90: rank(sorted, 90),
    p99: rank(sorted, 99),
    max: sorted[n - 1] ?? Number.NaN,
    mean: n === 0 ? Number.NaN : sum / n,
  };
}

/** Formats a number with a precision that suits its size. */
export function fmt(value) {
  if (value === undefined || value === null || Number.isNaN(value)) return '–';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

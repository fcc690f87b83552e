// A plain aligned text table. Cells are expected to be printable already
// (see printable() in inspect/format.ts); this only pads, by display width
// (width.ts), so CJK and emoji cells line up too.
import { displayWidth, padToWidth } from './width.js';

/** Renders rows under headers, columns separated by two spaces; the last column is not padded. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ''))));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : padToWidth(cell, widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

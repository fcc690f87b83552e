// Reads a session transcript after a run and counts what went wrong, from
// the file alone: torn lines (not one whole JSON record: two writers'
// pieces mixed) and overlapping writers (a turn's `begin` written while
// another turn was still open, i.e. that other turn wrote again later).

export interface TranscriptStats {
  lines: number;
  tornLines: number;
  overlappingWriters: number;
  /** One sentence per overlap, for the notes. */
  overlaps: string[];
}

interface Entry {
  inv: number;
  ev: string;
}

function parse(line: string): Entry | null {
  try {
    const value = JSON.parse(line) as Partial<Entry>;
    return typeof value.inv === 'number' && typeof value.ev === 'string' ? { inv: value.inv, ev: value.ev } : null;
  } catch {
    return null;
  }
}

/** Counts torn lines and overlapping writers in a transcript's text. */
export function analyzeTranscript(text: string): TranscriptStats {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const entries = lines.map(parse);
  const spans = new Map<number, { first: number; last: number }>();
  entries.forEach((entry, index) => {
    if (entry === null) return;
    const span = spans.get(entry.inv);
    if (span === undefined) spans.set(entry.inv, { first: index, last: index });
    else span.last = index;
  });
  const overlaps: string[] = [];
  entries.forEach((entry, index) => {
    if (entry === null || entry.ev !== 'begin') return;
    for (const [inv, span] of spans) {
      if (inv !== entry.inv && span.first < index && index < span.last) {
        overlaps.push(`invocation ${entry.inv} began while invocation ${inv}'s turn was still being written`);
        return;
      }
    }
  });
  return {
    lines: lines.length,
    tornLines: entries.filter((e) => e === null).length,
    overlappingWriters: overlaps.length,
    overlaps,
  };
}

/**
 * Milliseconds from the first line of turn `victim` to the first line of the
 * turn that began after it (its successor: each turn's first line is
 * written right after it was granted the lock), from the lines' `at` stamps;
 * null when either is missing.
 */
export function handoverMs(text: string, victim: number): number | null {
  let victimAt: number | null = null;
  for (const raw of text.split('\n')) {
    let entry: { inv?: unknown; ev?: unknown; at?: unknown };
    try {
      entry = JSON.parse(raw) as typeof entry;
    } catch {
      continue;
    }
    if (entry.ev !== 'begin' || typeof entry.at !== 'number') continue;
    if (entry.inv === victim) victimAt = entry.at;
    else if (victimAt !== null) return entry.at - victimAt;
  }
  return null;
}

// The demo's table and its notes. The notes are written from the measured
// rows, so they say "legacy does fine here" only when it did.
import type { DemoConfig } from './config.js';
import type { RunRow, Scenario } from './scenarios.js';

function cut(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** The error without its lock path (the same in every row): `locked (1000ms): pid=42 held by pid 42 (alive, …)`. */
function compactError(message: string): string {
  return message.replace(/^session file locked \(timeout (\d+)ms\): (\S+) \S+/, 'session file locked ($1ms): $2');
}

function clean(row: RunRow): boolean {
  return row.overlappingWriters === 0 && row.tornLines === 0;
}

/** Whether a kernel-lock row shows what it must: no overlap, no torn line, and full success ((d) only with fencing on). */
export function kernelLockRowOk(row: RunRow): boolean {
  if (row.backend !== 'kernel-lock' || row.skipped !== undefined) return true;
  return clean(row) && ((row.scenario === 'd' && !row.fencing) || row.succeeded === row.expected);
}

/** `the next invocation began 512 ms after the orphan (its maxHoldMs: 500 ms)`. */
function takeoverText(row: RunRow, maxHoldMs: number, who: string): string {
  const after = row.takeoverMs === null ? '' : ` ${Math.round(row.takeoverMs)} ms after the victim's first line`;
  return `the next ${who} took over${after} (the victim's maxHoldMs: ${maxHoldMs} ms, counted from its grant)`;
}

function legacyNote(row: RunRow, config: DemoConfig): string {
  const fine = clean(row) && row.succeeded === row.expected;
  switch (row.scenario) {
    case 'a':
      return fine
        ? 'legacy does fine here: the dead pid is in our pid namespace, so the next invocation reclaims the marker.'
        : `legacy lost ${row.expected - row.succeeded} invocation(s) to the dead holder's marker.`;
    case 'b':
      return fine
        ? "legacy does fine here too: the victim's recorded pid (its pid inside its own namespace) is dead here or names another process with another start time, so the marker is reclaimed."
        : `legacy misjudged the other namespace's marker: ${row.expected - row.succeeded} failure(s), ${row.overlappingWriters} overlap(s).`;
    case 'c':
      return row.overlappingWriters + row.tornLines > 0
        ? `legacy took the session from a LIVE writer: its recorded pid means nothing in our namespace (dead or another process here), so the marker looked stale; ${row.overlappingWriters} turn(s) began inside its turn and ${row.tornLines} line(s) were torn.`
        : 'legacy happened not to interleave this time (timing); its check still cannot see a live writer in another namespace.';
    case 'd':
      return `the orphan is alive in our namespace, so legacy waits too and fails ${row.expected - row.succeeded} invocation(s); its message names only the pid.`;
    case 'e':
      return row.overlappingWriters + row.tornLines > 0
        ? `legacy's watchdog (sweep every ${config.legacyWatchdogIntervalMs} ms, compressed from 60 s) removed the hung run's marker after maxHoldMs, but nothing stops that run: when it woke it wrote into the transcript after later turns had begun (${row.overlappingWriters} overlapping).`
        : 'the hung run did not write late this time.';
  }
}

function kernelNote(row: RunRow, config: DemoConfig): string {
  switch (row.scenario) {
    case 'a':
      return 'the kernel dropped the lock when the holder died; the next invocation took it at once, nothing to reclaim.';
    case 'b':
      return 'the lock belongs to the open file, not to a pid: the kernel released it when the process died, in whatever namespace it ran.';
    case 'c':
      return 'the live writer in the other namespace kept its kernel lock; later invocations waited for it in the kernel (that wait is most of the time lost, and it is the correct behaviour).';
    case 'd': {
      if (row.fencing) {
        return (
          `fencing on (*): ${takeoverText(row, config.fencedMaxHoldMs, 'invocation')} and superseded the live orphan; ` +
          `the orphan's ${row.fencedWritesRefused} late append(s) through lock.write() were refused, so no write of it landed after its successor's first. ` +
          `Needs the runtime to route its appends through lock.write() (or lock.assertCurrent() right before each) and to set fencing: true; ` +
          `2026.4.24 does neither, and there the orphan is named, not removed (kernel-lock demo --runtime). ` +
          `maxHoldMs is compressed here below the lock timeout: with the runtime's minutes, invocations inside the orphan's maxHoldMs still time out, naming it.`
        );
      }
      const error = row.firstError ?? '(no failure)';
      return (
        `kernel-lock cannot help by itself here: a live process holds the lock, and no lock may be taken from a live holder. ` +
        `The error names it: ${error}. Remedies: set maxHoldMs (the orphan's own watchdog then releases it), ` +
        'hold the session lock only around transcript writes rather than for the whole run, or stop the orphan (pid and command line are in the message).'
      );
    }
    case 'e':
      if (row.fencing) {
        return (
          `fencing on (*): the hung run held the session past its maxHoldMs; ${takeoverText(row, config.maxHoldMs, 'run')} ` +
          `and superseded it (the stderr line names the superseded holder${row.stderr.length > 0 ? `: "${cut(row.stderr[0]!, 110)}"` : ''}). ` +
          `When the hung run woke, its ${row.fencedWritesRefused} late append(s) through lock.write() were refused, and its release() left the newer holder's lock alone. ` +
          'Needs the runtime to append through lock.write() and set fencing: true; without fencing, its own watchdog ends the hold at maxHoldMs and aborts lock.signal, which the append path must check.'
        );
      }
      return (
        `the watchdog force-released the hung run's lock at maxHoldMs (${config.maxHoldMs} ms) with one stderr line` +
        `${row.stderr.length > 0 ? ` ("${cut(row.stderr[0]!, 110)}")` : ''} and aborted the lock's signal; ` +
        "the hung run checked it before its late write and dropped it, and its late release() left the newer holder's lock alone. " +
        'That check is one line in the append path; a run that ignores lock.signal would write late exactly as in legacy.'
      );
  }
}

/** Notes for a row, from its numbers. */
export function rowNote(row: RunRow, config: DemoConfig): string {
  if (row.skipped !== undefined) return `skipped: ${row.skipped}`;
  return row.backend === 'legacy' ? legacyNote(row, config) : kernelNote(row, config);
}

/** The human-readable report. */
export function renderReport(
  rows: RunRow[],
  scenarios: readonly Scenario[],
  config: DemoConfig,
  header: string,
): string {
  const out: string[] = [header, ''];
  const widths = [38, 13, 8, 8, 5, 8, 7];
  const pad = (cells: string[]): string =>
    cells.map((cell, i) => (i < widths.length ? cell.padEnd(widths[i]!) : cell)).join(' ');
  out.push(pad(['scenario', 'backend', 'ok', 'overlap', 'torn', 'refused', 'lost s', 'first error']));
  for (const row of rows) {
    const name = `(${row.scenario}) ${row.title}`;
    const backend = row.fencing ? `${row.backend} *` : row.backend;
    if (row.skipped !== undefined) {
      out.push(pad([name, backend, '-', '-', '-', '-', '-', `skipped: ${cut(row.skipped, 60)}`]));
      continue;
    }
    out.push(
      pad([
        name,
        backend,
        `${row.succeeded}/${row.expected}`,
        String(row.overlappingWriters),
        String(row.tornLines),
        row.fencing ? String(row.fencedWritesRefused) : '-',
        row.secondsLost.toFixed(1),
        row.firstError === null ? '-' : cut(compactError(row.firstError), 120),
      ]),
    );
  }
  out.push('', 'ok: invocations that completed their turn, out of those the scenario did not sabotage itself.');
  out.push('overlap: turns that began while another turn was still being written (from the transcript).');
  out.push('torn: transcript lines that are not one whole record. lost s: time spent waiting for the lock.');
  out.push("refused: fenced writes refused, the superseded turn's late appends that never reached the transcript.");
  if (rows.some((row) => row.fencing)) {
    out.push(
      '* fencing on: needs the runtime to append through lock.write() (or call lock.assertCurrent() right before',
      '  each append) and to pass fencing: true; its later versions fence their writes. Rows without * need no runtime change.',
    );
  }
  out.push('');
  for (const scenario of scenarios) {
    out.push(`(${scenario.id}) ${scenario.story.replace('{victim}', String(config.victim))}.`);
    for (const row of rows.filter((r) => r.scenario === scenario.id)) {
      out.push(`    ${row.backend}: ${rowNote(row, config)}`);
    }
  }
  return out.join('\n');
}

// `kernel-lock status <file|dir>...`: one row per lock file, from the kernel.
import { lstatSync, type Stats, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  commandText,
  effectiveHolder,
  formatDuration,
  leaseHolderText,
  mainHolder,
  printable,
} from '../inspect/format.js';
import { inspectMany } from '../inspect/inspect.js';
import { lockFilePaths } from '../inspect/names.js';
import type { LockInspection } from '../inspect/types.js';
import { displayPath, escapePath } from '../lock/path-text.js';
import { runAsync } from '../proc/steps.js';
import { terminalSafeJson } from './json.js';
import { renderTable } from './table.js';
import { EXIT_USAGE, UsageError } from './usage.js';

/** Identifies the JSON document `status --json` prints; bumped only on incompatible changes. */
export const STATUS_SCHEMA = 'kernel-lock/status/1';

function cellsOf(inspection: LockInspection): string[] {
  const holder = mainHolder(inspection);
  const record = inspection.record;
  const trusted = inspection.recordMatchesHolder !== false ? record : null;
  let pid = '-';
  let alive = '-';
  let command = '';
  if (holder !== undefined) {
    const live = effectiveHolder(holder);
    if (live !== null) {
      pid = String(live.pid);
      alive = 'yes';
      command = commandText(live.argv);
      if (holder.sameNamespace === false && live.pid === holder.pid) command = `[other pid ns] ${command}`;
    } else if (holder.visible && holder.pid !== null) {
      pid = String(holder.pid);
      alive = 'no';
      command = '(exited; an inheritor of its descriptor holds the lock)';
    } else {
      pid = holder.pid === -1 ? 'ofd' : '?';
      alive = '?';
      const where = holder.sameNamespace === false ? 'another pid namespace' : 'not named by the kernel';
      const host = record?.hostname !== undefined ? `, host ${printable(record.hostname, 40)}` : '';
      const recorded = record?.pid !== undefined ? `, recorded pid ${record.pid}` : '';
      command = `(${where}${host}${recorded}) ${commandText(record?.argv)}`.trimEnd();
    }
    if (inspection.holders.length > 1) pid += ` +${inspection.holders.length - 1}`;
  } else if (record?.pid !== undefined) {
    // Not held: the record only says who held it last.
    pid = String(record.pid);
    const rp = inspection.recordProcess;
    alive = rp?.alive === true ? 'yes' : rp?.alive === false ? 'no' : '?';
    command = commandText(record.argv);
  }
  const held = inspection.heldForMs === null ? '-' : formatDuration(inspection.heldForMs);
  const owner = trusted?.owner === undefined ? '' : printable(trusted.owner, 40);
  return [inspection.state, pid, alive, held, owner, command, displayPath(inspection)];
}

function tokenCell(inspection: LockInspection): string {
  const lease = inspection.lease;
  if (lease === null) return '-';
  const superseded = lease.superseded.length > 0 ? ` +${lease.superseded.length} superseded` : '';
  return `${lease.token}${lease.current === null ? ' (over)' : ''}${superseded}`;
}

/** The human table for inspections; lease files add a TOKEN column and a line per superseded holder still alive. */
export function statusTable(inspections: readonly LockInspection[]): string {
  const leases = inspections.some((i) => i.lease !== null);
  const header = ['STATE', 'PID', 'ALIVE', 'HELD', 'OWNER', 'COMMAND', 'PATH'];
  if (leases) header.splice(5, 0, 'TOKEN');
  const rows = inspections.map((i) => {
    const cells = cellsOf(i);
    if (leases) cells.splice(5, 0, tokenCell(i));
    return cells;
  });
  const superseded = inspections.flatMap((i) =>
    (i.lease?.superseded ?? []).map((h) => `superseded, still alive: ${leaseHolderText(h)} on ${displayPath(i)}\n`),
  );
  return renderTable(header, rows) + superseded.join('');
}

/** What the arguments name: lock files to inspect, and arguments that name nothing (exit status 2). */
export interface StatusTargets {
  paths: (string | Buffer)[];
  /** Files that do not exist but could be lock files released and removed: inspected (free), with a note. */
  absent: string[];
  /** Arguments that name neither a directory nor a possible lock file, with the reason. */
  errors: string[];
}

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
}

/**
 * Expands the arguments: a directory stands for its `*<suffix>` files (by
 * raw name); a missing file is a lock file released and removed (free) only
 * when its name ends with the suffix and its directory exists. Any other
 * missing argument (`/no/such/dir`, a typo) is an error: it must not read
 * as "free".
 */
export async function statusTargets(targets: readonly string[], suffix: string): Promise<StatusTargets> {
  const result: StatusTargets = { paths: [], absent: [], errors: [] };
  for (const target of targets) {
    let st: Stats | undefined;
    let exists: boolean;
    try {
      st = statSync(target, { throwIfNoEntry: false });
      // A dangling symbolic link exists: inspect() reports what it is.
      exists = st !== undefined || lstatSync(target, { throwIfNoEntry: false }) !== undefined;
    } catch (error) {
      result.errors.push(`${escapePath(target)}: ${(error as Error).message}`);
      continue;
    }
    if (st?.isDirectory()) {
      try {
        result.paths.push(...(await runAsync(lockFilePaths(target, suffix))));
      } catch (error) {
        result.errors.push(`${escapePath(target)}: ${(error as Error).message}`);
      }
    } else if (exists) {
      result.paths.push(target);
    } else if (target.endsWith(suffix) && isDirectory(path.dirname(target))) {
      result.paths.push(target);
      result.absent.push(target);
    } else {
      result.errors.push(`${escapePath(target)}: no such file or directory`);
    }
  }
  return result;
}

/** Runs `status`; resolves with the exit status. */
export async function statusCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      suffix: { type: 'string', default: '.lock' },
    },
  });
  if (positionals.length === 0) throw new UsageError('status needs at least one lock file or directory', 'status');
  if (values.suffix === '') throw new UsageError('--suffix must not be empty', 'status');
  const targets = await statusTargets(positionals, values.suffix);
  const inspections = await inspectMany(targets.paths);
  for (const target of targets.absent) {
    process.stderr.write(
      `kernel-lock: note: ${escapePath(target)} does not exist (a released lock file is removed; it is free)\n`,
    );
  }
  for (const error of targets.errors) process.stderr.write(`kernel-lock: ${printable(error, 4096)}\n`);
  if (values.json) {
    process.stdout.write(`${terminalSafeJson({ schema: STATUS_SCHEMA, locks: inspections })}\n`);
  } else if (inspections.length === 0) {
    if (targets.errors.length === 0) process.stdout.write('no lock files found\n');
  } else {
    process.stdout.write(statusTable(inspections));
  }
  // An argument that names nothing fails the command even if others are free: a typo must not pass a gate.
  if (targets.errors.length > 0) return EXIT_USAGE;
  return inspections.some((i) => i.held) ? 1 : 0;
}

// `kernel-lock status <file|dir>...`: one row per lock file, from the kernel.
import { lstatSync, statSync } from 'node:fs';
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
import { finishInspections, inspectPending, newContext, type PendingInspection } from '../inspect/inspect.js';
import { lockFileNames } from '../inspect/scan.js';
import type { LockInspection } from '../inspect/types.js';
import { terminalSafeJson } from './json.js';
import { renderTable } from './table.js';
import { UsageError } from './usage.js';

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
  return [inspection.state, pid, alive, held, owner, command, printable(inspection.path, 4096)];
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
    (i.lease?.superseded ?? []).map(
      (h) => `superseded, still alive: ${leaseHolderText(h)} on ${printable(i.path, 4096)}\n`,
    ),
  );
  return renderTable(header, rows) + superseded.join('');
}

/** Inspects every argument (files, and directories scanned for `suffix`) against one /proc/locks read. */
export function inspectTargets(targets: readonly string[], suffix: string): LockInspection[] {
  const ctx = newContext();
  const pending: PendingInspection[] = [];
  for (const target of targets) {
    const st = statSync(target, { throwIfNoEntry: false });
    if (st?.isDirectory()) {
      for (const name of lockFileNames(target, suffix)) pending.push(inspectPending(path.resolve(target, name), ctx));
    } else {
      pending.push(inspectPending(target, ctx));
    }
  }
  return finishInspections(pending, ctx);
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
  const inspections = inspectTargets(positionals, values.suffix);
  for (const target of positionals) {
    // A typo in a directory name would otherwise read as "free".
    if (lstatSync(target, { throwIfNoEntry: false }) === undefined)
      process.stderr.write(`kernel-lock: note: ${printable(target, 4096)} does not exist\n`);
  }
  if (values.json) {
    process.stdout.write(`${terminalSafeJson({ schema: STATUS_SCHEMA, locks: inspections })}\n`);
  } else if (inspections.length === 0) {
    process.stdout.write('no lock files found\n');
  } else {
    process.stdout.write(statusTable(inspections));
  }
  return inspections.some((i) => i.held) ? 1 : 0;
}

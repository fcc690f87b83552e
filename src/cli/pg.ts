// `kernel-lock status --pg URL [name...]` and `kernel-lock run --pg URL NAME
// COMMAND`: the CLI over the PostgreSQL engine. Loaded only when --pg is
// given, so the rest of the CLI works without the optional `pg` package.
import { parseArgs } from 'node:util';
import { formatDuration, printable } from '../inspect/format.js';
import { LockTimeoutError } from '../lock/errors.js';
import { PgLocks } from '../pg/engine.js';
import type { PgLockHandle } from '../pg/handle.js';
import type { PgLockInspection, PgLockSession } from '../pg/inspect-types.js';
import { startCommand } from './child.js';
import type { RunArgs } from './flock-args.js';
import { terminalSafeJson } from './json.js';
import { renderTable } from './table.js';
import { EX_USAGE, UsageError } from './usage.js';

/** Identifies the JSON document `status --pg --json` prints; bumped only on incompatible changes. */
export const PG_STATUS_SCHEMA = 'kernel-lock/pg-status/1';

function holderText(s: PgLockSession | undefined): string {
  if (s === undefined) return '-';
  if (s.record !== null) return `${printable(s.record.host, 40)} pid ${s.record.pid}`;
  return `backend ${s.backendPid}${s.applicationName ? ` (${printable(s.applicationName, 40)})` : ''}`;
}

function cellsOf(i: PgLockInspection): string[] {
  const first = i.holders[0];
  const more = i.holders.length > 1 ? ` +${i.holders.length - 1}` : '';
  const name = i.name === null ? `(key ${i.key}, no kernel-lock record)` : printable(i.name, 200);
  const collision = i.collisions.length > 0 ? ` [KEY COLLISION: ${i.collisions.join(', ')}]` : '';
  return [
    i.state,
    `${holderText(first)}${more}`,
    first?.record?.owner ? printable(first.record.owner, 40) : '',
    i.heldForMs === null ? '-' : formatDuration(i.heldForMs),
    first?.record ? String(first.record.token) : '-',
    String(i.waiters.length),
    `${name}${collision}`,
  ];
}

/** The human table for PostgreSQL inspections. */
export function pgStatusTable(inspections: readonly PgLockInspection[]): string {
  return renderTable(
    ['STATE', 'HOLDER', 'OWNER', 'HELD', 'TOKEN', 'WAITERS', 'NAME'],
    inspections.map((i) => cellsOf(i)),
  );
}

/** Runs `status --pg`; resolves with the exit status (0 all free, 1 any held). */
export async function statusPgCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      pg: { type: 'string' },
      namespace: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.pg) throw new UsageError('--pg needs a connection URL (postgresql://user@host/db)', 'status');
  const locks = new PgLocks(values.pg, values.namespace === undefined ? {} : { namespace: values.namespace });
  try {
    const inspections =
      positionals.length === 0 ? await locks.scan() : await Promise.all(positionals.map((n) => locks.inspect(n)));
    if (values.json) {
      // 64-bit keys and tokens as decimal strings: JSON numbers lose precision past 2^53.
      const locksJson = JSON.parse(
        JSON.stringify(inspections, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value)),
      ) as unknown;
      process.stdout.write(`${terminalSafeJson({ schema: PG_STATUS_SCHEMA, locks: locksJson })}\n`);
    } else if (inspections.length === 0) {
      process.stdout.write('no advisory locks held or awaited in this database\n');
    } else {
      process.stdout.write(pgStatusTable(inspections));
    }
    return inspections.some((i) => i.held) ? 1 : 0;
  } finally {
    await locks.close();
  }
}

const usage = (message: string): UsageError => new UsageError(message, 'run', EX_USAGE);

/** Runs `run --pg` (flock-args.ts read the command line); resolves with the command's exit status or the conflict status. */
export async function runPg(args: RunArgs): Promise<number> {
  if (!args.pg) throw usage('--pg needs a connection URL (postgresql://user@host/db)');
  if (!('path' in args.target) || args.command === null) throw usage('run --pg needs a lock name and a command');
  // The lock lives in kernel-lock's server session, not in a descriptor.
  if (args.mode === 'unlock')
    throw usage('--unlock: a PostgreSQL lock is released when its session ends, not by a command');
  if (args.close)
    throw usage(
      '--close: a PostgreSQL lock is held by kernel-lock, never by the command, so there is nothing to close',
    );
  if (args.noFork) throw usage('--no-fork: kernel-lock must stay to keep the server session that holds the lock');
  if (args.kind !== 'flock')
    throw usage('--kind and --fcntl choose a kernel lock; --pg takes a PostgreSQL advisory lock');
  const name = args.target.path;
  const locks = new PgLocks(args.pg, args.namespace === undefined ? {} : { namespace: args.namespace });
  try {
    const started = performance.now();
    let handle: PgLockHandle;
    try {
      handle = await locks.lock(name, {
        mode: args.mode,
        timeout: args.timeoutMs,
        ...(args.owner === undefined ? {} : { owner: args.owner }),
      });
    } catch (error) {
      if (error instanceof LockTimeoutError) {
        process.stderr.write(`kernel-lock: ${error.message}\n`);
        return args.conflictExitCode;
      }
      throw error;
    }
    if (args.verbose) {
      process.stdout.write(
        `kernel-lock: getting lock took ${((performance.now() - started) / 1000).toFixed(6)} seconds\n`,
      );
    }
    try {
      return await runHolding(args.command, handle);
    } finally {
      await handle.release();
    }
  } finally {
    await locks.close();
  }
}

// The lock lives in this process's server session, not in a descriptor the
// command could inherit: if the session is lost, the command is stopped
// (SIGTERM), since it would otherwise go on unprotected.
async function runHolding(command: string[], handle: PgLockHandle): Promise<number> {
  const running = startCommand(command, {
    env: { ...process.env, KERNEL_LOCK_PG_NAME: handle.name, KERNEL_LOCK_PG_TOKEN: String(handle.token) },
  });
  const lost = (): void => {
    process.stderr.write(
      `kernel-lock: lost the lock, stopping the command: ${(handle.signal.reason as Error).message}\n`,
    );
    running.kill('SIGTERM');
  };
  handle.signal.addEventListener('abort', lost, { once: true });
  try {
    return await running.exited;
  } finally {
    handle.signal.removeEventListener('abort', lost);
  }
}

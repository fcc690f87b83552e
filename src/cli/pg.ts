// `kernel-lock status --pg URL [name...]` and `kernel-lock run --pg URL NAME
// -- command`: the CLI over the PostgreSQL engine. Loaded only when --pg is
// given, so the rest of the CLI works without the optional `pg` package.
import { spawn } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { formatDuration, printable } from '../inspect/format.js';
import { LockTimeoutError } from '../lock/errors.js';
import { PgLocks } from '../pg/engine.js';
import type { PgLockHandle } from '../pg/handle.js';
import type { PgLockInspection, PgLockSession } from '../pg/inspect-types.js';
import { terminalSafeJson } from './json.js';
import { renderTable } from './table.js';
import { UsageError } from './usage.js';

/** Identifies the JSON document `status --pg --json` prints; bumped only on incompatible changes. */
export const PG_STATUS_SCHEMA = 'kernel-lock/pg-status/1';

const FORWARDED_SIGNALS: NodeJS.Signals[] = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
];

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

function parseMs(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0) {
    throw new UsageError(`--timeout must be a non-negative number of milliseconds, got ${JSON.stringify(text)}`, 'run');
  }
  return value;
}

/** Runs `run --pg`; resolves with the command's exit status (or the conflict status). */
export async function runPgCommand(argv: string[]): Promise<number> {
  const separator = argv.indexOf('--');
  if (separator === -1)
    throw new UsageError('run needs `--` before the command: run --pg URL <name> -- <command>', 'run');
  const [command, ...args] = argv.slice(separator + 1);
  if (command === undefined) throw new UsageError('run needs a command after `--`', 'run');
  const { values, positionals } = parseArgs({
    args: argv.slice(0, separator),
    allowPositionals: true,
    options: {
      pg: { type: 'string' },
      namespace: { type: 'string' },
      shared: { type: 'boolean', short: 's', default: false },
      timeout: { type: 'string', short: 'w' },
      nonblock: { type: 'boolean', short: 'n', default: false },
      'conflict-exit-code': { type: 'string', short: 'E', default: '1' },
      owner: { type: 'string', short: 'o' },
    },
  });
  if (!values.pg) throw new UsageError('--pg needs a connection URL (postgresql://user@host/db)', 'run');
  if (positionals.length !== 1) throw new UsageError('run --pg needs exactly one lock name before `--`', 'run');
  if (values.nonblock && values.timeout !== undefined) {
    throw new UsageError('--timeout and --nonblock exclude each other', 'run');
  }
  const conflict = Number(values['conflict-exit-code']);
  if (!Number.isInteger(conflict) || conflict < 0 || conflict > 255) {
    throw new UsageError(`--conflict-exit-code must be an integer 0..255, got ${values['conflict-exit-code']}`, 'run');
  }
  const name = positionals[0]!;
  const locks = new PgLocks(values.pg, values.namespace === undefined ? {} : { namespace: values.namespace });
  try {
    let handle: PgLockHandle;
    try {
      handle = await locks.lock(name, {
        mode: values.shared ? 'shared' : 'exclusive',
        timeout: values.nonblock
          ? 0
          : values.timeout === undefined
            ? Number.POSITIVE_INFINITY
            : parseMs(values.timeout),
        ...(values.owner === undefined ? {} : { owner: values.owner }),
      });
    } catch (error) {
      if (error instanceof LockTimeoutError) {
        process.stderr.write(`kernel-lock: ${error.message}\n`);
        return conflict;
      }
      throw error;
    }
    try {
      return await spawnHolding(command, args, handle);
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
function spawnHolding(command: string, args: string[], handle: PgLockHandle): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      stdio: 'inherit',
      env: { ...process.env, KERNEL_LOCK_PG_NAME: handle.name, KERNEL_LOCK_PG_TOKEN: String(handle.token) },
    });
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    const lost = (): void => {
      process.stderr.write(
        `kernel-lock: lost the lock, stopping the command: ${(handle.signal.reason as Error).message}\n`,
      );
      child.kill('SIGTERM');
    };
    handle.signal.addEventListener('abort', lost, { once: true });
    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
    const finish = (status: number): void => {
      handle.signal.removeEventListener('abort', lost);
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
      resolve(status);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      process.stderr.write(`kernel-lock: cannot run ${JSON.stringify(command)}: ${error.message}\n`);
      finish(error.code === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (code, signal) => {
      if (code !== null) finish(code);
      else finish(128 + (signal === null ? 0 : (os.constants.signals[signal] ?? 0)));
    });
  });
}

// `kernel-lock run <lockfile> -- <command>`: flock(1) semantics. The command
// inherits the locked descriptor, so the lock is the command's for as long
// as it (or anything it passes the descriptor to) runs, even if this process
// is SIGKILLed. Only flock and OFD locks can work this way: they belong to
// the open file, which the child shares; POSIX locks belong to a process and
// are not inherited, so they are refused rather than silently weakened.
import { type ChildProcess, spawn } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { lockRequest } from '../lock/acquire.js';
import { LockTimeoutError } from '../lock/errors.js';
import type { LockHandle } from '../lock/handle.js';
import { Flag } from '../lock/native.js';
import { normalizeOptions } from '../lock/options.js';
import { UsageError } from './usage.js';

const FORWARDED_SIGNALS: NodeJS.Signals[] = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
];

/** The descriptor number the command finds the lock on. */
export const INHERITED_FD = 3;

interface RunPlan {
  lockfile: string;
  command: string;
  args: string[];
  kind: 'flock' | 'ofd';
  shared: boolean;
  timeout: number;
  conflictExitCode: number;
  owner: string | undefined;
}

function parseMs(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0) {
    throw new UsageError(`--timeout must be a non-negative number of milliseconds, got ${JSON.stringify(text)}`, 'run');
  }
  return value;
}

/** Parses `run`'s arguments; the command is everything after the first `--`. */
export function parseRun(argv: string[]): RunPlan {
  const separator = argv.indexOf('--');
  if (separator === -1) throw new UsageError('run needs `--` before the command: run <lockfile> -- <command>', 'run');
  const [command, ...args] = argv.slice(separator + 1);
  if (command === undefined) throw new UsageError('run needs a command after `--`', 'run');
  const { values, positionals } = parseArgs({
    args: argv.slice(0, separator),
    allowPositionals: true,
    options: {
      shared: { type: 'boolean', short: 's', default: false },
      kind: { type: 'string', short: 'k', default: 'flock' },
      timeout: { type: 'string', short: 'w' },
      nonblock: { type: 'boolean', short: 'n', default: false },
      'conflict-exit-code': { type: 'string', short: 'E', default: '1' },
      owner: { type: 'string', short: 'o' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('run needs exactly one lock file before `--`', 'run');
  if (values.kind === 'posix') {
    throw new UsageError(
      "--kind posix cannot be used with run: POSIX locks belong to a process and are not inherited by the command, so the lock would vanish if kernel-lock died; use 'flock' (default) or 'ofd'",
      'run',
    );
  }
  if (values.kind !== 'flock' && values.kind !== 'ofd') {
    throw new UsageError(`--kind must be flock or ofd, got ${JSON.stringify(values.kind)}`, 'run');
  }
  if (values.nonblock && values.timeout !== undefined) {
    throw new UsageError('--timeout and --nonblock exclude each other', 'run');
  }
  const code = Number(values['conflict-exit-code']);
  if (!Number.isInteger(code) || code < 0 || code > 255) {
    throw new UsageError(`--conflict-exit-code must be an integer 0..255, got ${values['conflict-exit-code']}`, 'run');
  }
  return {
    lockfile: positionals[0]!,
    command,
    args,
    kind: values.kind,
    shared: values.shared,
    timeout: values.nonblock ? 0 : values.timeout === undefined ? Number.POSITIVE_INFINITY : parseMs(values.timeout),
    conflictExitCode: code,
    owner: values.owner,
  };
}

function spawnHolding(plan: RunPlan, handle: LockHandle): Promise<number> {
  return new Promise((resolve) => {
    // Listen before spawning: the command may already run (and print) before
    // the next statement, and a signal arriving while nothing listens would
    // take the default action and kill this process instead of reaching it.
    // A signal is delivered to JavaScript on a later turn, when `child` is set.
    let child: ChildProcess | undefined;
    const forward = (signal: NodeJS.Signals): void => {
      child?.kill(signal);
    };
    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
    child = spawn(plan.command, plan.args, { stdio: ['inherit', 'inherit', 'inherit', handle.fd] });
    const finish = (status: number): void => {
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
      resolve(status);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      process.stderr.write(`kernel-lock: cannot run ${JSON.stringify(plan.command)}: ${error.message}\n`);
      // The shell's conventions: 127 not found, 126 found but not executable.
      finish(error.code === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (code, signal) => {
      if (code !== null) finish(code);
      else finish(128 + (signal === null ? 0 : (os.constants.signals[signal] ?? 0)));
    });
  });
}

/** Runs `run`; resolves with the command's exit status (or the conflict status). */
export async function runCommand(argv: string[]): Promise<number> {
  const plan = parseRun(argv);
  const request = normalizeOptions(
    plan.lockfile,
    {
      kind: plan.kind,
      mode: plan.shared ? 'shared' : 'exclusive',
      timeout: plan.timeout,
      ...(plan.owner === undefined ? {} : { owner: plan.owner }),
      // Descendants of the command may still hold the inherited descriptor
      // when it exits; unlinking then would split the lock in two.
      removeOnRelease: false,
    },
    Number.POSITIVE_INFINITY,
  );
  // flock(1) users lock the script they run (`flock deploy.sh ./deploy.sh`):
  // a file with content of its own is locked through a read-only descriptor,
  // as flock(1) does, so executing it does not fail with ETXTBSY; nothing
  // is written into it. (An exclusive ofd lock needs a writable descriptor.)
  if (plan.kind === 'flock' || plan.shared) request.flags |= Flag.readOnlyIfForeign;
  let handle: LockHandle;
  try {
    handle = await lockRequest(request);
  } catch (error) {
    if (error instanceof LockTimeoutError) {
      process.stderr.write(`kernel-lock: ${error.message}\n`);
      return plan.conflictExitCode;
    }
    throw error;
  }
  try {
    return await spawnHolding(plan, handle);
  } finally {
    handle.releaseSync();
  }
}

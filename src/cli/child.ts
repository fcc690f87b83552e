// The command `run` runs under a lock, as a child that kernel-lock waits for:
// signals sent to kernel-lock reach the command, and the command's exit
// status (128+N for death by signal N) becomes kernel-lock's, as flock(1)
// does. Shared by the kernel engine (run.ts) and the PostgreSQL one (pg.ts).
import { type ChildProcess, spawn } from 'node:child_process';
import os from 'node:os';
import util from 'node:util';
import { printable } from '../inspect/format.js';
import { EX_OSERR, EX_UNAVAILABLE } from './usage.js';

/** Signals kernel-lock passes on to the command instead of dying of them. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
];

/** How the command is started. */
export interface CommandOptions {
  /** A descriptor the command inherits as its fd 3 (the lock), or none. */
  lockFd?: number;
  /** The command's environment (default: kernel-lock's). */
  env?: NodeJS.ProcessEnv;
}

/** A running command. */
export interface RunningCommand {
  /** Sends `signal` to the command (nothing once it has exited). */
  kill(signal: NodeJS.Signals): void;
  /** Resolves with kernel-lock's exit status: the command's, 128+N, or 69 when it could not be executed. */
  exited: Promise<number>;
}

/** Starts `argv` with signals forwarded; the caller keeps the lock until `exited` resolves. */
export function startCommand(argv: readonly string[], options: CommandOptions = {}): RunningCommand {
  const [file, ...args] = argv as [string, ...string[]];
  // Listen before spawning: the command may already run before the next
  // statement, and a signal arriving while nothing listens would take the
  // default action and kill kernel-lock instead of reaching the command.
  // A signal is delivered to JavaScript on a later turn, when `child` is set.
  let child: ChildProcess | undefined;
  const forward = (signal: NodeJS.Signals): void => {
    child?.kill(signal);
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  const exited = new Promise<number>((resolve) => {
    let done = false;
    const finish = (status: number): void => {
      if (done) return;
      done = true;
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
      resolve(status);
    };
    child = spawn(file, args, {
      stdio: options.lockFd === undefined ? 'inherit' : ['inherit', 'inherit', 'inherit', options.lockFd],
      env: options.env ?? process.env,
    });
    child.once('error', (error: NodeJS.ErrnoException) => {
      // flock(1)'s statuses: 69 (EX_UNAVAILABLE) when the command cannot be
      // executed, 71 (EX_OSERR) when the system is out of memory.
      const reason = (error.errno !== undefined && util.getSystemErrorMap().get(error.errno)?.[1]) || error.message;
      process.stderr.write(`kernel-lock: failed to execute ${printable(file, 200)}: ${reason}\n`);
      finish(error.code === 'ENOMEM' ? EX_OSERR : EX_UNAVAILABLE);
    });
    child.once('exit', (code, signal) => {
      if (code !== null) finish(code);
      else finish(128 + (signal === null ? 0 : (os.constants.signals[signal] ?? 0)));
    });
  });
  return {
    kill: (signal) => {
      if (child?.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    exited,
  };
}

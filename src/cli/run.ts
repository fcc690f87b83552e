// `kernel-lock run`: util-linux flock(1)'s command, on kernel-lock. Same
// options, same forms, same exit statuses (flock-args.ts reads the command
// line); what kernel-lock adds is said where the lock is busy (the holder is
// named) and in long options of its own.
//
// FILE COMMAND: the command inherits the locked descriptor (as its fd 3), so
// the lock is the command's for as long as it, or anything it passes the
// descriptor to, runs, even if kernel-lock itself is SIGKILLed. Only flock and
// OFD locks work this way: they belong to the open file, which the child
// shares; POSIX locks belong to a process and are not inherited, so they are
// refused rather than silently weakened.
//
// FD: the descriptor a shell opened (`( kernel-lock -n 9 || exit 1; … )
// 9>file`) is locked and kernel-lock exits; the lock stays with the shell's
// open file.
import { closeSync, constants, fstatSync, lstatSync, openSync, type Stats } from 'node:fs';
import { printable } from '../inspect/format.js';
import { lockRequest } from '../lock/acquire.js';
import { LockTimeoutError, type SystemError } from '../lock/errors.js';
import type { LockHandle } from '../lock/handle.js';
import { normalizeOptions } from '../lock/options.js';
import { Flag } from '../native/binding.js';
import { startCommand } from './child.js';
import { descriptorPath, lockDescriptor, unlockDescriptor } from './descriptor-lock.js';
import { parseRunArgs, type RunArgs } from './flock-args.js';
import { EX_CANTCREAT, EX_DATAERR, EX_NOINPUT, EX_OSERR, EX_USAGE, helpText, UsageError, version } from './usage.js';

/** The descriptor number the command finds the lock on. */
export const INHERITED_FD = 3;

const usage = (message: string): UsageError => new UsageError(message, 'run', EX_USAGE);

/** flock(1)'s exit status for a failure to open or lock (see open_file() and the lock loop in flock.c). */
export function failureStatus(error: unknown): number {
  const { code, syscall } = error as Partial<SystemError>;
  if (code === 'ENOMEM' || code === 'EMFILE' || code === 'ENFILE' || code === 'ENOLCK') return EX_OSERR;
  if (syscall === 'open' || syscall === 'lstat') {
    return code === 'EROFS' || code === 'ENOSPC' || code === 'EDQUOT' ? EX_CANTCREAT : EX_NOINPUT;
  }
  return EX_DATAERR;
}

/** --verbose lines go to stdout, as flock(1)'s do. */
function verbose(args: RunArgs, line: string): void {
  if (args.verbose) process.stdout.write(`kernel-lock: ${line}\n`);
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(6);
}

/** The busy outcome: the holder on stderr (flock(1) says nothing; kernel-lock names who), then -E's status. */
function conflict(args: RunArgs, error: LockTimeoutError): number {
  verbose(args, args.timeoutMs === 0 ? 'failed to get lock' : 'timeout while waiting to get lock');
  process.stderr.write(`kernel-lock: ${printable(error.message, 2000)}\n`);
  return args.conflictExitCode;
}

function kindForInheritance(args: RunArgs): 'flock' | 'ofd' {
  if (args.kind === 'posix') {
    throw usage(
      '--kind posix cannot be used with run: POSIX locks belong to a process and are not inherited by the command, ' +
        "so the lock would vanish if kernel-lock died; use 'flock' (default) or 'ofd'",
    );
  }
  return args.kind;
}

/** The FD form: lock (or -u unlock) the inherited descriptor, then exit. */
async function runDescriptor(args: RunArgs, fd: number): Promise<number> {
  const kind = kindForInheritance(args);
  if (args.owner !== undefined) throw usage('--owner: the FD form writes no owner record (the file is the shell’s)');
  try {
    fstatSync(fd);
  } catch {
    process.stderr.write(
      `kernel-lock: ${fd}: Bad file descriptor (descriptor ${fd} is not open here; open it in the shell first: ` +
        `( kernel-lock -n ${fd} || exit 1; …commands… ) ${fd}>/path/to/lockfile)\n`,
    );
    return EX_DATAERR;
  }
  if (args.mode === 'unlock') {
    unlockDescriptor(fd, kind);
    return 0;
  }
  const started = performance.now();
  try {
    await lockDescriptor(fd, descriptorPath(fd), { kind, mode: args.mode, timeoutMs: args.timeoutMs });
  } catch (error) {
    if (error instanceof LockTimeoutError) return conflict(args, error);
    throw error;
  }
  verbose(args, `getting lock took ${seconds(performance.now() - started)} seconds`);
  return 0;
}

function statTarget(target: string): Stats | undefined {
  try {
    return lstatSync(target, { throwIfNoEntry: false });
  } catch {
    return undefined; // the open reports it
  }
}

/** A directory: opened read-only, as flock(1) opens one, and locked through that descriptor. */
function openDirectory(args: RunArgs, dir: string, kind: 'flock' | 'ofd'): number {
  if (kind === 'ofd' && args.mode === 'exclusive') {
    throw usage(
      `${dir} is a directory, which opens read-only, and an exclusive ofd lock needs a descriptor open for writing; ` +
        'use flock (the default) or --shared',
    );
  }
  if (args.owner !== undefined) throw usage(`--owner: ${dir} is a directory, which holds no owner record`);
  return openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW); // close-on-exec: libuv opens every file so
}

/** The FILE|DIRECTORY COMMAND form. */
async function runWithLock(args: RunArgs, target: string, command: string[]): Promise<number> {
  const kind = kindForInheritance(args);
  const st = statTarget(target);
  if (st === undefined && /^\d+$/.test(target)) {
    // flock(1) tells a descriptor from a file by whether a command follows;
    // `run 9 -- cmd` then silently creates a file named 9. Refuse instead.
    throw usage(
      `'${target}' names no file and looks like a descriptor number. To lock descriptor ${target} that a shell ` +
        `opened, use the FD form without a command: kernel-lock [options] ${target}. To create and lock a file ` +
        `named ${target}, write ./${target}`,
    );
  }
  if (args.mode === 'unlock') {
    throw usage(
      '--unlock with a file unlocks nothing (the lock would be on a new open file of its own); ' +
        'unlock a descriptor instead: kernel-lock -u FD',
    );
  }
  const started = performance.now();
  let handle: LockHandle | undefined;
  let dirFd: number | undefined;
  try {
    if (st?.isDirectory()) {
      dirFd = openDirectory(args, target, kind);
      await lockDescriptor(dirFd, target, { kind, mode: args.mode, timeoutMs: args.timeoutMs });
    } else {
      const request = normalizeOptions(
        target,
        {
          kind,
          mode: args.mode,
          timeout: args.timeoutMs,
          ...(args.owner === undefined ? {} : { owner: args.owner }),
          // Descendants of the command may still hold the inherited
          // descriptor when it exits; unlinking then would split the lock.
          removeOnRelease: false,
        },
        Number.POSITIVE_INFINITY,
      );
      // flock(1) users lock the script they run (`flock deploy.sh
      // ./deploy.sh`): a file with content of its own is locked through a
      // read-only descriptor, as flock(1) does, so executing it does not
      // fail with ETXTBSY; nothing is written into it. (An exclusive ofd
      // lock needs a writable descriptor.)
      if (kind === 'flock' || args.mode === 'shared') request.flags |= Flag.readOnlyIfForeign;
      handle = await lockRequest(request);
    }
  } catch (error) {
    if (dirFd !== undefined) closeSync(dirFd);
    if (error instanceof LockTimeoutError) return conflict(args, error);
    throw error;
  }
  const fd = handle?.fd ?? dirFd!;
  try {
    verbose(args, `getting lock took ${seconds(performance.now() - started)} seconds`);
    verbose(args, `executing ${printable(command[0]!, 200)}`);
    // -o: the command does not get the descriptor; kernel-lock holds the
    // lock until the command ends (and drops it if kernel-lock dies first).
    const running = startCommand(command, args.close ? {} : { lockFd: fd });
    return await running.exited;
  } finally {
    if (handle !== undefined) handle.releaseSync();
    else closeSync(fd);
  }
}

/** Runs `run` (and the FD form); resolves with the exit status. */
export async function runCommand(argv: string[]): Promise<number> {
  try {
    return await runParsed(argv);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    process.stderr.write(`kernel-lock: ${printable((error as Error).message ?? String(error), 2000)}\n`);
    return failureStatus(error);
  }
}

async function runParsed(argv: string[]): Promise<number> {
  const request = parseRunArgs(argv);
  if ('help' in request) {
    process.stdout.write(helpText('run'));
    return 0;
  }
  if ('version' in request) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (request.pg !== undefined) return (await import('./pg.js')).runPg(request);
  // -o and -F mean nothing without a command; flock(1) ignores them there too.
  if ('fd' in request.target) return runDescriptor(request, request.target.fd);
  return runWithLock(request, request.target.path, request.command!);
}

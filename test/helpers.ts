// Shared test utilities: temporary directories, child processes that hold
// locks, and counters for descriptors and threads of this process.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { native } from '../src/native/binding.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const fixture = (name: string): string => path.join(root, 'test', 'fixtures', name);

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'kernel-lock-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Open descriptors of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/**
 * Threads of this process, not counting idle waiter threads (parked between waits, running none that is not yet
 * joined): those are bounded, hold nothing, and exit after lingering without a wait (native/waiter_threads.h;
 * test/lock/waiter-threads.test.ts).
 */
export function threadCount(): number {
  return readdirSync('/proc/self/task').length - native.waiterThreads()[1];
}

/** Threads of this process named `name` (a waiter thread is named "kl-fdinfo" while it runs a descriptor search). */
export function threadsNamed(name: string): number {
  let count = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === name) count++;
    } catch {
      // exited meanwhile
    }
  }
  return count;
}

export interface Holder {
  child: ChildProcess;
  pid: number;
  /** Resolves with the exit code or signal once the child is gone. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Resolves with the first stdout line of `child` that starts with `prefix`. */
export function lineFrom(child: ChildProcess, prefix: string, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let stderr = '';
    const timer = setTimeout(
      () => reject(new Error(`no "${prefix}" line within ${timeoutMs} ms; stderr: ${stderr}`)),
      timeoutMs,
    );
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (const line of buffered.split('\n')) {
        if (line.startsWith(prefix)) {
          clearTimeout(timer);
          resolve(line);
        }
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code ?? signal}) before "${prefix}"; stderr: ${stderr}`));
    });
  });
}

function exitOf(child: ChildProcess): Promise<number | string> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode ?? child.signalCode!);
    else child.once('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
}

/** Starts `command` and waits for its "locked" line. */
export async function spawnHolder(command: string, args: string[], readyPrefix = 'locked'): Promise<Holder> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = exitOf(child);
  await lineFrom(child, readyPrefix);
  return {
    child,
    pid: child.pid!,
    exited,
    kill: (signal = 'SIGKILL') => {
      child.kill(signal);
      return exited;
    },
  };
}

/** A child holding `lockPath` through kernel-lock with `options`. */
export function holdInChild(
  lockPath: string,
  options: object = {},
  holdMs = Number.POSITIVE_INFINITY,
): Promise<Holder> {
  return spawnHolder(process.execPath, [fixture('holder.mjs'), lockPath, JSON.stringify(options), String(holdMs)]);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The error `promise` rejects with; throws when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  throw new Error('expected a rejection');
}

/** Asks a holdInChild() holder to release properly (removeOnRelease applies) and waits until it has. */
export async function releaseInChild(holder: Holder): Promise<void> {
  const released = lineFrom(holder.child, 'released');
  holder.child.stdin?.write('release\n');
  await released;
}

/** What a child process printed, once it has exited: its exit code (or signal), stdout and stderr. */
export interface ChildOutput {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Collects a spawned child's stdout and stderr (spawned with both piped) until it exits. */
export function outputOf(child: ChildProcess): Promise<ChildOutput> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The last line of a child's stdout, parsed as JSON; an error naming `what` and both outputs when it is not JSON. */
export function lastJsonLine(what: string, output: ChildOutput): Record<string, unknown> {
  const last = output.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as Record<string, unknown>;
  } catch {
    throw new Error(
      `${what} exited (${output.code ?? output.signal}) without a JSON line; stdout: ${output.stdout}; stderr: ${output.stderr}`,
    );
  }
}

/** Runs a Node fixture to completion and returns its last stdout line parsed as JSON. */
export async function runFixture(
  name: string,
  args: string[],
  options: { nodeArgs?: string[]; uid?: number; gid?: number; timeoutMs?: number } = {},
): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), fixture(name), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    uid: options.uid,
    gid: options.gid,
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  try {
    return lastJsonLine(name, await outputOf(child));
  } finally {
    clearTimeout(timer);
  }
}

/** One tryLock() from a separate process: "locked", "busy" or an error report. */
export async function probeInChild(lockPath: string, options: object = {}): Promise<string> {
  const report = await runFixture('core-probe.mjs', [lockPath, JSON.stringify(options)]);
  if (report.result === 'error') throw new Error(`probe failed: ${String(report.message)}`);
  return String(report.result);
}

/** The host pid of a namespace's init: the one child `unshare --fork` (the process `unshare`) started. */
export function namespaceInitOf(unsharePid: number): number {
  const pids = readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim().split(/\s+/);
  if (pids.length !== 1) throw new Error(`unshare ${unsharePid} has ${pids.length} children, expected 1`);
  return Number(pids[0]);
}

/**
 * A locker that writes no owner record holds `file` exclusively: util-linux
 * flock(1) (`kind` flock), or Python holding an OFD lock (`kind` ofd). The
 * process runs in a group of its own: kill it with `process.kill(-child.pid)`.
 */
export async function holdWithoutRecord(kind: 'flock' | 'ofd', file: string): Promise<ChildProcess> {
  const child =
    kind === 'flock'
      ? spawn('flock', ['-x', file, 'sh', '-c', 'echo locked; exec sleep 600'], { detached: true })
      : spawn(
          'python3',
          [
            '-c',
            [
              'import fcntl, os, struct, sys',
              'fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)',
              "fcntl.fcntl(fd, getattr(fcntl, 'F_OFD_SETLK', 37), struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 0, 0))",
              "print('locked', flush=True)",
              'sys.stdin.read()',
            ].join('\n'),
            file,
          ],
          { detached: true },
        );
  await lineFrom(child, 'locked', 30_000);
  return child;
}

/** Kills a process started in a group of its own, and everything it started. */
export function killGroup(child: ChildProcess | undefined): void {
  if (child?.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * What a writer of the runtime's legacy O_EXCL marker protocol does: create
 * the marker exclusively; EEXIST means someone holds the session.
 */
export function legacyCreate(lockPath: string): 'created' | 'exists' {
  try {
    closeSync(openSync(lockPath, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY));
    return 'created';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
    throw error;
  }
}

// flock(2) and fcntl(2) on x86-64 and arm64 (/proc/<tid>/syscall's first field).
const LOCK_CALLS = new Set(process.arch === 'arm64' ? ['32', '25'] : ['73', '72']);

/** Threads of this process blocked in a lock call right now. */
export function blockedInLockCall(): number {
  let blocked = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (LOCK_CALLS.has(readFileSync(`/proc/self/task/${tid}/syscall`, 'latin1').split(' ')[0]!)) blocked++;
    } catch {
      // the thread ended
    }
  }
  return blocked;
}

/** Waits (bounded) until `count` threads of this process sleep in a lock call. */
export async function untilBlocked(count: number): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (blockedInLockCall() < count) {
    if (performance.now() > deadline) throw new Error(`only ${blockedInLockCall()} of ${count} waits in the kernel`);
    await sleep(1);
  }
}

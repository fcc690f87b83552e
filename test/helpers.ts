// Shared test utilities: temporary directories, child processes that hold
// locks, and counters for descriptors and threads of this process.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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

/** Threads of this process. */
export function threadCount(): number {
  return readdirSync('/proc/self/task').length;
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

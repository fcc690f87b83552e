// A child process of the demo, read line by line: waits for its `holding`
// line, collects its `result` lines, and knows when it has exited and when
// its output has closed (for a client, the latter is when its orphan exits).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import type { TurnResult } from './turn.js';

/**
 * Runs `argv[0]` inside a fresh pid namespace (and mount namespace, for its
 * own /proc). A normal user gets them inside a new user namespace (mapped to
 * root there), which is what lets the kernel create them without privileges.
 */
export function inPidNamespace(argv: string[]): string[] {
  const user = process.getuid?.() === 0 ? [] : ['--user', '--map-root-user'];
  return ['unshare', ...user, '--pid', '--fork', '--mount-proc', '--kill-child=SIGKILL', ...argv];
}

/** Whether `unshare --pid` works here (it needs root or user namespaces). */
export function pidNamespacesAvailable(): boolean {
  try {
    const probe = spawnSync('unshare', inPidNamespace(['true']).slice(1), { stdio: 'ignore', timeout: 10_000 });
    return probe.status === 0;
  } catch {
    return false;
  }
}

export class Worker {
  readonly child: ChildProcess;
  readonly results: TurnResult[] = [];
  readonly late: TurnResult[] = [];
  stderr = '';
  /** Exit code or signal name, once exited. */
  exitStatus: string | null = null;
  /** Resolves when the process itself has exited. */
  readonly exited: Promise<void>;
  /** Resolves when its output closed: it and everything it started that kept the output have exited. */
  readonly closed: Promise<void>;
  #buffer = '';
  #seen: string[] = [];
  #waiters: Array<{ prefix: string; resolve: (line: string) => void }> = [];

  constructor(argv: string[], options: { stdin?: boolean } = {}) {
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => this.#data(chunk));
    this.child.stderr!.on('data', (chunk: string) => {
      if (this.stderr.length < 20_000) this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitStatus = signal ?? String(code);
        resolve();
      });
      this.child.once('error', () => resolve());
    });
    this.closed = new Promise((resolve) => {
      this.child.once('close', () => resolve());
      this.child.once('error', () => resolve());
    });
  }

  #data(chunk: string): void {
    this.#buffer += chunk;
    let newline = this.#buffer.indexOf('\n');
    while (newline >= 0) {
      const line = this.#buffer.slice(0, newline);
      this.#buffer = this.#buffer.slice(newline + 1);
      this.#line(line);
      newline = this.#buffer.indexOf('\n');
    }
  }

  #line(line: string): void {
    if (line.startsWith('result ')) this.results.push(JSON.parse(line.slice(7)) as TurnResult);
    if (line.startsWith('late ')) this.late.push(JSON.parse(line.slice(5)) as TurnResult);
    this.#seen.push(line);
    this.#waiters = this.#waiters.filter((w) => {
      if (!line.startsWith(w.prefix)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** Pids a client reported for the invocation it started (`spawned <pid>`). */
  spawnedPids(): number[] {
    return this.#seen.filter((l) => l.startsWith('spawned ')).map((l) => Number(l.slice(8)));
  }

  /** The first line starting with `prefix` (already seen or still to come); rejects on timeout or exit. */
  waitFor(prefix: string, timeoutMs: number): Promise<string> {
    const seen = this.#seen.find((l) => l.startsWith(prefix));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(`no "${prefix}" line from pid ${this.child.pid} within ${timeoutMs} ms: ${this.stderr.trim()}`),
        );
      }, timeoutMs);
      const done = (line: string): void => {
        clearTimeout(timer);
        resolve(line);
      };
      this.#waiters.push({ prefix, resolve: done });
      void this.closed.then(() => {
        clearTimeout(timer);
        reject(new Error(`pid ${this.child.pid} ended before "${prefix}": ${this.stderr.trim()}`));
      });
    });
  }
}

/** Sends SIGKILL to a pid, ignoring a process that is already gone. */
export function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

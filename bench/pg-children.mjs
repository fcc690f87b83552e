// Children of bench/pg.mjs: line-protocol processes (bench/pg-worker.mjs,
// test/pg/fixtures/agent.mjs), optionally inside a network namespace.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A child process whose stdout lines can be awaited in order. */
export class LineChild {
  constructor(args, netns) {
    const argv = netns ? ['ip', 'netns', 'exec', netns, process.execPath, ...args] : [process.execPath, ...args];
    this.proc = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.lines = [];
    this.waiters = [];
    this.stderr = '';
    this.proc.stderr.on('data', (c) => {
      this.stderr += c.toString();
    });
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      const waiter = this.waiters.findIndex((w) => w.match(line));
      if (waiter === -1) this.lines.push(line);
      else this.waiters.splice(waiter, 1)[0].resolve(line);
    });
  }

  send(line) {
    this.proc.stdin.write(`${line}\n`);
  }

  /** The next line (queued or to come) that `match` accepts. */
  next(match, timeoutMs = 60_000) {
    const index = this.lines.findIndex(match);
    if (index !== -1) return Promise.resolve(this.lines.splice(index, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no line within ${timeoutMs} ms; stderr: ${this.stderr}`)),
        timeoutMs,
      );
      this.waiters.push({
        match,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  }

  prefix(p, timeoutMs) {
    return this.next((line) => line.startsWith(p), timeoutMs);
  }

  kill(signal = 'SIGKILL') {
    return new Promise((resolve) => {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) return resolve();
      this.proc.once('exit', () => resolve());
      this.proc.kill(signal);
    });
  }
}

/** Percentiles of a sample, in its own unit. */
export function summary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { n: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), min: sorted[0], max: sorted.at(-1) };
}

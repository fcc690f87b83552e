// Child processes that speak the bench's line protocol (bench/worker.mjs and
// the C floor's serve/append modes): spawn, send a command, await a line.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
export const floorBinary = path.join(benchDir, '.build', 'floor');
const workerScript = path.join(benchDir, 'worker.mjs');
const floorSources = ['floor.c', 'floor-waiters.c', 'floor.h'].map((name) => path.join(benchDir, name));

/** Compiles the C floor (bench/floor.c and its waiters) into bench/.build when a source is newer. */
export function buildFloor() {
  fs.mkdirSync(path.dirname(floorBinary), { recursive: true });
  const built = fs.existsSync(floorBinary) ? fs.statSync(floorBinary).mtimeMs : 0;
  if (floorSources.every((source) => fs.statSync(source).mtimeMs <= built)) return;
  const units = floorSources.filter((source) => source.endsWith('.c'));
  execFileSync('cc', ['-O2', '-Wall', '-pthread', '-o', floorBinary, ...units], { stdio: 'inherit' });
}

/** The C floor's contenders: flock, keep-file or unlink on release. */
export const floorContenders = [
  {
    id: 'c-floor-keep',
    label: 'C floor (flock, keep file)',
    lib: 'C floor',
    floor: true,
    unlink: 0,
    keepsFile: true,
    lockKind: 'flock',
    wait: 'blocking flock(2)',
    timeout: '–',
  },
  {
    id: 'c-floor-remove',
    label: 'C floor (flock, unlink)',
    lib: 'C floor',
    floor: true,
    unlink: 1,
    keepsFile: false,
    lockKind: 'flock',
    wait: 'blocking flock(2)',
    timeout: '–',
  },
  {
    // The shape of every async Node waiter in C (bench/floor.c serve-async):
    // how much of a hand-off the second wake-up costs on this machine.
    id: 'c-floor-twowake',
    label: 'C, thread + eventfd + epoll (two wake-ups)',
    lib: 'C floor',
    floor: true,
    serveMode: 'serve-async',
    sections: ['handoff'],
    unlink: 0,
    keepsFile: true,
    lockKind: 'flock',
    wait: 'flock(2) on a parked thread, then eventfd → epoll_wait',
    timeout: '–',
    note: 'bench/floor.c serve-async: a parked waiter thread blocks in flock, verifies and writes the record (the calls kernel-lock makes on its thread), then writes an eventfd the main thread sleeps on in epoll_wait — two wake-ups in series, as in every async Node waiter; its hand-off ratio is to the C waiter blocked in flock (one wake-up)',
  },
];

/** The C waiter every thread-based async waiter's hand-off is also compared with. */
export const TWO_WAKE_FLOOR = 'c-floor-twowake';

/** A running child with a queue of its stdout lines. */
export class Child {
  constructor(command, args, options = {}) {
    this.proc = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
    this.pid = this.proc.pid;
    this.lines = [];
    this.waiters = [];
    this.stderr = '';
    this.exited = false;
    let buffer = '';
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (chunk) => {
      buffer += chunk;
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        this.#push(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf('\n');
      }
    });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (chunk) => {
      if (this.stderr.length < 4000) this.stderr += chunk;
    });
    this.proc.stdin.on('error', () => {});
    this.proc.on('exit', () => {
      this.exited = true;
      for (const waiter of this.waiters.splice(0))
        waiter.fail(new Error(`child ${this.pid} exited: ${this.stderr.trim()}`));
    });
  }

  /** Why the child is gone, in one line: its error message if it printed one. */
  #exitMessage() {
    const lines = this.stderr.split('\n').map((line) => line.trim());
    const error = lines.find((line) => /^[A-Za-z]*Error\b.*:/.test(line)) ?? lines.find((line) => line !== '') ?? '';
    return `child ${this.pid} exited${error ? `: ${error}` : ''}`;
  }

  #push(line) {
    const index = this.waiters.findIndex((w) => line.startsWith(w.prefix));
    if (index >= 0) {
      const [waiter] = this.waiters.splice(index, 1);
      waiter.done(line);
    } else {
      this.lines.push(line);
    }
  }

  /** The next line starting with `prefix` (its remainder after the prefix and a space). */
  next(prefix, timeoutMs = 30_000) {
    const index = this.lines.findIndex((line) => line.startsWith(prefix));
    if (index >= 0) return Promise.resolve(this.lines.splice(index, 1)[0].slice(prefix.length + 1));
    if (this.exited) return Promise.reject(new Error(this.#exitMessage()));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(new Error(`timeout waiting for "${prefix}" from child ${this.pid}`));
      }, timeoutMs);
      const waiter = {
        prefix,
        done: (line) => {
          clearTimeout(timer);
          resolve(line.slice(prefix.length + 1));
        },
        fail: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.waiters.push(waiter);
    });
  }

  send(command) {
    this.proc.stdin.write(`${command}\n`);
  }

  kill(signal = 'SIGKILL') {
    if (!this.exited) this.proc.kill(signal);
  }

  /** Resolves once the process has exited (after kill() or a natural end). */
  gone() {
    return this.exited ? Promise.resolve() : new Promise((resolve) => this.proc.once('exit', resolve));
  }
}

/**
 * A C process holding a kernel lock of `kind` in serve mode: the holder of
 * the hand-off (2) and of crash recovery with a C holder (3b). With
 * `unlink` 1 it removes the file on release, as removeOnRelease does.
 */
export function floorServeChild(kind, lockPath, unlink = 0) {
  const child = new Child(floorBinary, ['serve', lockPath, String(unlink), kind]);
  child.floor = true;
  return child;
}

/** A fresh child in serve mode for the contender (a Node worker or the C floor). */
export function serveChild(spec, lockPath, nodeFlags = []) {
  if (spec.floor) {
    const args = [spec.serveMode ?? 'serve', lockPath, String(spec.unlink), ...(spec.serveArgs ?? [])];
    const child = new Child(floorBinary, args);
    child.floor = true;
    return child;
  }
  return new Child(process.execPath, [...nodeFlags, workerScript, 'serve', spec.id, lockPath]);
}

/**
 * Node workers in serve mode, reused across contenders ("use <id> <path>"):
 * starting a Node process costs a fifth of a CPU second here, and most
 * measurements only need processes that hold or wait. The C floor's
 * children are cheap and are spawned fresh.
 */
export class Pool {
  #idle = [];
  #taken = [];
  #scratch;

  constructor(scratchPath) {
    this.#scratch = scratchPath;
  }

  async #take(count) {
    const spawned = [];
    while (this.#idle.length + spawned.length < count) {
      spawned.push(
        new Child(process.execPath, ['--expose-gc', workerScript, 'serve', 'kl-async-flock-keep', this.#scratch]),
      );
    }
    await Promise.all(spawned.map((child) => child.next('ready', 60_000)));
    this.#idle.push(...spawned);
    this.#taken = this.#idle.splice(0, count);
    return this.#taken;
  }

  /** Starts workers in parallel until `count` are idle (spawning overlaps). */
  async prewarm(count) {
    await this.#take(count);
    // #take hands them out; put them straight back.
    this.#idle.unshift(...this.#taken.splice(0));
  }

  /** `count` children serving `spec` on `lockPath`, ready for commands. */
  async enlist(spec, lockPath, count) {
    if (spec.floor) {
      const children = Array.from({ length: count }, () => serveChild(spec, lockPath));
      await Promise.all(children.map((child) => child.next('ready')));
      return children;
    }
    const children = await this.#take(count);
    for (const child of children) child.send(`use ${spec.id} ${lockPath}`);
    await Promise.all(children.map((child) => child.next('using', 60_000)));
    return children;
  }

  /** Returns idle children (holding and awaiting nothing) for reuse; others are killed. */
  async dismiss(children, { idle }) {
    const reusable = [];
    for (const child of children) {
      const pooled = !child.floor && idle && !child.exited;
      if (pooled) {
        child.lines = [];
        reusable.push(child);
      } else {
        child.send('exit');
        child.kill('SIGKILL');
      }
    }
    this.#idle.push(...reusable);
    await Promise.all(children.filter((child) => !reusable.includes(child)).map((child) => child.gone()));
  }

  async close() {
    await this.dismiss(this.#idle.splice(0), { idle: false });
  }
}

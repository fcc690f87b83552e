// Model-based test: fast-check drives random sequences of lock, tryLock,
// release and abort by four actors (two in this process, two in a peer
// process) on one lock file, and compares what the kernel and the library
// do with a model of the lock state:
// - safety, checked at every grant: the holders are always compatible;
// - tryLock succeeds exactly when the model says the lock is free enough;
// - liveness: after each step every pending lock() that the holders allow is
//   granted (within a generous bound), and the others stay pending;
// - an aborted wait ends as aborted; nothing leaks (descriptors, threads).
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LockHandle, type LockKind, type LockMode, lock, tryLock } from '../../src/index.js';
import { fdCount, sleep, tempDir, threadCount } from '../helpers.js';

const peerScript = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'reliability',
  'fixtures',
  'model-peer.mjs',
);

type ActorName = 'A1' | 'A2' | 'B1' | 'B2';
const ACTORS: readonly ActorName[] = ['A1', 'A2', 'B1', 'B2'];
/** `since` orders the pending acquisitions of one process: posix serves them first come, first served. */
type Status =
  | { state: 'idle' }
  | { state: 'held'; mode: LockMode }
  | { state: 'pending'; mode: LockMode; since: number };

const sameProcess = (a: ActorName, b: ActorName): boolean => a[0] === b[0];

/** The world as observed: updated by our commands and by grant/abort events. */
class World {
  readonly status = new Map<ActorName, Status>(ACTORS.map((a) => [a, { state: 'idle' }]));
  #pendingCount = 0;

  /** Marks `actor` as waiting for `mode`, behind every earlier waiter. */
  pending(actor: ActorName, mode: LockMode): void {
    this.status.set(actor, { state: 'pending', mode, since: ++this.#pendingCount });
  }
  readonly violations: string[] = [];
  constructor(readonly kind: LockKind) {}

  /** Whether `actor` may hold in `mode` next to the current holders (and, for posix, its own process's queue). */
  allows(actor: ActorName, mode: LockMode): boolean {
    for (const [other, status] of this.status) {
      if (other === actor || status.state === 'idle') continue;
      // posix: the library gives one acquisition of a process its turn at a
      // time, so a same-process holder or earlier waiter always comes first.
      if (this.kind === 'posix' && sameProcess(actor, other)) return false;
      if (status.state === 'held' && (mode === 'exclusive' || status.mode === 'exclusive')) return false;
    }
    return true;
  }

  granted(actor: ActorName): void {
    const status = this.status.get(actor)!;
    if (status.state !== 'pending') {
      this.violations.push(`${actor} granted while ${status.state}`);
      return;
    }
    // Safety: the new holder must be compatible with every current holder.
    for (const [other, s] of this.status) {
      if (other !== actor && s.state === 'held' && (status.mode === 'exclusive' || s.mode === 'exclusive')) {
        this.violations.push(`${actor} (${status.mode}) granted while ${other} holds ${s.mode}`);
      }
    }
    this.status.set(actor, { state: 'held', mode: status.mode });
  }

  /** Pending actors the holders allow: they must be granted soon. */
  grantable(): ActorName[] {
    return ACTORS.filter((a) => {
      const s = this.status.get(a)!;
      if (s.state !== 'pending') return false;
      if (this.kind !== 'posix') return this.allows(a, s.mode);
      // posix: the same-process queue is FIFO; only the first pending of a process can go.
      for (const [other, o] of this.status) {
        if (other === a || !sameProcess(a, other)) continue;
        if (o.state === 'held') return false;
        if (o.state === 'pending' && o.since < s.since) return false;
      }
      return ACTORS.filter((b) => b !== a && !sameProcess(a, b)).every((b) => {
        const o = this.status.get(b)!;
        return !(o.state === 'held' && (s.mode === 'exclusive' || o.mode === 'exclusive'));
      });
    });
  }
}

interface Actor {
  tryLock(mode: LockMode): Promise<boolean>;
  lock(mode: LockMode): Promise<void>;
  release(): Promise<void>;
  abort(): Promise<void>;
}

function localActor(world: World, name: ActorName, file: string): Actor {
  let handle: LockHandle | null = null;
  let controller: AbortController | null = null;
  return {
    async tryLock(mode) {
      handle = await tryLock(file, { kind: world.kind, mode });
      return handle !== null;
    },
    async lock(mode) {
      controller = new AbortController();
      world.pending(name, mode);
      lock(file, { kind: world.kind, mode, signal: controller.signal }).then(
        (granted) => {
          handle = granted;
          world.granted(name);
        },
        (error: Error) => {
          if (error.name !== 'AbortError') world.violations.push(`${name}: ${error}`);
          world.status.set(name, { state: 'idle' });
        },
      );
    },
    async release() {
      await handle!.release();
      handle = null;
    },
    async abort() {
      controller!.abort();
    },
  };
}

class Peer {
  readonly child: ChildProcess;
  /** Resolves once the process is reaped, i.e. the kernel has dropped its locks. */
  readonly exited: Promise<void>;
  #next = 1;
  readonly #replies = new Map<number, (result: string) => void>();
  constructor(world: World, file: string) {
    this.child = spawn(process.execPath, [peerScript, file, world.kind], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const message = JSON.parse(line);
      if (message.id !== undefined) {
        if (message.result === 'error') world.violations.push(`peer: ${message.message}`);
        this.#replies.get(message.id)?.(message.result);
        this.#replies.delete(message.id);
      } else if (message.event === 'granted') {
        world.granted(message.actor);
      } else {
        if (message.event !== 'aborted') world.violations.push(`${message.actor}: ${message.message}`);
        world.status.set(message.actor, { state: 'idle' });
      }
    });
  }
  command(actor: ActorName, op: string, mode?: LockMode): Promise<string> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#replies.set(id, resolve);
      this.child.stdin!.write(`${JSON.stringify({ id, actor, op, mode })}\n`);
    });
  }
  actor(world: World, name: ActorName): Actor {
    return {
      tryLock: async (mode) => (await this.command(name, 'tryLock', mode)) === 'granted',
      lock: async (mode) => {
        world.pending(name, mode);
        await this.command(name, 'lock', mode);
      },
      release: async () => {
        await this.command(name, 'release');
      },
      abort: async () => {
        await this.command(name, 'abort');
      },
    };
  }
}

/** Waits until no pending actor is grantable; false when that takes longer than the bound. */
async function settle(world: World, boundMs = 3000): Promise<boolean> {
  const started = performance.now();
  // A short pause first also gives a wrongly granted wait the chance to show.
  await sleep(15);
  while (world.grantable().length > 0) {
    if (performance.now() - started > boundMs) return false;
    await sleep(5);
  }
  return true;
}

interface Real {
  world: World;
  actors: Record<ActorName, Actor>;
}

type Cmd = fc.AsyncCommand<World, Real>;

const describeStatus = (world: World): string =>
  ACTORS.map((a) => {
    const s = world.status.get(a)!;
    return `${a}:${s.state}${s.state === 'idle' ? '' : `/${s.mode}`}`;
  }).join(' ');

class TryLockCmd implements Cmd {
  constructor(
    readonly actor: ActorName,
    readonly mode: LockMode,
  ) {}
  check = (m: World) => m.status.get(this.actor)!.state === 'idle';
  async run(_m: World, r: Real) {
    const expected = r.world.allows(this.actor, this.mode);
    const before = describeStatus(r.world);
    const granted = await r.actors[this.actor].tryLock(this.mode);
    expect(granted, `tryLock ${this.actor} ${this.mode} with ${before}`).toBe(expected);
    if (granted) r.world.status.set(this.actor, { state: 'held', mode: this.mode });
  }
  toString = () => `tryLock(${this.actor}, ${this.mode})`;
}

class LockCmd implements Cmd {
  constructor(
    readonly actor: ActorName,
    readonly mode: LockMode,
  ) {}
  check = (m: World) => m.status.get(this.actor)!.state === 'idle';
  async run(_m: World, r: Real) {
    await r.actors[this.actor].lock(this.mode);
    expect(await settle(r.world), `liveness after lock ${this.actor}: ${describeStatus(r.world)}`).toBe(true);
  }
  toString = () => `lock(${this.actor}, ${this.mode})`;
}

class ReleaseCmd implements Cmd {
  constructor(readonly actor: ActorName) {}
  check = (m: World) => m.status.get(this.actor)!.state === 'held';
  async run(_m: World, r: Real) {
    r.world.status.set(this.actor, { state: 'idle' });
    await r.actors[this.actor].release();
    expect(await settle(r.world), `liveness after release ${this.actor}: ${describeStatus(r.world)}`).toBe(true);
  }
  toString = () => `release(${this.actor})`;
}

class AbortCmd implements Cmd {
  constructor(readonly actor: ActorName) {}
  check = (m: World) => m.status.get(this.actor)!.state === 'pending';
  async run(_m: World, r: Real) {
    await r.actors[this.actor].abort();
    const started = performance.now();
    while (r.world.status.get(this.actor)!.state === 'pending' && performance.now() - started < 3000) await sleep(5);
    // Settled waits are granted before this command can run, so the abort wins.
    expect(r.world.status.get(this.actor)!.state, `abort ${this.actor}`).toBe('idle');
    expect(await settle(r.world), `liveness after abort ${this.actor}: ${describeStatus(r.world)}`).toBe(true);
  }
  toString = () => `abort(${this.actor})`;
}

const actorArb = fc.constantFrom(...ACTORS);
const modeArb = fc.constantFrom<LockMode>('exclusive', 'shared');
const commands = [
  fc.tuple(actorArb, modeArb).map(([a, m]) => new TryLockCmd(a, m)),
  fc.tuple(actorArb, modeArb).map(([a, m]) => new LockCmd(a, m)),
  actorArb.map((a) => new ReleaseCmd(a)),
  actorArb.map((a) => new AbortCmd(a)),
];

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-model-'));
});
afterAll(() => cleanup());

describe('model-based: random lock/tryLock/release/abort across two processes', () => {
  for (const kind of ['flock', 'ofd', 'posix'] as const) {
    it(`${kind}: the kernel and the library agree with the model`, async () => {
      const file = path.join(dir, `${kind}.lock`);
      const fds = fdCount();
      const threads = threadCount();
      let world = new World(kind);
      let peer = new Peer(world, file);
      try {
        await fc.assert(
          fc.asyncProperty(fc.commands(commands, { maxCommands: 20 }), async (cmds) => {
            world = new World(kind);
            // A fresh peer per run: no state carried over. Wait until the old
            // one is reaped, or its locks may still be held when this run starts.
            peer.child.kill('SIGKILL');
            await peer.exited;
            peer = new Peer(world, file);
            const actors = {
              A1: localActor(world, 'A1', file),
              A2: localActor(world, 'A2', file),
              B1: peer.actor(world, 'B1'),
              B2: peer.actor(world, 'B2'),
            };
            try {
              await fc.asyncModelRun(() => ({ model: world, real: { world, actors } }), cmds);
              expect(world.violations).toEqual([]);
            } finally {
              // Leave nothing behind in this process for the next run.
              const local = ['A1', 'A2'] as const;
              for (const name of local) if (world.status.get(name)!.state === 'pending') await actors[name].abort();
              const started = performance.now();
              while (
                local.some((a) => world.status.get(a)!.state === 'pending') &&
                performance.now() - started < 3000
              ) {
                await sleep(5);
              }
              for (const name of local) {
                if (world.status.get(name)!.state === 'held') {
                  world.status.set(name, { state: 'idle' });
                  await actors[name].release();
                }
              }
            }
          }),
          { numRuns: 12 },
        );
      } finally {
        peer.child.kill('SIGKILL');
        await peer.exited;
      }
      await sleep(50);
      expect(fdCount()).toBe(fds);
      expect(threadCount()).toBe(threads);
    });
  }
});

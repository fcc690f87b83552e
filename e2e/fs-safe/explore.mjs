#!/usr/bin/env node
// Reproduces, with the published runtime, how its config write lock (the
// plugin SDK's file lock, i.e. `@openclaw/fs-safe/file-lock`) behaves when
// two real `openclaw config set` processes contend, on the stock backend and
// on kernel-lock/fs-safe. Standalone exploration for docs/FS-SAFE.md; the
// supported e2e suite and hook live elsewhere.
//
//   node e2e/fs-safe/explore.mjs --runtime <dir with node_modules/openclaw> --node <node ≥ 24.16>
//        [--backend stock|kernel-lock|both] [--scenario killed|torn|pidns-live|all]
//
// Scenarios (each on a fresh state directory on /dev/shm):
//   killed      a holder is paused inside its config write lock, then SIGKILLed;
//               how long after the kill does a waiting `config set` commit?
//   torn        the lock file is empty, as a holder killed between its O_EXCL
//               create and its payload write leaves it (the state is made by
//               hand here: that window is too short to hit with a real kill)
//   pidns-live  the holder runs in another pid namespace (unshare --pid
//               --mount-proc, like a container) and is alive, paused inside the
//               lock for HOLD_MS; does the host waiter commit before it resumes?
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const { values } = parseArgs({
  options: {
    runtime: { type: 'string' },
    node: { type: 'string' },
    backend: { type: 'string', default: 'both' },
    scenario: { type: 'string', default: 'all' },
    'hold-ms': { type: 'string', default: '12000' },
  },
});
if (!values.runtime || !values.node) {
  console.error('usage: explore.mjs --runtime <dir> --node <node binary> [--backend …] [--scenario …]');
  process.exit(2);
}
const openclaw = path.join(values.runtime, 'node_modules', 'openclaw', 'openclaw.mjs');
const version = JSON.parse(readFileSync(path.join(values.runtime, 'node_modules', 'openclaw', 'package.json'))).version;
const fsSafeVersion = JSON.parse(
  readFileSync(path.join(values.runtime, 'node_modules', '@openclaw', 'fs-safe', 'package.json')),
).version;
const HOLD_MS = Number(values['hold-ms']);
const kernelDist = path.join(repo, 'dist', 'fs-safe.js');
const started = Date.now();
const t = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;

function env(stateDir, backend, extra = {}) {
  const imports = [`--import=${path.join(here, 'hold-config-write.mjs')}`];
  if (backend === 'kernel-lock') imports.push(`--import=${path.join(here, 'map-fs-safe.mjs')}`);
  return {
    ...process.env,
    HOME: path.join(stateDir, 'home'),
    OPENCLAW_STATE_DIR: stateDir,
    OPENCLAW_DISABLE_BONJOUR: '1',
    NODE_OPTIONS: imports.join(' '),
    FS_SAFE_KERNEL_LOCK_DIST: kernelDist,
    FS_SAFE_HOLD_TARGET: path.join(stateDir, 'openclaw.json'),
    FS_SAFE_HOLD_MS: '0',
    ...extra,
  };
}

/** Starts `openclaw config set <key> <value>`; collects HOLDING/RESUMED stamps and the exit. */
function configSet(stateDir, backend, key, value, { holdMs = '0', prefix = [] } = {}) {
  const argv = [...prefix, values.node, openclaw, 'config', 'set', key, value];
  const child = spawn(argv[0], argv.slice(1), {
    env: env(stateDir, backend, { FS_SAFE_HOLD_MS: holdMs }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so a kill takes the whole tree
  });
  const run = { child, stamps: {}, output: '', startedAt: Date.now() };
  const onData = (chunk) => {
    run.output += chunk;
    for (const match of String(chunk).matchAll(/^(HOLDING|RESUMED|LOCKING) (\d+) (?:\S+ )?(\d+)$/gm)) {
      run.stamps[match[1]] = Number(match[3]);
      run.stamps[`${match[1]}_count`] = (run.stamps[`${match[1]}_count`] ?? 0) + 1;
      if (match[1] === 'LOCKING') {
        run.lockingTimes ??= [];
        run.lockingTimes.push(Number(match[3]));
      }
      run.stamps[`${match[1]}_pid`] = Number(match[2]);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  run.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  return run;
}

function killTree(run) {
  for (const pid of [run.stamps.HOLDING_pid, -run.child.pid]) {
    try {
      if (pid) process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function until(predicate, ms, what) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const stateDirs = [];
process.on('exit', () => {
  for (const dir of stateDirs) rmSync(dir, { recursive: true, force: true });
});

function freshState(name) {
  const dir = `/dev/shm/fs-safe-explore-${process.pid}-${name}`;
  stateDirs.push(dir);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.join(dir, 'home'), { recursive: true });
  // Initialise the config once (uncontended), which also warms the runtime.
  const init = spawnSync(values.node, [openclaw, 'config', 'set', 'gateway.mode', 'local'], {
    env: env(dir, 'stock'),
    encoding: 'utf8',
  });
  if (init.status !== 0) throw new Error(`config init failed: ${init.stderr}`);
  return dir;
}

function lockFileText(stateDir) {
  const lock = path.join(stateDir, 'openclaw.json.lock');
  if (!existsSync(lock)) return '(no lock file)';
  return JSON.stringify(readFileSync(lock, 'utf8').trim());
}

function lastLine(text) {
  const lines = text
    .split('\n')
    .filter((l) => l.trim() && !/^(HOLDING|RESUMED|LOCKING) /.test(l) && !/postinstall/.test(l));
  return lines.at(-1)?.slice(0, 240) ?? '';
}

async function uncontendedMs(stateDir, backend) {
  const run = configSet(stateDir, backend, 'gateway.port', '18700');
  const done = await run.exited;
  // How many times the config directory is created before the lock: it is
  // created once before the lock (src/config/write-lock.ts) and once more
  // inside it (the config write itself), so all but the last one.
  const lockings = (run.stamps.LOCKING_count ?? 1) - 1;
  return { total: done.at - run.startedAt, toCommit: run.stamps.HOLDING - run.startedAt, lockings, code: done.code };
}

async function killed(backend) {
  const dir = freshState(`killed-${backend}`);
  const base = await uncontendedMs(dir, backend);
  const holder = configSet(dir, backend, 'gateway.port', '18801', { holdMs: 'Infinity' });
  await until(() => holder.stamps.HOLDING, 60_000, 'holder inside the lock');
  const record = lockFileText(dir);
  const waiter = configSet(dir, backend, 'gateway.port', '18802');
  // Kill once the waiter is at the lock (plus 2 s), well inside the config
  // lock's retry budget (~17-19 s).
  await until(() => (waiter.stamps.LOCKING_count ?? 0) >= base.lockings, 90_000, 'waiter at the lock');
  await new Promise((r) => setTimeout(r, 2000));
  const waiterAliveAtKill = waiter.child.exitCode === null;
  const waiterCommittedEarly = waiter.stamps.HOLDING !== undefined;
  // The runtime respawns itself into a child in its own process group (title
  // "openclaw-config"): the process inside the lock is the one that said
  // HOLDING, not the one we spawned. Kill that one, and then the wrapper.
  // The lock changes hands when the waiter touches the lock file (stock:
  // unlinks the dead holder's marker; kernel-lock: writes its record at the
  // grant); inotify on the state directory sees both from outside.
  let handover = null;
  const watcher = watch(dir, (_event, name) => {
    if (handover === null && name === 'openclaw.json.lock') handover = Date.now();
  });
  const killAt = Date.now();
  process.kill(holder.stamps.HOLDING_pid, 'SIGKILL');
  killTree(holder);
  await holder.exited;
  const done = await waiter.exited;
  watcher.close();
  return {
    scenario: 'killed',
    backend,
    uncontendedMs: base.total,
    lockWhileHeld: record,
    waiterCommittedBeforeKill: waiterCommittedEarly,
    waiterAliveAtKill,
    waiterAtLockBeforeKillMs: killAt - waiter.lockingTimes[base.lockings - 1],
    lockFileTouchedAfterKillMs: handover === null ? null : handover - killAt,
    commitAfterKillMs: waiter.stamps.HOLDING ? waiter.stamps.HOLDING - killAt : null,
    waiterExit: done.code,
    waiterExitAfterKillMs: done.at - killAt,
    waiterSays: lastLine(waiter.output),
  };
}

async function torn(backend) {
  const dir = freshState(`torn-${backend}`);
  writeFileSync(path.join(dir, 'openclaw.json.lock'), '');
  const waiter = configSet(dir, backend, 'gateway.port', '18803');
  const done = await waiter.exited;
  return {
    scenario: 'torn',
    backend,
    waiterExit: done.code,
    waiterMs: done.at - waiter.startedAt,
    committed: waiter.stamps.HOLDING !== undefined,
    atLockToExitMs: waiter.stamps.LOCKING ? done.at - waiter.stamps.LOCKING : null,
    waiterSays: lastLine(waiter.output),
  };
}

async function pidnsLive(backend) {
  const dir = freshState(`pidns-${backend}`);
  const base = await uncontendedMs(dir, backend);
  const holder = configSet(dir, backend, 'gateway.port', '18804', {
    holdMs: String(HOLD_MS),
    prefix: ['unshare', '--pid', '--fork', '--mount-proc'],
  });
  await until(() => holder.stamps.HOLDING, 60_000, 'holder inside the lock');
  const record = lockFileText(dir);
  // Any change to the lock file while the holder is paused inside the lock
  // means someone took it from a live holder (stock: unlinked its marker).
  let touchedWhileHeld = null;
  const watcher = watch(dir, (_event, name) => {
    if (name === 'openclaw.json.lock' && touchedWhileHeld === null && holder.stamps.RESUMED === undefined) {
      touchedWhileHeld = Date.now();
    }
  });
  const waiter = configSet(dir, backend, 'gateway.port', '18805');
  const [holderDone, waiterDone] = await Promise.all([holder.exited, waiter.exited]);
  watcher.close();
  // The config directory is created again inside the lock: that is when the waiter got in.
  const waiterInside = waiter.lockingTimes?.[base.lockings];
  const overlap = waiter.stamps.HOLDING !== undefined && waiter.stamps.HOLDING < holder.stamps.RESUMED;
  return {
    scenario: 'pidns-live',
    backend,
    uncontendedMs: base.total,
    holderPidInItsNamespace: holder.stamps.HOLDING_pid,
    lockWhileHeld: record,
    holdMs: HOLD_MS,
    waiterAtLockBeforeHolderResumed: (waiter.lockingTimes?.[base.lockings - 1] ?? Infinity) < holder.stamps.RESUMED,
    lockFileTouchedWhileHolderPausedMsBeforeResume:
      touchedWhileHeld === null ? null : holder.stamps.RESUMED - touchedWhileHeld,
    waiterInsideLockMinusHolderResumeMs: waiterInside === undefined ? null : waiterInside - holder.stamps.RESUMED,
    waiterCommitBeforeHolderResumed: overlap,
    waiterCommitMinusHolderResumeMs:
      waiter.stamps.HOLDING && holder.stamps.RESUMED ? waiter.stamps.HOLDING - holder.stamps.RESUMED : null,
    holderExit: holderDone.code,
    waiterExit: waiterDone.code,
    holderSays: lastLine(holder.output),
    waiterSays: lastLine(waiter.output),
  };
}

const scenarios = { killed, torn, 'pidns-live': pidnsLive };
const backends = values.backend === 'both' ? ['stock', 'kernel-lock'] : [values.backend];
const chosen = values.scenario === 'all' ? Object.keys(scenarios) : [values.scenario];
console.log(
  `openclaw ${version} (@openclaw/fs-safe ${fsSafeVersion}), node ${spawnSync(values.node, ['-v']).stdout}`.trim(),
);
for (const name of chosen) {
  for (const backend of backends) {
    console.log(`[${t()}] ${name} / ${backend} …`);
    const result = await scenarios[name](backend);
    console.log(JSON.stringify(result, null, 2));
  }
}

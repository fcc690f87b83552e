// flock(1) users' habits work unchanged: the same command lines run under
// util-linux flock(1) and under kernel-lock, in the same situation (the lock
// free, held exclusively or shared by a flock(1) holder, or released by it
// part-way), and must agree on
//   - the exit status,
//   - the timing class: at once, or after waiting (for -w's timeout, or for
//     the holder to let go), and
//   - exclusion: what a probe run under the lock sees (`flock -n` from inside
//     the command, or after the tool exited while a background child lives on).
// kernel-lock spells the FILE form `kernel-lock run …` and the FD form
// `kernel-lock …`; the options are flock(1)'s own. The few deliberate
// differences are asserted at the end, kernel-lock's side alone.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killGroup, lineFrom, root, sleep, tempDir } from '../helpers.js';

const CLI = path.join(root, 'dist', 'cli.js');
/** Waits measured against this: "at once" is below it, "waited" above (Node's start-up on a loaded machine stays well below). */
const WAIT_S = 5;
const WAIT_MS = WAIT_S * 1000;

type Tool = 'flock' | 'kernel-lock';
type Situation = 'free' | 'exclusive' | 'shared' | 'released';

interface Case {
  name: string;
  situation: Situation;
  /** The lock target the holder takes: a file (default) or a directory. */
  target?: 'file' | 'dir';
  /** flock(1)'s arguments; T is replaced by the target. */
  args?: string[];
  /** A shell script instead (the FD form); $LOCK runs the tool in its FD spelling, $T is the target. */
  script?: string;
  /** After the tool exits: is the target still locked (a background child kept it)? */
  probeAfter?: boolean;
}

interface Outcome {
  code: number | null;
  timing: 'at once' | 'waited';
  probes: string[];
  after?: number | null;
}

const PROBE = 'flock -n "$T" true; echo "probe=$?"';
const SHARED_PROBE = 'flock -n -s "$T" true; echo "shared-probe=$?"';

const CASES: Case[] = [
  { name: 'free: FILE COMMAND passes the status through', situation: 'free', args: ['T', 'sh', '-c', 'exit 7'] },
  { name: 'free: -c runs the string through the shell', situation: 'free', args: ['T', '-c', 'exit 5'] },
  { name: 'free: --command', situation: 'free', args: ['T', '--command', 'exit 6'] },
  { name: 'free: the command holds the lock (exclusion)', situation: 'free', args: ['T', 'sh', '-c', PROBE] },
  {
    name: 'free: -s lets a shared probe in',
    situation: 'free',
    args: ['-s', 'T', 'sh', '-c', `${PROBE}; ${SHARED_PROBE}`],
  },
  {
    name: 'free: -x / -e / --exclusive',
    situation: 'free',
    args: ['-x', '-e', '--exclusive', 'T', 'sh', '-c', `${PROBE}; ${SHARED_PROBE}`],
  },
  { name: 'free: death by SIGTERM is 128+15', situation: 'free', args: ['T', 'sh', '-c', 'kill -TERM $$'] },
  {
    name: 'free: -F (no fork) still runs and holds',
    situation: 'free',
    args: ['-F', 'T', 'sh', '-c', `${PROBE}; exit 3`],
  },
  { name: 'free: --verbose', situation: 'free', args: ['--verbose', 'T', 'true'] },
  { name: 'free: a directory is a lock target', situation: 'free', target: 'dir', args: ['T', 'sh', '-c', PROBE] },
  {
    name: 'free: the command hands the lock to a background child',
    situation: 'free',
    args: ['T', 'sh', '-c', 'sleep 2 >/dev/null 2>&1 &'],
    probeAfter: true,
  },
  {
    name: 'free: -o keeps the lock from a background child',
    situation: 'free',
    args: ['-o', 'T', 'sh', '-c', 'sleep 2 >/dev/null 2>&1 &'],
    probeAfter: true,
  },
  { name: 'held: -n gives up at once with 1', situation: 'exclusive', args: ['-n', 'T', 'true'] },
  { name: 'held: --nonblock', situation: 'exclusive', args: ['--nonblock', 'T', 'true'] },
  { name: 'held: --nb and -E 42', situation: 'exclusive', args: ['--nb', '-E', '42', 'T', 'true'] },
  { name: 'held: --conflict-exit-code=9', situation: 'exclusive', args: ['-n', '--conflict-exit-code=9', 'T', 'true'] },
  { name: 'held: -w SECONDS waits that long', situation: 'exclusive', args: ['-w', String(WAIT_S), 'T', 'true'] },
  { name: 'held: --wait with a fraction', situation: 'exclusive', args: ['--wait', `${WAIT_S}.25`, 'T', 'true'] },
  { name: 'held: --timeout=SECONDS', situation: 'exclusive', args: [`--timeout=${WAIT_S}`, '-E', '3', 'T', 'true'] },
  { name: 'held: -w 0 is -n', situation: 'exclusive', args: ['-w', '0', 'T', 'true'] },
  { name: 'held: -n wins over -w', situation: 'exclusive', args: ['-n', '-w', String(WAIT_S), 'T', 'true'] },
  { name: 'held: -s conflicts with an exclusive holder', situation: 'exclusive', args: ['-s', '-n', 'T', 'true'] },
  { name: 'held: a held directory', situation: 'exclusive', target: 'dir', args: ['-n', 'T', 'true'] },
  { name: 'shared holder: -s -n gets in', situation: 'shared', args: ['-s', '-n', 'T', 'sh', '-c', SHARED_PROBE] },
  { name: 'shared holder: -x -n does not', situation: 'shared', args: ['-x', '-n', 'T', 'true'] },
  { name: 'released: waits for the holder, then runs', situation: 'released', args: ['T', 'sh', '-c', PROBE] },
  { name: 'released: -w longer than the hold', situation: 'released', args: ['-w', '30', 'T', 'true'] },
  {
    name: 'FD form: ( LOCK -n 9 || exit 3; … ) 9>FILE, free',
    situation: 'free',
    script: `( $LOCK -n 9 || exit 3; ${PROBE} ) 9>"$T"`,
  },
  { name: 'FD form: held', situation: 'exclusive', script: `( $LOCK -n 9 || exit 3; ${PROBE} ) 9>"$T"` },
  {
    name: 'FD form: -E and -w',
    situation: 'exclusive',
    script: `( $LOCK -w ${WAIT_S} -E 4 9 || exit $?; echo ran ) 9>"$T"`,
  },
  { name: 'FD form: waits for the holder', situation: 'released', script: `( $LOCK 9 && ${PROBE} ) 9>"$T"` },
  {
    name: 'FD form: read-only descriptor (<)',
    situation: 'free',
    script: `: >"$T"; ( $LOCK -n 9 && ${PROBE} ) 9<"$T"`,
  },
  { name: 'FD form: -u unlocks', situation: 'free', script: `exec 9>"$T"; $LOCK 9; ${PROBE}; $LOCK -u 9; ${PROBE}` },
  {
    name: 'FD form: -s on a descriptor',
    situation: 'free',
    script: `( $LOCK -s 9 && ${PROBE} && ${SHARED_PROBE} ) 9>"$T"`,
  },
  { name: 'FD form: a descriptor that is not open is 65', situation: 'free', script: '$LOCK 97' },
  { name: 'usage: nothing to lock is 64', situation: 'free', args: [] },
  { name: 'usage: -E out of range is 64', situation: 'free', args: ['-E', '300', 'T', 'true'] },
  { name: 'usage: -w not a number is 64', situation: 'free', args: ['-w', 'soon', 'T', 'true'] },
  { name: 'usage: an unknown option is 64', situation: 'free', args: ['--bogus', 'T', 'true'] },
  { name: 'usage: -c without its string is 64', situation: 'free', args: ['T', '-c'] },
  { name: 'usage: -c with two strings is 64', situation: 'free', args: ['T', '-c', 'true', 'extra'] },
  { name: 'usage: -o with -F is 64', situation: 'free', args: ['-o', '-F', 'T', 'true'] },
  { name: 'usage: one word that is not a number is 64', situation: 'free', args: ['T'] },
  { name: 'a command that cannot be executed is 69', situation: 'free', args: ['T', '/nonexistent/command'] },
  { name: 'a lock file that cannot be opened is 66', situation: 'free', args: ['/nonexistent/dir/x.lock', 'true'] },
];

let work: { dir: string; cleanup: () => void };
const blockers: ChildProcess[] = [];
beforeAll(() => {
  work = tempDir('kernel-lock-flockdiff-');
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm test builds it (pretest)`);
});
afterAll(() => {
  for (const b of blockers) killGroup(b);
  work.cleanup();
});

/** A flock(1) holder of `target` in the given mode; `releaseAfterMs` lets go then. */
async function hold(target: string, mode: 'exclusive' | 'shared', releaseAfterMs?: number): Promise<ChildProcess> {
  const hold = releaseAfterMs === undefined ? 'exec sleep 600' : `sleep ${releaseAfterMs / 1000}`;
  const child = spawn('flock', [mode === 'shared' ? '-s' : '-x', target, 'sh', '-c', `echo locked; ${hold}`], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  blockers.push(child);
  await lineFrom(child, 'locked');
  return child;
}

function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; ms: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    // Timed at exit; resolved at close, once stdout is drained (a background
    // child holding the pipe delays only the latter).
    let ms = 0;
    child.on('exit', () => {
      ms = performance.now() - started;
    });
    child.on('close', (code, signal) => resolve({ code: code ?? (signal === null ? null : -1), stdout, ms }));
  });
}

async function runCase(c: Case, tool: Tool, index: number): Promise<Outcome> {
  const dir = path.join(work.dir, `${index}-${tool}`);
  mkdirSync(dir);
  const target = path.join(dir, c.target === 'dir' ? 'locked-dir' : 'job.lock');
  if (c.target === 'dir') mkdirSync(target);
  let blocker: ChildProcess | undefined;
  if (c.situation === 'exclusive' || c.situation === 'shared') blocker = await hold(target, c.situation);
  if (c.situation === 'released') blocker = await hold(target, 'exclusive', WAIT_MS);
  // Unquoted in the scripts ($LOCK), so it must split into exactly these two words.
  const kernelLock = `${process.execPath} ${CLI}`;
  if (/\s/.test(process.execPath + CLI)) throw new Error('the FD-form scripts need paths without white space');
  const env = { ...process.env, T: target, LOCK: tool === 'flock' ? 'flock' : kernelLock, SHELL: '/bin/sh' };
  const result =
    c.script !== undefined
      ? await run('sh', ['-c', c.script], env)
      : await run(
          tool === 'flock' ? 'flock' : process.execPath,
          [...(tool === 'flock' ? [] : [CLI, 'run']), ...(c.args ?? []).map((a) => (a === 'T' ? target : a))],
          env,
        );
  let after: number | null | undefined;
  if (c.probeAfter) after = (await run('flock', ['-n', target, 'true'], env)).code;
  killGroup(blocker);
  // "waited": held back by -w or by the holder (which lets go after WAIT_MS).
  const waitedFor = c.situation === 'released' ? WAIT_MS * 0.8 : WAIT_MS;
  return {
    code: result.code,
    timing: result.ms >= waitedFor ? 'waited' : 'at once',
    probes: result.stdout.split('\n').filter((l) => /^(shared-)?probe=|^ran$/.test(l)),
    ...(after === undefined ? {} : { after }),
  };
}

/** Runs `tasks` with at most `limit` at a time. */
async function pooled<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]!();
      }
    }),
  );
  return results;
}

describe('the same command lines under flock(1) and kernel-lock', () => {
  const outcomes = new Map<string, Record<Tool, Outcome>>();
  beforeAll(async () => {
    const tasks = CASES.flatMap((c, i) =>
      (['flock', 'kernel-lock'] as const).map((tool) => async () => ({ c, tool, outcome: await runCase(c, tool, i) })),
    );
    for (const { c, tool, outcome } of await pooled(tasks, 4)) {
      outcomes.set(c.name, { ...outcomes.get(c.name), [tool]: outcome } as Record<Tool, Outcome>);
    }
    const rows = CASES.map((c) => {
      const o = outcomes.get(c.name)!;
      const show = (x: Outcome): string =>
        `${x.code} ${x.timing}${x.probes.length ? ` ${x.probes.join(',')}` : ''}${x.after === undefined ? '' : ` after=${x.after}`}`;
      return `${c.name.padEnd(58)} flock: ${show(o.flock).padEnd(28)} kernel-lock: ${show(o['kernel-lock'])}`;
    });
    console.log(`flock(1) differential (${CASES.length} command lines):\n${rows.join('\n')}`);
  }, 180_000);

  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const { flock, 'kernel-lock': ours } = outcomes.get(c.name)!;
    expect(ours).toEqual(flock);
  });

  it('the cases exercise every outcome that matters', () => {
    const all = [...outcomes.values()].map((o) => o.flock);
    const codes = new Set(all.map((o) => o.code));
    for (const code of [0, 1, 3, 4, 5, 6, 7, 9, 42, 64, 65, 66, 69, 143]) expect(codes, `exit ${code}`).toContain(code);
    expect(all.filter((o) => o.timing === 'waited').length).toBeGreaterThanOrEqual(5);
    expect(all.flatMap((o) => o.probes)).toEqual(
      expect.arrayContaining(['probe=0', 'probe=1', 'shared-probe=0', 'shared-probe=1']),
    );
    expect(all.map((o) => o.after)).toEqual(expect.arrayContaining([0, 1]));
  });
});

describe('flock(1) and kernel-lock exclude each other', () => {
  it('critical sections of both tools on one file never overlap', async () => {
    const { dir, cleanup } = tempDir('kernel-lock-flockmix-');
    try {
      const file = path.join(dir, 'mix.lock');
      const log = path.join(dir, 'log');
      writeFileSync(log, '');
      const section = (who: string): string[] => [
        'sh',
        '-c',
        `echo "begin ${who}" >>"${log}"; sleep 0.3; echo "end ${who}" >>"${log}"`,
      ];
      const runs = [0, 1, 2].flatMap((i) => [
        run('flock', [file, ...section(`flock${i}`)], process.env),
        run(process.execPath, [CLI, 'run', file, ...section(`kl${i}`)], process.env),
      ]);
      expect((await Promise.all(runs)).map((r) => r.code)).toEqual([0, 0, 0, 0, 0, 0]);
      const lines = (await import('node:fs')).readFileSync(log, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(12);
      for (let i = 0; i < lines.length; i += 2) {
        const who = lines[i]!.slice('begin '.length);
        expect(lines[i + 1]).toBe(`end ${who}`); // nobody began inside another's section
      }
    } finally {
      cleanup();
    }
  });
});

describe('where kernel-lock deliberately differs', () => {
  let dir: string;
  let cleanup: () => void;
  beforeAll(() => {
    ({ dir, cleanup } = tempDir('kernel-lock-flockdiff-own-'));
  });
  afterAll(() => cleanup());

  const kl = (args: string[], cwd = dir) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.on('exit', (code) => resolve({ code, stderr }));
    });

  it('`run 9 -- true` where no file 9 exists refuses (flock(1) would create a file named 9)', async () => {
    const result = await kl(['run', '9', '--', 'true']);
    expect(result.code).toBe(64);
    expect(result.stderr).toContain('looks like a descriptor number');
    expect(result.stderr).toContain('./9');
    expect(existsSync(path.join(dir, '9'))).toBe(false);
    // An existing file named 9 is locked like any file, and ./9 creates one.
    expect((await kl(['run', './9', 'true'])).code).toBe(0);
    expect(existsSync(path.join(dir, '9'))).toBe(true);
    expect((await kl(['run', '9', 'true'])).code).toBe(0);
  });

  it('a busy lock names its holder on stderr (flock(1) says nothing)', async () => {
    const file = path.join(dir, 'named.lock');
    const blocker = await hold(file, 'exclusive');
    const result = await kl(['run', '-n', file, 'true']);
    killGroup(blocker);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`held by pid ${blocker.pid} \\(alive, "flock -x `));
  });

  it('refuses what flock(1) does silently or by accident', async () => {
    const file = path.join(dir, 'refused.lock');
    symlinkSync(file, path.join(dir, 'link.lock'));
    const [unlockFile, options, negative, link] = await Promise.all([
      kl(['run', '-u', file, 'true']), // flock(1) runs the command, unlocking nothing
      kl(['run', file, '-n', 'true']), // flock(1) tries to execute "-n"
      kl(['run', '-w', '-1', file, 'true']), // flock(1): "cannot set up timer", 71
      kl(['run', path.join(dir, 'link.lock'), 'true']), // flock(1) follows the link
    ]);
    expect([unlockFile.code, options.code, negative.code, link.code]).toEqual([64, 64, 64, 66]);
    expect(options.stderr).toContain('options go before the lock target');
    expect(link.stderr).toContain('symbolic link');
  });

  it('takes its own options as long options only, and --fcntl as an OFD lock', async () => {
    const file = path.join(dir, 'ours.lock');
    const script = `"${process.execPath}" "${CLI}" run --owner nightly --kind ofd --timeout-ms 250 "${file}" sh -c 'cat "${file}"'`;
    const result = await run('sh', ['-c', script], process.env);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ owner: 'nightly', kind: 'ofd' });
    // An OFD lock does not conflict with flock(1)'s flock(2) lock, and does with another OFD lock.
    const blocker = await hold(file, 'exclusive');
    expect((await kl(['run', '--fcntl', '-n', file, 'true'])).code).toBe(0);
    killGroup(blocker);
    const ofd = spawn(process.execPath, [CLI, 'run', '--fcntl', file, 'sh', '-c', 'echo locked; exec sleep 600'], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    blockers.push(ofd);
    await lineFrom(ofd, 'locked');
    expect((await kl(['run', '--kind', 'ofd', '-n', file, 'true'])).code).toBe(1);
    expect((await kl(['run', '-n', file, 'true'])).code).toBe(0); // a flock(2) lock: another kind
    killGroup(ofd);
    await sleep(50);
  });
});

// The `kernel-lock` CLI, run as users run it: node dist/cli.js (built by
// `npm run build:ts`, which `npm test` runs first).
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fixture, type Holder, holdInChild, lineFrom, root, sleep, spawnHolder, tempDir } from '../helpers.js';

const CLI = path.join(root, 'dist', 'cli.js');

interface Result {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], timeoutMs = 20_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: timeoutMs }, (error, stdout, stderr) => {
      const e = error as (Error & { code?: number | string; signal?: string }) | null;
      resolve({
        code: e === null ? 0 : typeof e.code === 'number' ? e.code : null,
        signal: e?.signal ?? null,
        stdout,
        stderr,
      });
    });
  });
}

/** flock(1) -n on the file: 0 when it could take the lock, 1 when busy. */
function flockN(file: string): number | null {
  return spawnSync('flock', ['-n', file, 'true']).status;
}

let dir: string;
let cleanup: () => void;
const holders: Holder[] = [];
beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsup\` (npm test does it in pretest)`);
});
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-cli-'));
});
afterEach(async () => {
  for (const h of holders.splice(0)) await h.kill('SIGKILL');
  cleanup();
});

describe('kernel-lock status', () => {
  it('reports the holder pid, liveness and label; after SIGKILL an orphan record (exit 1, then 0)', async () => {
    const file = path.join(dir, 'agent.jsonl.lock');
    const holder = await holdInChild(file, { owner: 'agent main \u001b[2J\u001b]0;pwned\u0007' });
    holders.push(holder);
    const json = await cli(['status', '--json', file]);
    expect(json.code).toBe(1);
    const doc = JSON.parse(json.stdout);
    expect(doc.schema).toBe('kernel-lock/status/1');
    expect(doc.locks).toHaveLength(1);
    expect(doc.locks[0]).toMatchObject({ path: file, state: 'held', held: true, record: { pid: holder.pid } });
    expect(doc.locks[0].holders[0]).toMatchObject({ pid: holder.pid, alive: true, kind: 'flock' });
    expect(doc.locks[0].record.owner).toContain('agent main');

    const table = await cli(['status', dir]);
    expect(table.code).toBe(1);
    const [header, row] = table.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^STATE\s+PID\s+ALIVE\s+HELD\s+OWNER\s+COMMAND\s+PATH$/);
    expect(row).toMatch(new RegExp(`^held\\s+${holder.pid}\\s+yes\\s+\\S+\\s+agent main`));
    // No terminal injection: the label's escape sequences are stripped.
    expect(table.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);

    await holder.kill('SIGKILL');
    const after = await cli(['status', '--json', dir]);
    expect(after.code).toBe(0);
    expect(JSON.parse(after.stdout).locks[0]).toMatchObject({ state: 'orphan-record', held: false, holders: [] });
    const missing = await cli(['status', path.join(dir, 'none.lock')]);
    expect(missing.code).toBe(0);
    expect(missing.stdout).toMatch(/^free\s/m);
  });

  it('reads names as bytes: a held sess-\\xff\\xfe.lock makes `status dir` exit 1, printed escaped', async () => {
    const file = Buffer.concat([Buffer.from(`${dir}/sess-`), Buffer.from([0xff, 0xfe]), Buffer.from('.lock')]);
    const holder = await spawnHolder(process.execPath, [
      fixture('holder.mjs'),
      `base64:${file.toString('base64')}`,
      JSON.stringify({ removeOnRelease: false }),
    ]);
    holders.push(holder);
    const escaped = `${dir}/sess-\\xff\\xfe.lock`;
    const table = await cli(['status', dir]);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(new RegExp(`^held\\s+${holder.pid}\\s+yes\\s`, 'm'));
    expect(table.stdout).toContain(escaped);
    const json = await cli(['status', '--json', dir]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).locks).toEqual([
      expect.objectContaining({ path: escaped, pathBytes: file.toString('base64'), state: 'held' }),
    ]);
    const swept = await cli(['sweep', dir]);
    expect(swept.code).toBe(0);
    expect(swept.stdout).toContain(`kept  ${escaped}: held by pid ${holder.pid}`);
    const sweptJson = JSON.parse((await cli(['sweep', '--json', dir])).stdout);
    expect(sweptJson.kept).toEqual([expect.objectContaining({ path: escaped, pathBytes: file.toString('base64') })]);
  });

  it('pads by display width: CJK and emoji owner labels keep the next column aligned', async () => {
    // エージェント is 12 columns (6 wide katakana), 🤖 bot 6: the OWNER
    // column is 12 wide, so 2 spaces follow the first and 8 the second.
    for (const [name, owner] of [
      ['cjk.lock', 'エージェント'],
      ['emoji.lock', '🤖 bot'],
    ] as const) {
      holders.push(await holdInChild(path.join(dir, name), { owner }));
    }
    const table = await cli(['status', dir]);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/ エージェント {2}\S/);
    expect(table.stdout).toMatch(/ 🤖 bot {8}\S/);
  });

  it('an argument that names nothing exits 2, like sweep; a missing lock file in an existing directory is free', async () => {
    const none = await cli(['status', '/no/such/dir']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('/no/such/dir: no such file or directory');
    expect(none.stdout).not.toMatch(/free/);
    expect((await cli(['sweep', '/no/such/dir'])).code).toBe(2);
    // A typo of a directory next to real ones, even among valid arguments.
    const free = path.join(dir, 'none.lock');
    const typo = await cli(['status', free, path.join(dir, 'sesions')]);
    expect(typo.code).toBe(2);
    expect(typo.stdout).toMatch(/^free\s/m);
    const missing = await cli(['status', free]);
    expect(missing.code).toBe(0);
    expect(missing.stderr).toContain('does not exist');
  });

  it('usage errors exit 2; --help and --version exit 0', async () => {
    // Independent invocations, run side by side to keep the suite quick.
    const [bare, bogus, unknown, help, runHelp, sweepHelp, version] = await Promise.all([
      cli(['status']),
      cli(['status', '--bogus', dir]),
      cli(['frobnicate']),
      cli(['status', '--help']),
      cli(['run', '--help']),
      cli(['sweep', '--help']),
      cli(['--version']),
    ]);
    expect([bare.code, bogus.code, unknown.code]).toEqual([2, 2, 2]);
    expect(bogus.stderr).toContain("Try 'kernel-lock status --help'");
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: kernel-lock status');
    // Help points to documentation that exists in this package (docs/ ships in the tarball: package.test.ts).
    for (const text of [help.stdout, runHelp.stdout, sweepHelp.stdout]) {
      const doc = /Documentation: (\/\S+\.md)(#[a-z-]+)?$/m.exec(text);
      expect(doc, text).not.toBeNull();
      expect(existsSync(doc![1]!)).toBe(true);
      // GitHub's heading anchors: lower case, punctuation but hyphens dropped, spaces as hyphens.
      const anchors = [...readFileSync(doc![1]!, 'utf8').matchAll(/^#+ (.*)$/gm)].map(
        (m) =>
          `#${m[1]!
            .toLowerCase()
            .replace(/[^\p{L}\p{N} -]/gu, '')
            .replace(/ /g, '-')}`,
      );
      if (doc![2] !== undefined) expect(anchors).toContain(doc![2]);
    }
    expect(runHelp.stdout).toContain('Usage: kernel-lock run');
    expect(sweepHelp.stdout).toContain('Usage: kernel-lock sweep');
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version);
  });
});

describe('kernel-lock run', () => {
  it('the command keeps the lock when kernel-lock is SIGKILLed, until it exits', async () => {
    const file = path.join(dir, 'run.lock');
    const runner = spawn(
      process.execPath,
      [CLI, 'run', '--owner', 'job', file, '--', 'sh', '-c', 'echo started; sleep 2'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    await lineFrom(runner, 'started');
    const startedAt = performance.now();
    expect(flockN(file)).toBe(1);
    runner.kill('SIGKILL');
    await new Promise((resolve) => runner.once('exit', resolve));
    // kernel-lock is gone; the command still holds the inherited descriptor.
    await sleep(200);
    expect(flockN(file)).toBe(1);
    const status = JSON.parse((await cli(['status', '--json', file])).stdout).locks[0];
    expect(status.state).toBe('held');
    expect(status.holders[0]).toMatchObject({ pid: runner.pid, alive: false });
    // The real holders: the shell and its sleep, which inherited the descriptor.
    expect(status.holders[0].descriptors).toContainEqual(
      expect.objectContaining({ alive: true, argv: ['sh', '-c', 'echo started; sleep 2'] }),
    );
    // Free again once the command exits (about 2 s after it started).
    let freeAt = 0;
    while (freeAt === 0 && performance.now() - startedAt < 10_000) {
      if (flockN(file) === 0) freeAt = performance.now();
      else await sleep(50);
    }
    expect(freeAt - startedAt).toBeGreaterThan(1_500);
  });

  it('passes the exit status through, maps signal deaths to 128+n, and reports conflicts as 1 or N', async () => {
    const file = path.join(dir, 'codes.lock');
    const own = (name: string): string => path.join(dir, name);
    // Independent invocations on separate files, run side by side.
    const codes = await Promise.all([
      cli(['run', own('5.lock'), '--', 'sh', '-c', 'exit 5']),
      cli(['run', own('term.lock'), '--', 'sh', '-c', 'kill -TERM $$']),
      cli(['run', own('true.lock'), '--', 'true']),
      cli(['run', own('missing.lock'), '--', '/nonexistent/command']),
    ]);
    // 69: flock(1)'s status for a command that cannot be executed.
    expect(codes.map((r) => r.code)).toEqual([5, 128 + 15, 0, 69]);

    const holder = await holdInChild(file, { owner: 'blocker' });
    holders.push(holder);
    const [conflict, custom, timed, shared] = await Promise.all([
      cli(['run', '--nonblock', file, '--', 'true']),
      cli(['run', '-n', '--conflict-exit-code', '75', file, '--', 'true']),
      cli(['run', '--timeout-ms', '200', '-E', '9', file, '--', 'true']),
      // A shared request is refused by an exclusive holder too.
      cli(['run', '--shared', '-n', file, '--', 'true']),
    ]);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toContain(`held by pid ${holder.pid}`);
    expect(conflict.stderr).toContain('owner "blocker"');
    expect(custom.code).toBe(75);
    expect(timed.code).toBe(9);
    expect(timed.stderr).toMatch(/lock busy after \d+ ms/);
    expect(shared.code).toBe(1);
  });

  it("refuses bad usage with exit 64 (flock(1)'s EX_USAGE), touching nothing", async () => {
    const file = path.join(dir, 'usage.lock');
    const results = await Promise.all(
      [
        ['run', file], // one word: a descriptor number, which this is not
        ['run', '--kind', 'posix', file, '--', 'true'],
        ['run', '--timeout', 'soon', file, '--', 'true'],
        ['run', '--timeout-ms', '-5', file, '--', 'true'],
        ['run', '-E', '300', file, '--', 'true'],
        ['run', file, '--'],
        ['run', file, '--timeout', '5', 'true'], // options after the target
        ['run', '-k', 'ofd', file, 'true'], // our additions are long options only
      ].map((args) => cli(args)),
    );
    expect(results.map((r) => r.code)).toEqual([64, 64, 64, 64, 64, 64, 64, 64]);
    expect(results[1]?.stderr).toContain('not inherited');
    for (const r of results)
      expect(r.stderr).toMatch(/Try 'kernel-lock run --help' \(documentation: \/\S+\/docs\/CLI\.md#kernel-lock-run\)/);
    expect(existsSync(file)).toBe(false); // nothing was locked or created
  });

  it('reads -w in seconds, as flock(1) does, and --timeout-ms in milliseconds', async () => {
    const file = path.join(dir, 'seconds.lock');
    const holder = await holdInChild(file, { owner: 'blocker' });
    holders.push(holder);
    const [seconds, millis] = await Promise.all([
      cli(['run', '-w', '1.5', file, 'true']),
      cli(['run', '--timeout-ms', '300', file, 'true']),
    ]);
    expect(seconds.code).toBe(1);
    const waited = (r: Result): number => Number(/lock busy after (\d+) ms/.exec(r.stderr)?.[1]);
    expect(waited(seconds)).toBeGreaterThanOrEqual(1500);
    expect(waited(seconds)).toBeLessThan(10_000);
    expect(millis.code).toBe(1);
    expect(waited(millis)).toBeGreaterThanOrEqual(300);
    expect(waited(millis)).toBeLessThan(1500);
  });

  it('forwards signals to the command, which holds the lock through fd 3', async () => {
    const file = path.join(dir, 'signals.lock');
    // flock -n on fd 3 succeeds only on the very open file that holds the
    // lock: any other descriptor of the file would conflict.
    const script = 'trap "exit 9" TERM; flock -n 3 || exit 3; echo ready; while :; do sleep 0.05; done';
    const runner = spawn(process.execPath, [CLI, 'run', file, '--', 'sh', '-c', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => runner.once('exit', (code) => resolve(code)));
    await lineFrom(runner, 'ready');
    expect(flockN(file)).toBe(1);
    runner.kill('SIGTERM');
    expect(await exited).toBe(9);
  });
});

describe('kernel-lock sweep', () => {
  it('removes orphans, keeps held locks, and reports as JSON', async () => {
    const orphanFile = path.join(dir, 'orphan.jsonl.lock');
    writeFileSync(orphanFile, JSON.stringify({ pid: 4_194_304 + 3, createdAt: '2026-01-01T00:00:00Z' }));
    const heldFile = path.join(dir, 'held.jsonl.lock');
    const holder = await holdInChild(heldFile, { owner: 'keeper' });
    holders.push(holder);

    const dry = await cli(['sweep', '--dry-run', '--json', dir]);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({
      schema: 'kernel-lock/sweep/1',
      dryRun: true,
      removed: [orphanFile],
    });
    expect(existsSync(orphanFile)).toBe(true);

    const human = await cli(['sweep', dir]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`removed  ${orphanFile}`);
    expect(human.stdout).toContain(`kept  ${heldFile}: held by pid ${holder.pid}`);
    expect(existsSync(orphanFile)).toBe(false);
    expect(existsSync(heldFile)).toBe(true);

    const json = JSON.parse((await cli(['sweep', '--json', '--suffix', '.jsonl.lock', dir])).stdout);
    expect(json).toMatchObject({ dryRun: false, removed: [], kept: [{ path: heldFile, reason: 'held' }] });
    expect((await cli(['sweep', path.join(dir, 'no-such-dir')])).code).toBe(2);
  });
});

// `kernel-lock status --pg` and `kernel-lock run --pg` against the test
// cluster: who holds what, exit statuses, the token handed to the command,
// the conflict status, and the command stopped when the lock is lost.
import { spawn, spawnSync } from 'node:child_process';
import type pg from 'pg';
import { afterAll, beforeAll, expect } from 'vitest';
import { PgLocks } from '../../dist/pg.js';
import { root } from '../helpers.js';
import { adminClient, pgIt as it, pgEnv } from '../pg/helpers.js';

const env = pgEnv();
const cli = `${root}/dist/cli.js`;
const namespace = `cli-${process.pid}`;
let admin: pg.Client;

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(async () => {
  admin = await adminClient(env);
});
afterAll(async () => {
  await admin?.end();
});

it('status --pg: free is 0, held is 1 with holder, owner and token; --json keeps 64-bit numbers exact', async () => {
  const free = run('status', '--pg', env.url, '--namespace', namespace, 'cli-job');
  expect(free.status).toBe(0);
  expect(free.stdout).toMatch(/^free\s/m);
  const locks = new PgLocks(env.url, { namespace });
  const handle = await locks.lock('cli-job', { owner: 'the nightly job' });
  const held = run('status', '--pg', env.url, '--namespace', namespace, 'cli-job');
  expect(held.status).toBe(1);
  expect(held.stdout).toContain(`pid ${process.pid}`);
  expect(held.stdout).toContain('the nightly job');
  expect(held.stdout).toContain(String(handle.token));
  const json = JSON.parse(run('status', '--pg', env.url, '--namespace', namespace, '--json', 'cli-job').stdout);
  expect(json.schema).toBe('kernel-lock/pg-status/1');
  expect(json.locks[0].key).toBe(handle.key.toString());
  expect(json.locks[0].holders[0].record.token).toBe(handle.token.toString());
  // Without names: every advisory lock of the database.
  const all = run('status', '--pg', env.url);
  expect(all.status).toBe(1);
  expect(all.stdout).toContain('cli-job');
  await handle.release();
  await locks.close();
});

it('run --pg: the command runs holding the lock, gets the token, and its exit status passes through', async () => {
  const result = run(
    'run',
    '--pg',
    env.url,
    '--namespace',
    namespace,
    'cli-run',
    '--',
    'sh',
    '-c',
    `echo "token=$KERNEL_LOCK_PG_TOKEN"; "${process.execPath}" "${cli}" run --pg "${env.url}" --namespace ${namespace} -n -E 7 cli-run -- true; echo "inner=$?"; exit 3`,
  );
  expect(result.status).toBe(3);
  expect(result.stdout).toMatch(/token=\d+/);
  expect(result.stdout).toContain('inner=7'); // held: the nested non-blocking run got the conflict status
  expect(result.stderr).toContain('lock busy');
  expect(run('status', '--pg', env.url, '--namespace', namespace, 'cli-run').status).toBe(0);
});

it('run --pg: when the session is lost, the command is stopped', async () => {
  const child = spawn(
    process.execPath,
    [cli, 'run', '--pg', env.url, '--namespace', namespace, 'cli-lost', '--', 'sleep', '60'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const locks = new PgLocks(env.url, { namespace });
  let holder: number | undefined;
  for (let i = 0; i < 200 && holder === undefined; i++) {
    holder = (await locks.inspect('cli-lost')).holders[0]?.backendPid;
    if (holder === undefined) await new Promise((resolve) => setTimeout(resolve, 25));
  }
  expect(holder).toBeDefined();
  await admin.query('SELECT pg_terminate_backend($1)', [holder]);
  const status = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  expect(status).toBe(128 + 15);
  expect(stderr).toContain('lost the lock');
  await locks.close();
});

it("usage errors: 64 for run (flock(1)'s EX_USAGE), 2 for status", () => {
  expect(run('run', '--pg', env.url).status).toBe(64); // no lock name
  expect(run('run', '--pg', env.url, 'a').status).toBe(64); // no command
  expect(run('run', '--pg', env.url, '-o', 'a', 'true').status).toBe(64); // nothing to close: the session holds it
  expect(run('run', '--pg', env.url, '--kind', 'ofd', 'a', 'true').status).toBe(64);
  expect(run('status', '--pg').status).toBe(2);
});

it('run --pg reads -w in seconds and runs -c through the shell', async () => {
  const locks = new PgLocks(env.url, { namespace });
  const handle = await locks.lock('cli-seconds');
  const started = performance.now();
  const timed = run('run', '--pg', env.url, '--namespace', namespace, '-w', '0.5', '-E', '5', 'cli-seconds', 'true');
  expect(timed.status).toBe(5);
  expect(performance.now() - started).toBeGreaterThanOrEqual(500);
  await handle.release();
  const shell = run('run', '--pg', env.url, '--namespace', namespace, 'cli-seconds', '-c', 'exit 4');
  expect(shell.status).toBe(4);
  await locks.close();
});

// A real PgBouncer in front of the test cluster. In transaction mode it
// hands one server session (and the advisory locks it holds) to whichever
// client runs the next transaction, so session locks through it are
// meaningless: the engine detects the pooler (the backend key the client
// was given is not the backend it talks to) and refuses, saying why. In
// session mode the user may accept it explicitly.
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, expect } from 'vitest';
import { PgLockError, PgLocks } from '../../dist/pg.js';
import { itNeeds } from '../privileges.js';
import { pgEnv, pgIt } from './helpers.js';

const env = pgEnv();
const BOUNCER = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => existsSync(p));
// A package: scripts/pg-cluster.sh installs it when it runs as root.
const it =
  BOUNCER === undefined ? itNeeds(false, 'pgbouncer, which only root can install (apt-get install pgbouncer)') : pgIt;
let dir: string | undefined;
const bouncers: { pid: number }[] = [];

afterAll(() => {
  for (const b of bouncers) {
    try {
      process.kill(b.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function startBouncer(mode: 'transaction' | 'session'): Promise<string> {
  if (BOUNCER === undefined)
    throw new Error(
      'pgbouncer is not installed (apt-get install pgbouncer; scripts/pg-cluster.sh start does it as root)',
    );
  dir ??= mkdtempSync('/tmp/klpg-bouncer-');
  const port = await freePort();
  const ini = path.join(dir, `${mode}.ini`);
  const users = path.join(dir, 'users.txt');
  writeFileSync(users, '"klpg_app" ""\n');
  writeFileSync(
    ini,
    `[databases]
klpg_test = host=${env.dir}/socket port=${env.port} dbname=klpg_test
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${users}
pool_mode = ${mode}
logfile = ${dir}/${mode}.log
pidfile = ${dir}/${mode}.pid
`,
  );
  // PgBouncer refuses to run as root: as the cluster's own user, spawned
  // directly (not through runuser, whose child would outlive a kill).
  const uid = Number(execFileSync('id', ['-u', env.osUser], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', env.osUser], { encoding: 'utf8' }));
  for (const file of [dir, ini, users]) chownSync(file, uid, gid);
  const child = spawn(BOUNCER, [ini], { stdio: 'ignore', uid, gid });
  bouncers.push({ pid: child.pid! });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (up) return `postgresql://klpg_app@127.0.0.1:${port}/klpg_test`;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`pgbouncer (${mode}) did not start`);
}

it('refuses a transaction pooler, naming it and the fix', async () => {
  const url = await startBouncer('transaction');
  const locks = new PgLocks(url);
  const error = (await locks.lock('pooled').catch((e: unknown) => e)) as PgLockError;
  expect(error).toBeInstanceOf(PgLockError);
  expect(error.code).toBe('ERR_KERNEL_LOCK_PG_POOLER');
  expect(error.message).toContain('connection pooler');
  expect(error.message).toContain('Connect to PostgreSQL directly');
  await locks.close();
});

it('refuses a session pooler by default, accepts it with allowSessionPooler, and the locks exclude', async () => {
  const url = await startBouncer('session');
  const refused = new PgLocks(url);
  await expect(refused.lock('pooled')).rejects.toMatchObject({ code: 'ERR_KERNEL_LOCK_PG_POOLER' });
  await refused.close();
  const a = new PgLocks(url, { allowSessionPooler: true });
  const b = new PgLocks(env.url);
  const held = await a.lock('pooled');
  expect(await b.tryLock('pooled')).toBeNull();
  await held.release();
  const mine = await b.tryLock('pooled');
  expect(mine).not.toBeNull();
  await mine!.release();
  await a.close();
  await b.close();
});

#!/usr/bin/env node
// Bench child for bench/pg.mjs: takes and releases one lock on command with
// one of three engines, and stamps every event with CLOCK_MONOTONIC
// (process.hrtime.bigint(), comparable across processes).
//   kernel <lock file>        kernel-lock lock() on a flock lock file
//   pg <url>                  kernel-lock/pg (PgLocks)
//   raw <url>                 node-postgres alone: pg_advisory_lock / unlock (the floor)
// stdin lines: "lock", "release", "uncontended <ms>", "exit"
// stdout lines: "ready", "waiting", "granted <ns>", "released <ns before release>", "cycles <json us>"
import { createInterface } from 'node:readline';
import pg from 'pg';
import { lock } from '../dist/index.js';
import { PgLocks } from '../dist/pg.js';

const [engine, target, name = 'bench'] = process.argv.slice(2);
const now = () => process.hrtime.bigint();
const say = (line) => process.stdout.write(`${line}\n`);

let acquire;
let client;
let locks;
if (engine === 'kernel') {
  acquire = async () => {
    const h = await lock(target, { removeOnRelease: false });
    return () => h.release();
  };
} else if (engine === 'pg') {
  locks = new PgLocks(target, { namespace: 'bench' });
  acquire = async () => {
    const h = await locks.lock(name);
    return () => h.release();
  };
} else {
  client = new pg.Client(target);
  await client.connect();
  acquire = async () => {
    await client.query('SELECT pg_advisory_lock(4242)');
    return () => client.query('SELECT pg_advisory_unlock(4242)');
  };
}
let release;

async function uncontended(ms) {
  const samples = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t0 = now();
    const r = await acquire();
    await r();
    samples.push(Number(now() - t0) / 1000);
  }
  say(`cycles ${JSON.stringify(samples)}`);
}

createInterface({ input: process.stdin }).on('line', async (line) => {
  const [op, arg] = line.split(' ');
  if (op === 'lock') {
    const pending = acquire();
    say('waiting');
    release = await pending;
    say(`granted ${now()}`);
  } else if (op === 'release') {
    const t = now();
    await release();
    say(`released ${t}`);
  } else if (op === 'uncontended') {
    await uncontended(Number(arg));
  } else if (op === 'exit') {
    await locks?.close();
    await client?.end();
    process.exit(0);
  }
});
// Warm up the connection (the shared session, the schema check).
if (engine !== 'kernel') {
  const r = await acquire();
  await r();
}
say('ready');

// The partition figures of bench/pg.mjs (root only): host A holds a lock,
// host B waits; A's link is cut (interface down: packets vanish, no reset).
// Measured with one clock (CLOCK_MONOTONIC): when A's signal aborted and
// when B was granted, after the cut. Same topology as test/pg/hosts.test.ts.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { LineChild } from './pg-children.mjs';

const ip = (...args) => execFileSync('ip', args, { stdio: 'pipe' });

export async function partitions({ root, deadPeerMsList, repeats, log }) {
  const tag = `klpgb${process.pid % 10000}`;
  const ns = { db: `${tag}-db`, a: `${tag}-a`, b: `${tag}-b` };
  const link = { a: `${tag}a`, b: `${tag}b` };
  const dir = mkdtempSync(`/tmp/${tag}-`);
  chmodSync(dir, 0o755);
  const clusterDir = path.join(dir, 'cluster');
  const env = { ...process.env, KERNEL_LOCK_PG_NETNS: ns.db, KERNEL_LOCK_PG_LISTEN: '*', KERNEL_LOCK_PG_PORT: '' };
  const results = [];
  try {
    for (const name of Object.values(ns)) ip('netns', 'add', name);
    for (const name of Object.values(ns)) ip('-n', name, 'link', 'set', 'lo', 'up');
    for (const [i, host] of ['a', 'b'].entries()) {
      ip(
        'link',
        'add',
        `${link[host]}0`,
        'netns',
        ns[host],
        'type',
        'veth',
        'peer',
        'name',
        `${link[host]}1`,
        'netns',
        ns.db,
      );
      ip('-n', ns[host], 'addr', 'add', `10.213.${i + 1}.1/30`, 'dev', `${link[host]}0`);
      ip('-n', ns.db, 'addr', 'add', `10.213.${i + 1}.2/30`, 'dev', `${link[host]}1`);
      ip('-n', ns[host], 'link', 'set', `${link[host]}0`, 'up');
      ip('-n', ns.db, 'link', 'set', `${link[host]}1`, 'up');
    }
    execFileSync(`${root}/scripts/pg-cluster.sh`, ['start', clusterDir], { env, stdio: 'pipe' });
    const port = /KERNEL_LOCK_PG_PORT='(\d+)'/.exec(readFileSync(path.join(clusterDir, 'env'), 'utf8'))[1];
    const url = (i) => `postgresql://klpg_app@10.213.${i}.2:${port}/klpg_test`;
    const agentScript = `${root}/test/pg/fixtures/agent.mjs`;
    for (const deadPeerMs of deadPeerMsList) {
      for (let r = 0; r < repeats; r++) {
        const options = JSON.stringify({ deadPeerMs, namespace: 'bench-partition' });
        const a = new LineChild([agentScript, url(1), options], ns.a);
        const b = new LineChild([agentScript, url(2), options], ns.b);
        await a.prefix('{"event":"ready"');
        await b.prefix('{"event":"ready"');
        a.send(JSON.stringify({ op: 'lock', id: 'h', name: `p${r}` }));
        await a.next((l) => l.includes('"granted"'));
        b.send(JSON.stringify({ op: 'lock', id: 'w', name: `p${r}`, timeout: deadPeerMs * 5 }));
        await new Promise((resolve) => setTimeout(resolve, 300));
        const cut = process.hrtime.bigint();
        ip('-n', ns.a, 'link', 'set', `${link.a}0`, 'down');
        const lost = JSON.parse(await a.next((l) => l.includes('"lost"'), deadPeerMs * 5));
        const granted = JSON.parse(
          await b.next((l) => l.includes('"granted"') || l.includes('"failed"'), deadPeerMs * 5),
        );
        const ms = (t) => Number(BigInt(t) - cut) / 1e6;
        results.push({ deadPeerMs, holderToldMs: ms(lost.t), waiterGrantedMs: ms(granted.t), granted: granted.event });
        log(
          `partition deadPeerMs=${deadPeerMs}: holder told ${ms(lost.t).toFixed(0)} ms, waiter granted ${ms(granted.t).toFixed(0)} ms`,
        );
        await a.kill();
        await b.kill();
        ip('-n', ns.a, 'link', 'set', `${link.a}0`, 'up');
      }
    }
  } finally {
    try {
      execFileSync(`${root}/scripts/pg-cluster.sh`, ['stop', clusterDir], { env, stdio: 'pipe' });
    } catch {}
    for (const name of Object.values(ns)) {
      try {
        ip('netns', 'del', name);
      } catch {}
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

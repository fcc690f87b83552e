// 8. A lock cycle while many other locks are held (issue 16): the cycle
// with 10,000 held should cost at most 1.2× the cycle with one held. A
// fresh process per contender holds lock-0, then alternates rounds: a
// cycle on another file with that one lock held, then with `count` held
// (acquired between the two, released after). The files exist beforehand,
// so no round measures the file system creating inodes. Each round's ratio
// compares the two halves of the same round.
import fs from 'node:fs';
import path from 'node:path';
import { serveChild } from './children.mjs';
import { summarize } from './stats.mjs';

export async function heldMany(cfg, specs, dir) {
  const results = {};
  // flock (the default) and posix (the process-wide table); ofd shares flock's path.
  const chosen = specs.filter(
    (spec) => spec.lib?.startsWith('kernel-lock') && spec.keepsFile && spec.lockKind !== 'ofd',
  );
  for (const spec of specs) if (!chosen.includes(spec)) results[spec.id] = { na: 'not measured' };
  const files = path.join(dir, 'm8-files');
  fs.mkdirSync(files, { recursive: true });
  for (let i = 0; i < cfg.locks; i++) fs.closeSync(fs.openSync(path.join(files, `lock-${i}`), 'w'));
  for (const spec of chosen) {
    const lockPath = path.join(dir, `m8-${spec.id}.lock`);
    fs.closeSync(fs.openSync(lockPath, 'w'));
    // A fresh process, so no other measurement's heap or tables are in it.
    const child = serveChild(spec, lockPath);
    try {
      await child.next('ready', 60_000);
      child.send(`held ${files} ${cfg.locks} ${cfg.rounds} ${cfg.roundMs}`);
      const got = JSON.parse(await child.next('held', 600_000));
      const ratios = got.many.map((many, r) => many / got.one[r]);
      results[spec.id] = {
        locks: cfg.locks,
        oneP50: summarize(got.one).p50,
        manyP50: summarize(got.many).p50,
        roundRatios: ratios,
        ratio: summarize(ratios).p50,
      };
    } catch (error) {
      results[spec.id] = { na: `failed: ${error.message ?? error}` };
    } finally {
      child.send('exit');
      child.kill('SIGKILL');
      await child.gone();
    }
  }
  fs.rmSync(files, { recursive: true, force: true });
  return { results };
}

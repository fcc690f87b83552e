#!/usr/bin/env node
// The other processes of bench/inspection.mjs's system-wide measurement.
//   cycles <dist> <file> <ms>           lock cycles (tryLockSync + releaseSync) on a file of
//                                       its own; prints JSON latency percentiles (µs)
//   read-proc-locks <ms>                reads /proc/locks in a loop, as a synchronous reader does
//   timeouts <dist> <file> <ms>         lock(file, { timeout: 0 }) against a held lock, in a loop
//   inspect <dist> <file> <ms>          inspect(file) in a loop
// Each loop prints {"iterations": n} when its time is up.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [mode, ...args] = process.argv.slice(2);
const load = (dist) => import(pathToFileURL(dist).href);

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function loop(ms, body) {
  const end = performance.now() + ms;
  let iterations = 0;
  while (performance.now() < end) {
    await body();
    iterations++;
  }
  process.stdout.write(`${JSON.stringify({ iterations })}\n`);
}

if (mode === 'cycles') {
  const [dist, file, ms] = args;
  const { tryLockSync } = await load(dist);
  const samples = [];
  const end = performance.now() + Number(ms);
  while (performance.now() < end) {
    const started = performance.now();
    tryLockSync(file, { removeOnRelease: false }).releaseSync();
    samples.push((performance.now() - started) * 1000);
  }
  samples.sort((a, b) => a - b);
  const us = (p) => Number(percentile(samples, p).toFixed(1));
  process.stdout.write(
    `${JSON.stringify({ cycles: samples.length, p50: us(0.5), p99: us(0.99), p999: us(0.999), max: us(1) })}\n`,
  );
} else if (mode === 'read-proc-locks') {
  await loop(Number(args[0]), () => readFileSync('/proc/locks', 'latin1'));
} else if (mode === 'timeouts') {
  const [dist, file, ms] = args;
  const { lock } = await load(dist);
  await loop(Number(ms), () =>
    lock(file, { timeout: 0 }).then(
      (h) => h.releaseSync(),
      () => {},
    ),
  );
} else if (mode === 'inspect') {
  const [dist, file, ms] = args;
  const { inspect } = await load(dist);
  await loop(Number(ms), () => inspect(file));
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
process.exit(0);

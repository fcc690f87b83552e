// A bench participant for bench/lease.mjs. Times are process.hrtime.bigint()
// (CLOCK_MONOTONIC, the same clock in every process of this machine), in ns.
//   hold <path> <lease|lock> <takeoverAfter>
//     Takes the lease (or a plain ofd lock) and prints "held <ns> <grant ms>"
//     (the lease's acquiredAtMs: the grant time written in its slot); for a
//     lease, prints "aborted <ns>" when its signal fires. Stays until killed.
//   wait <path> <lease|lock> <takeoverAfter>
//     Warms up on <path>.warm, prints "ready", starts the acquisition on a
//     "go" line on stdin, and prints "granted <ns> <token> <grant ms>"; then
//     exits.
import { createInterface } from 'node:readline';
import { lease, lock } from '../dist/index.js';

const [mode, path, kind, after] = process.argv.slice(2);
const now = () => process.hrtime.bigint();
const say = (line) => process.stdout.write(`${line}\n`);
const takeoverAfter = after === 'inf' ? Number.POSITIVE_INFINITY : Number(after);

function acquire(file = path) {
  return kind === 'lease' ? lease(file, { takeoverAfter }) : lock(file, { kind: 'ofd', removeOnRelease: false });
}

if (mode === 'hold') {
  const held = await acquire();
  say(`held ${now()} ${held.acquiredAtMs ?? '-'}`);
  if (kind === 'lease') held.signal.addEventListener('abort', () => say(`aborted ${now()}`));
  setInterval(() => {}, 1 << 30);
} else if (mode === 'wait') {
  // Warm up on a scratch file first: a long-lived process (a gateway) has run
  // this code before; a fresh one would also measure lazy compilation.
  for (let i = 0; i < 3; i++) await (await acquire(`${path}.warm`)).release();
  say('ready');
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line !== 'go') continue;
    const held = await acquire();
    const at = now();
    say(`granted ${at} ${held.token ?? '-'} ${held.acquiredAtMs ?? '-'}`);
    await held.release();
    process.exit(0);
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}

// Property tests of the /proc/locks parser (src/proc/proc-locks.ts): it
// reads a kernel file whose format has grown over the years, so it must
// never throw, must decode the device numbers the way stat() encodes them,
// and must find the locks this very process holds in the real file.
import { statSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lock } from '../../src/index.js';
import {
  fileKey,
  ProcLocksFilter,
  parseDeviceInode,
  parseProcLocks,
  parseProcLocksLine,
  procLocksField,
  readKernelLocks,
} from '../../src/proc/proc-locks.js';
import { runAsync, runSync } from '../../src/proc/steps.js';
import { tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-proc-locks-'));
});
afterAll(() => cleanup());

/** glibc's makedev(): how a (major, minor) pair is packed into st_dev. */
function makedev(major: bigint, minor: bigint): bigint {
  return ((major & 0xfffn) << 8n) | ((major & ~0xfffn) << 32n) | (minor & 0xffn) | ((minor & ~0xffn) << 12n);
}

// Majors and minors use their full 32 bits: large device numbers interleave
// high bits that a wrongly masked decoder mixes up.
const major = fc.bigInt({ min: 0n, max: 0xffffffffn });
const minor = fc.bigInt({ min: 0n, max: 0xffffffffn });
const inode = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });

describe('/proc/locks parser', () => {
  it('never throws on arbitrary text or lines', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (text) => {
        parseProcLocksLine(text);
        parseProcLocks(text);
        parseDeviceInode(text);
      }),
      { numRuns: 1500 },
    );
  });

  it('decodes MAJ:MIN:INODE (hex, hex, decimal) to the same key stat() gives, including large device numbers', () => {
    fc.assert(
      fc.property(major, minor, inode, (maj, min, ino) => {
        const field = `${maj.toString(16).padStart(2, '0')}:${min.toString(16).padStart(2, '0')}:${ino}`;
        expect(parseDeviceInode(field)).toBe(fileKey(makedev(maj, min), ino));
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips generated lines of every kind, holders and waiters', () => {
    const line = fc.record({
      id: fc.nat(),
      blocked: fc.boolean(),
      type: fc.constantFrom('FLOCK', 'OFDLCK', 'POSIX'),
      flavour: fc.constantFrom('ADVISORY', 'MANDATORY'),
      access: fc.constantFrom('READ', 'WRITE'),
      pid: fc.oneof(fc.constant(-1), fc.nat({ max: 4_194_304 })),
      maj: major,
      min: minor,
      ino: inode,
      start: fc.nat({ max: 2 ** 52 }),
      length: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 ** 40 })),
    });
    fc.assert(
      fc.property(line, (l) => {
        const end = l.length === 0 ? 'EOF' : String(l.start + l.length - 1);
        const text = `${l.id}: ${l.blocked ? '-> ' : ''}${l.type}  ${l.flavour}  ${l.access} ${l.pid} ${l.maj.toString(16)}:${l.min.toString(16)}:${l.ino} ${l.type === 'FLOCK' ? 0 : l.start} ${l.type === 'FLOCK' ? 'EOF' : end}`;
        const parsed = parseProcLocksLine(text);
        expect(parsed).not.toBeNull();
        expect(parsed!.key).toBe(fileKey(makedev(l.maj, l.min), l.ino));
        expect(parsed!.lock).toMatchObject({
          pid: l.pid,
          kind: { FLOCK: 'flock', OFDLCK: 'ofd', POSIX: 'posix' }[l.type],
          mode: l.access === 'WRITE' ? 'exclusive' : 'shared',
          blocked: l.blocked,
        });
        if (l.type !== 'FLOCK') expect(parsed!.lock.range).toEqual({ start: l.start, length: l.length });
      }),
      { numRuns: 2000 },
    );
  });

  it('the chunked filter finds exactly the lines the parser finds for its files, however the text is cut', () => {
    // A few devices and inodes, so that lines share files and fields share prefixes.
    const device = fc.constantFrom<[bigint, bigint]>([0xfen, 0n], [0xfen, 1n], [8n, 0x12n], [0x103n, 0x12345n]);
    const ino = fc.constantFrom(5n, 55n, 555n, 18446744073709551557n);
    const line = fc.record({
      id: fc.nat({ max: 99999 }),
      blocked: fc.boolean(),
      type: fc.constantFrom('FLOCK', 'OFDLCK', 'POSIX', 'LEASE'),
      access: fc.constantFrom('READ', 'WRITE'),
      pid: fc.oneof(fc.constant(-1), fc.nat({ max: 4_194_304 })),
      device,
      ino,
      fdinfo: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 60 }),
        fc.array(fc.nat({ max: 5000 }), { maxLength: 12 }),
        fc.array(fc.tuple(device, ino), { minLength: 1, maxLength: 12 }),
        (lines, cuts, wanted) => {
          const text = lines
            .map((l) => {
              const field = procLocksField(`${l.device[0]}:${l.device[1]}:${l.ino}`);
              const body = `${l.id}: ${l.blocked ? '-> ' : ''}${l.type}  ADVISORY  ${l.access} ${l.pid} ${field} 0 EOF`;
              return l.fdinfo ? `lock:\t${body}` : body;
            })
            .join('\n');
          const keys = wanted.map(([dev, i]) => `${dev[0]}:${dev[1]}:${i}`);
          const expected = new Map<string, unknown[]>();
          for (const l of text.split('\n')) {
            const parsed = parseProcLocksLine(l.startsWith('lock:') ? l.slice(5) : l);
            if (parsed === null || !keys.includes(parsed.key)) continue;
            expected.set(parsed.key, [...(expected.get(parsed.key) ?? []), parsed.lock]);
          }
          const bytes = Buffer.from(text, 'latin1');
          const filter = new ProcLocksFilter(keys);
          let at = 0;
          for (const cut of [...cuts].sort((a, b) => a - b)) {
            const end = Math.min(cut, bytes.length);
            if (end <= at) continue;
            filter.push(bytes.subarray(at, end));
            at = end;
          }
          filter.push(bytes.subarray(at));
          expect(filter.end()).toEqual(expected);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('finds the locks this process holds in the real /proc/locks, with the right pid, kind and mode', async () => {
    const { readFileSync } = await import('node:fs');
    for (const kind of ['flock', 'ofd', 'posix'] as const) {
      for (const mode of ['exclusive', 'shared'] as const) {
        const file = path.join(dir, `${kind}-${mode}.lock`);
        const handle = await lock(file, { kind, mode });
        const st = statSync(file, { bigint: true });
        const key = fileKey(st.dev, st.ino);
        const found = parseProcLocks(readFileSync('/proc/locks', 'latin1')).get(key) ?? [];
        expect(found, `${kind} ${mode}`).toEqual([
          expect.objectContaining({ kind, mode, blocked: false, pid: kind === 'ofd' ? -1 : process.pid }),
        ]);
        // The chunked, filtered reader sees the same, synchronously and off the loop.
        expect(runSync(readKernelLocks(new Set([key])))?.get(key)).toEqual(found);
        expect((await runAsync(readKernelLocks(new Set([key]))))?.get(key)).toEqual(found);
        await handle.release();
      }
    }
  });
});

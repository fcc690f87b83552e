// Property tests of the /proc/locks parser (src/proc/proc-locks.ts): it
// reads a kernel file whose format has grown over the years, so it must
// never throw, must decode the device numbers the way stat() encodes them,
// and must find the locks this very process holds in the real file.
import { statSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lock } from '../../src/index.js';
import { fileKey, parseDeviceInode, parseProcLocks, parseProcLocksLine } from '../../src/proc/proc-locks.js';
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

  it('finds the locks this process holds in the real /proc/locks, with the right pid, kind and mode', async () => {
    const { readFileSync } = await import('node:fs');
    for (const kind of ['flock', 'ofd', 'posix'] as const) {
      for (const mode of ['exclusive', 'shared'] as const) {
        const file = path.join(dir, `${kind}-${mode}.lock`);
        const handle = await lock(file, { kind, mode });
        const st = statSync(file, { bigint: true });
        const found = parseProcLocks(readFileSync('/proc/locks', 'latin1')).get(fileKey(st.dev, st.ino)) ?? [];
        expect(found, `${kind} ${mode}`).toEqual([
          expect.objectContaining({ kind, mode, blocked: false, pid: kind === 'ofd' ? -1 : process.pid }),
        ]);
        await handle.release();
      }
    }
  });
});

// Lock file names are bytes. A name that is not UTF-8 (`sess-\xff\xfe.lock`)
// must be inspected at its real path by scan(), sweep() and the CLI: decoded
// as UTF-8 it names a file that does not exist, and a held lock reads as
// free. Such names are reported escaped (`\xHH`), with the exact bytes in
// `pathBytes` (base64).
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inspect, scan, scanSync, sweep, sweepSync } from '../../src/index.js';
import { escapePath, pathText } from '../../src/lock/path-text.js';
import { fixture, type Holder, spawnHolder, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
const holders: Holder[] = [];
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-raw-names-'));
});
afterEach(async () => {
  for (const h of holders.splice(0)) await h.kill('SIGKILL');
  cleanup();
});

const bytes = (...parts: (string | number[])[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

/** A kernel-lock holder of a path given as bytes. */
async function holdBytes(file: Buffer, options: object = {}): Promise<Holder> {
  const holder = await spawnHolder(process.execPath, [
    fixture('holder.mjs'),
    `base64:${file.toString('base64')}`,
    JSON.stringify(options),
  ]);
  holders.push(holder);
  return holder;
}

describe('escaping', () => {
  it('keeps UTF-8 names as they are and escapes invalid bytes, controls, bidi overrides and backslashes', () => {
    expect(escapePath('/d/sessions/ü-😀.lock')).toBe('/d/sessions/ü-😀.lock');
    expect(escapePath(bytes('/d/sess-', [0xff, 0xfe], '.lock'))).toBe('/d/sess-\\xff\\xfe.lock');
    expect(escapePath('/d/a\\b\n\u001b[2J\u202e.lock')).toBe('/d/a\\\\b\\x0a\\x1b[2J\\xe2\\x80\\xae.lock');
    // Overlong encodings, surrogates and truncated sequences are invalid UTF-8.
    expect(escapePath(bytes([0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xe2, 0x82]))).toBe('\\xc0\\xaf\\xed\\xa0\\x80\\xe2\\x82');
    expect(pathText(bytes('/d/x', [0xff]))).toEqual({
      path: '/d/x\\xff',
      pathBytes: bytes('/d/x', [0xff]).toString('base64'),
    });
    expect(pathText(Buffer.from('/d/ü.lock'))).toEqual({ path: '/d/ü.lock' });
  });
});

describe('lock files whose names are not UTF-8', () => {
  it('scan() and inspect() report a held sess-\\xff\\xfe.lock as held, by its exact bytes', async () => {
    const file = bytes(`${dir}/sess-`, [0xff, 0xfe], '.lock');
    const holder = await holdBytes(file, { owner: 'bytes' });
    const expected = {
      path: `${dir}/sess-\\xff\\xfe.lock`,
      pathBytes: file.toString('base64'),
      state: 'held',
      held: true,
      record: expect.objectContaining({ owner: 'bytes' }),
    };
    const [found] = await scan(dir);
    expect(found).toMatchObject(expected);
    expect(found?.holders[0]).toMatchObject({ pid: holder.pid, alive: true });
    expect(scanSync(dir)).toEqual([expect.objectContaining(expected)]);
    expect(await inspect(file)).toMatchObject(expected);
  });

  it('sweep() keeps the held one and removes an orphan whose name is not UTF-8 either', async () => {
    const heldFile = bytes(`${dir}/sess-`, [0xff, 0xfe], '.lock');
    await holdBytes(heldFile, { removeOnRelease: false });
    const orphanFile = bytes(`${dir}/old-`, [0xc3, 0x28], '.lock');
    writeFileSync(orphanFile, JSON.stringify({ pid: 4_194_304 + 3, createdAt: '2026-01-01T00:00:00.000Z' }));
    const dry = sweepSync(dir, { dryRun: true });
    expect(dry.removed).toEqual([`${dir}/old-\\xc3(.lock`]);
    const result = await sweep(dir);
    expect(result.removed).toEqual([`${dir}/old-\\xc3(.lock`]);
    expect(result.kept).toEqual([
      expect.objectContaining({
        path: `${dir}/sess-\\xff\\xfe.lock`,
        pathBytes: heldFile.toString('base64'),
        reason: 'held',
      }),
    ]);
    expect(existsSync(orphanFile)).toBe(false);
    expect(existsSync(heldFile)).toBe(true);
  });

  it('names in a directory given as bytes, and a directory name that is not UTF-8', async () => {
    const sub = bytes(`${dir}/d`, [0xfe]);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sub);
    const file = Buffer.concat([sub, Buffer.from('/a.lock')]);
    await holdBytes(file);
    const [found] = await scan(sub);
    expect(found).toMatchObject({ path: `${dir}/d\\xfe/a.lock`, pathBytes: file.toString('base64'), state: 'held' });
    expect(path.basename(found!.path)).toBe('a.lock');
  });
});

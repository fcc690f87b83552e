// Property tests of the owner-record parser: it reads files any process (or
// a hostile user) may have written, so it must never throw, must keep only
// fields of the right type, and must read back exactly what formatRecord wrote.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatRecord, MAX_OWNER_LENGTH, type OwnerRecord, parseRecord } from '../../src/lock/owner-record.js';

const STRING_FIELDS = ['format', 'createdAt', 'hostname', 'bootId', 'pidNamespace', 'owner'] as const;
const INT_FIELDS = ['pid', 'starttime', 'threadId'] as const;

/** Every field present has the documented type: callers may use the record without re-checking. */
function wellTyped(record: OwnerRecord): boolean {
  for (const key of STRING_FIELDS) if (key in record && typeof record[key] !== 'string') return false;
  for (const key of INT_FIELDS) if (key in record && !Number.isSafeInteger(record[key])) return false;
  if ('kind' in record && !['flock', 'ofd', 'posix'].includes(record.kind!)) return false;
  if ('mode' in record && !['exclusive', 'shared'].includes(record.mode!)) return false;
  if ('argv' in record && !(Array.isArray(record.argv) && record.argv.every((a) => typeof a === 'string')))
    return false;
  return Object.keys(record).every((key) =>
    [...STRING_FIELDS, ...INT_FIELDS, 'kind', 'mode', 'argv'].includes(key as never),
  );
}

const recordLike = fc.record(
  {
    format: fc.oneof(fc.constant('kernel-lock/1'), fc.anything()),
    pid: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null)),
    starttime: fc.oneof(fc.nat(), fc.bigInt().map(String)),
    createdAt: fc.oneof(
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.integer(),
    ),
    owner: fc.oneof(fc.string({ unit: 'binary' }), fc.array(fc.string())),
    argv: fc.oneof(fc.array(fc.string()), fc.array(fc.anything()), fc.string()),
    kind: fc.oneof(fc.constantFrom('flock', 'ofd', 'posix'), fc.string()),
    mode: fc.oneof(fc.constantFrom('exclusive', 'shared'), fc.string()),
    __proto__: fc.anything(),
    constructor: fc.anything(),
  },
  { requiredKeys: [] },
);

describe('parseRecord', () => {
  it('never throws and returns null or a well-typed record, for any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 5000 }), (text) => {
        const record = parseRecord(text);
        return record === null || wellTyped(record);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws for any bytes (binary garbage, invalid UTF-8)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (bytes) => {
        const record = parseRecord(Buffer.from(bytes));
        return record === null || wellTyped(record);
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps only well-typed fields of any JSON value, including hostile keys', () => {
    fc.assert(
      fc.property(fc.oneof(recordLike, fc.jsonValue()), fc.constantFrom('', ' ', '\n', '   \n  '), (value, pad) => {
        const record = parseRecord(JSON.stringify(value) + pad);
        if (record === null) return typeof value !== 'object' || value === null || Array.isArray(value);
        return wellTyped(record) && Object.getPrototypeOf(record) === Object.prototype;
      }),
      { numRuns: 2000 },
    );
  });

  it('is bounded: huge, deeply nested or truncated input is "no record", quickly', () => {
    const deepArray = `{"a":${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
    const deepObject = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
    const huge = `{"pid":1,"owner":"${'x'.repeat(10_000_000)}"}`;
    for (const text of [deepArray, deepObject, huge, '{"pid":1,"owner":"unterminated']) {
      const started = performance.now();
      expect(parseRecord(text)).toBeNull();
      expect(parseRecord(Buffer.from(text))).toBeNull();
      expect(performance.now() - started).toBeLessThan(500);
    }
  });

  it('reads the legacy {pid, createdAt, starttime} marker', () => {
    fc.assert(
      fc.property(fc.nat(), fc.date({ noInvalidDate: true }), fc.nat(), (pid, date, starttime) => {
        const record = parseRecord(JSON.stringify({ pid, createdAt: date.toISOString(), starttime }));
        expect(record).toEqual({ pid, createdAt: date.toISOString(), starttime });
      }),
    );
  });
});

describe('formatRecord', () => {
  it('round-trips through parseRecord for any owner label (one line, owner cut at the documented length)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('flock', 'ofd', 'posix'),
        fc.constantFrom('exclusive', 'shared'),
        fc.option(fc.string({ unit: 'binary', maxLength: 400 }), { nil: undefined }),
        fc.constantFrom('', '   \n'),
        (kind, mode, owner, padding) => {
          const text = formatRecord(kind, mode, owner);
          expect(text.endsWith('\n')).toBe(true);
          expect(text.slice(0, -1)).not.toContain('\n'); // one line, whatever the label holds
          const record = parseRecord(text + padding);
          expect(record).toMatchObject({ format: 'kernel-lock/1', pid: process.pid, kind, mode });
          if (owner === undefined) expect(record).not.toHaveProperty('owner');
          else expect(record!.owner).toBe(owner.slice(0, MAX_OWNER_LENGTH));
          expect(Number.isNaN(Date.parse(record!.createdAt!))).toBe(false);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

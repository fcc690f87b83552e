// Lock names become PostgreSQL advisory lock keys: the first 64 bits of
// SHA-256 over the namespace and the name. A cryptographic digest, because
// keys are shared with every other user of advisory locks in the database
// and a weak hash (PostgreSQL's hashtext is 32 bits) collides in practice.
// A collision is still never silent: the name is stored in the owner record
// and compared (see acquire.ts and inspect.ts).
import { createHash } from 'node:crypto';

/** The advisory lock key of `name` in `namespace` (a signed 64-bit integer, as pg_advisory_lock takes it). */
export function lockKey(namespace: string, name: string): bigint {
  // NUL cannot occur in either string (PostgreSQL text has no NUL), so the
  // separator makes (namespace, name) -> bytes one-to-one.
  return createHash('sha256').update(namespace).update('\0').update(name).digest().readBigInt64BE(0);
}

/** The two halves of a key as pg_locks shows them: classid (high 32 bits) and objid (low 32 bits), unsigned. */
export function keyParts(key: bigint): { classid: number; objid: number } {
  const unsigned = BigInt.asUintN(64, key);
  return { classid: Number(unsigned >> 32n), objid: Number(unsigned & 0xffffffffn) };
}

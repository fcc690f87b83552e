// The hook's engine choice from the environment: files without a URL; with
// one, a PgLocks whose deadPeerMs comes from KERNEL_LOCK_SESSION_PG_DEAD_PEER_MS,
// and a bad value fails the acquisition with the variable's name (never a
// silent default, never files). PgLocks connects lazily, so no server is needed.
import { describe, expect, it } from 'vitest';
import {
  SESSION_PG_DEAD_PEER_MS_ENV,
  SESSION_PG_URL_ENV,
  sessionEngineFromEnvironment,
} from '../../src/openclaw/session-engine.js';
import type { PgLocks } from '../../src/pg/engine.js';

const url = 'postgresql://kl-test@127.0.0.1:1/none';

describe("the hook's session engine from the environment", () => {
  it('files without a URL; PgLocks with the default deadPeerMs with one', () => {
    expect(sessionEngineFromEnvironment({})).toBeUndefined();
    expect(sessionEngineFromEnvironment({ [SESSION_PG_URL_ENV]: '' })).toBeUndefined();
    const engine = sessionEngineFromEnvironment({ [SESSION_PG_URL_ENV]: url })!() as PgLocks;
    expect(engine.kind).toBe('pg');
    expect(engine.timings.deadPeerMs).toBe(10_000);
  });

  it('KERNEL_LOCK_SESSION_PG_DEAD_PEER_MS sets deadPeerMs, and the timings derived from it', () => {
    const engine = sessionEngineFromEnvironment({
      [SESSION_PG_URL_ENV]: url,
      [SESSION_PG_DEAD_PEER_MS_ENV]: '2500',
    })!() as PgLocks;
    expect(engine.timings.deadPeerMs).toBe(2500);
    expect(engine.timings.lossDeadlineMs).toBe(1500);
  });

  it('one engine per process: the factory returns the same PgLocks every time', () => {
    const factory = sessionEngineFromEnvironment({ [SESSION_PG_URL_ENV]: url })!;
    expect(factory()).toBe(factory());
  });

  it.each(['10s', '-5', '999', '3600001', '1e4', '12.5'])('refuses %j, naming the variable and the fix', (value) => {
    const factory = sessionEngineFromEnvironment({ [SESSION_PG_URL_ENV]: url, [SESSION_PG_DEAD_PEER_MS_ENV]: value })!;
    expect(() => factory()).toThrow(
      new RegExp(
        `${SESSION_PG_DEAD_PEER_MS_ENV}=${JSON.stringify(value).replace(/[.+]/g, '\\$&')} is not a number of milliseconds from 1000 to 3600000.*unset it`,
      ),
    );
  });
});

// Chaos, quick mode: for every kind, exclusive-only and mixed shared/exclusive,
// six worker processes take one lock many times while holders are SIGKILLed
// in the middle of their critical section (8 kills per configuration, 48 in
// all). `npm run soak` runs the same code for longer with more kills.
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM shared with the soak runner, no declarations
import { runChaos } from './fixtures/chaos.mjs';

interface ChaosResult {
  stats: Record<string, unknown> & { kills: number; completed: number; readerChecks: number; survivorsChecked: number };
  violations: string[];
}

const run = runChaos as (options: object) => Promise<ChaosResult>;

describe('chaos: SIGKILLed holders never let two holders overlap', () => {
  for (const kind of ['flock', 'ofd', 'posix'] as const) {
    for (const sharedPercent of [0, 40]) {
      const label = sharedPercent === 0 ? 'exclusive' : 'mixed shared/exclusive';
      it(`${kind}, ${label}: no lost update, no torn line, prompt handover, no leak`, async () => {
        const { stats, violations } = await run({ kind, sharedPercent, workers: 6, iterations: 40, kills: 8 });
        console.log(`chaos ${kind} ${label}: ${JSON.stringify(stats)}`);
        expect(violations).toEqual([]);
        expect(stats.kills).toBeGreaterThanOrEqual(8);
        expect(stats.completed).toBeGreaterThan(100);
        expect(stats.survivorsChecked).toBeGreaterThanOrEqual(6);
        if (sharedPercent > 0) expect(stats.readerChecks).toBeGreaterThan(20);
      });
    }
  }

  it('the checker itself catches overlapping writers (negative control: workers that take no lock)', async () => {
    const { violations } = await run({ kind: 'none', sharedPercent: 0, workers: 6, iterations: 30, kills: 0 });
    expect(violations.some((v) => v.startsWith('lost update'))).toBe(true);
    expect(violations.some((v) => v.startsWith('torn or interleaved line'))).toBe(true);
  });
});

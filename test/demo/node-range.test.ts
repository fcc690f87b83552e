// The harness's check that its Node suits a runtime (engines.node).
import { describe, expect, it } from 'vitest';
import { satisfiesNodeRange } from '../../src/demo/runtime/node-range.js';

describe('satisfiesNodeRange', () => {
  it('reads the ranges the runtimes publish', () => {
    // openclaw 2026.4.24
    expect(satisfiesNodeRange('24.22.3', '>=22.14.0')).toBe(true);
    expect(satisfiesNodeRange('22.13.9', '>=22.14.0')).toBe(false);
    // openclaw 2026.9.6
    const range = '>=24.16.0 <25 || >=26.1.0';
    expect(satisfiesNodeRange('24.22.3', range)).toBe(true);
    expect(satisfiesNodeRange('24.15.0', range)).toBe(false);
    expect(satisfiesNodeRange('25.0.0', range)).toBe(false);
    expect(satisfiesNodeRange('26.0.9', range)).toBe(false);
    expect(satisfiesNodeRange('26.1.0', range)).toBe(true);
    // openclaw 2026.8.1
    expect(satisfiesNodeRange('24.22.3', '>=22.22.3 <23 || >=24.15.0 <25 || >=25.9.0')).toBe(true);
    expect(satisfiesNodeRange('23.1.0', '>=22.22.3 <23 || >=24.15.0 <25 || >=25.9.0')).toBe(false);
  });

  it('partial versions, spaces after operators, exact versions, no range', () => {
    expect(satisfiesNodeRange('24.0.0', '>= 24')).toBe(true);
    expect(satisfiesNodeRange('24.22.3', '24.22.3')).toBe(true);
    expect(satisfiesNodeRange('24.22.3', '=24.22.2')).toBe(false);
    expect(satisfiesNodeRange('20.0.0', '*')).toBe(true);
    expect(satisfiesNodeRange('20.0.0', '')).toBe(true);
  });

  it('refuses forms it does not read, instead of guessing', () => {
    expect(() => satisfiesNodeRange('24.22.3', '^24.16.0')).toThrow(/cannot read version "\^24\.16\.0"/);
    expect(() => satisfiesNodeRange('24.22.3', '22 - 24')).toThrow(/cannot read version "-"/);
  });
});

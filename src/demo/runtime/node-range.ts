// Whether a Node version satisfies a package's `engines.node`, for the
// forms runtimes publish (`>=22.14.0`, `>=24.16.0 <25 || >=26.1.0`): sets
// joined by `||`, each a list of comparators (`>=`, `>`, `<=`, `<`, `=` or
// none) on versions whose missing parts count as 0. Anything else (caret,
// tilde, hyphen ranges, prereleases) is refused with an error rather than
// guessed at: a wrong "yes" would run a runtime on a Node it does not support.

type Version = readonly [number, number, number];

function parseVersion(text: string, range: string): Version {
  const match = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(text);
  if (match === null)
    throw new Error(`engines.node ${JSON.stringify(range)}: cannot read version ${JSON.stringify(text)}`);
  return [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0)];
}

function compare(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

const TESTS: Readonly<Record<string, (order: number) => boolean>> = {
  '>=': (order) => order >= 0,
  '>': (order) => order > 0,
  '<=': (order) => order <= 0,
  '<': (order) => order < 0,
  '=': (order) => order === 0,
  '': (order) => order === 0,
};

/** Whether `version` (e.g. `24.22.3`) satisfies `range`; throws on a range form it does not read. */
export function satisfiesNodeRange(version: string, range: string): boolean {
  const have = parseVersion(version, version);
  const trimmed = range.trim();
  if (trimmed === '' || trimmed === '*') return true;
  // Every comparator is read before any is tested, so an unreadable one always throws.
  const sets = trimmed.split('||').map((set) =>
    set
      .trim()
      .replace(/(>=|<=|>|<|=)\s+/g, '$1')
      .split(/\s+/)
      .map((comparator) => {
        const match = /^(>=|<=|>|<|=)?(.*)$/.exec(comparator)!;
        return { test: TESTS[match[1] ?? '']!, version: parseVersion(match[2]!, range) };
      }),
  );
  return sets.some((set) => set.every(({ test, version: wanted }) => test(compare(have, wanted))));
}

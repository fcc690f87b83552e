// The shape of the code (BRIEF: "arrows pointing down"): src/native/ loads
// the addon, src/proc/ reads /proc, src/lock/ is the kernel lock, src/inspect/ says who holds it, and
// everything else (engines, adapters, the CLI, the demo) sits on top. A
// lower layer never imports a higher one, type imports and re-exports
// included: a timeout error names its holder from proc/ and lock/ alone.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from '../helpers.js';

const src = path.join(root, 'src');
/** Rank of each folder; anything not listed is on top. */
const RANK: Record<string, number> = { native: 0, proc: 1, lock: 2, inspect: 3 };
const TOP = 4;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

function layerOf(file: string): { name: string; rank: number } {
  const relative = path.relative(src, file).split(path.sep);
  const name = relative.length > 1 ? relative[0]! : '(root)';
  return { name, rank: RANK[name] ?? TOP };
}

/** Every module specifier a file imports or re-exports, static or dynamic, type-only or not. */
function specifiers(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/\b(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g)) found.push(match[1]!);
  for (const match of text.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(match[1]!);
  for (const match of text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) found.push(match[1]!);
  return found;
}

describe('layers', () => {
  it('the scanner sees type imports, re-exports and dynamic imports', () => {
    expect(
      specifiers(
        "import type { A } from '../inspect/types.js';\nexport { b } from './b.js';\nconst c = await import('../demo/main.js');\nimport {\n  d,\n  type E,\n} from '../x/d.js';",
      ),
    ).toEqual(['../inspect/types.js', './b.js', '../x/d.js', '../demo/main.js']);
  });

  it('no module of src/native, src/proc, src/lock or src/inspect imports a higher layer', () => {
    const upward: string[] = [];
    const files = sources(src);
    expect(files.length).toBeGreaterThan(20);
    for (const file of files) {
      const from = layerOf(file);
      for (const specifier of specifiers(readFileSync(file, 'utf8'))) {
        if (!specifier.startsWith('.')) continue;
        const to = layerOf(path.resolve(path.dirname(file), specifier));
        if (to.rank > from.rank)
          upward.push(`${path.relative(root, file)} -> ${specifier} (${from.name} -> ${to.name})`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('src/session knows lock engines only through src/lock/engine.ts, never src/pg (the caller passes a PgLocks in)', () => {
    const found: string[] = [];
    for (const file of sources(path.join(src, 'session'))) {
      for (const specifier of specifiers(readFileSync(file, 'utf8'))) {
        const target = path.resolve(path.dirname(file), specifier);
        if (specifier.startsWith('.') && layerOf(target).name === 'pg')
          found.push(`${path.relative(root, file)} -> ${specifier}`);
        if (specifier === 'pg' || specifier.startsWith('pg/'))
          found.push(`${path.relative(root, file)} -> ${specifier}`);
      }
    }
    expect(found).toEqual([]);
  });
});

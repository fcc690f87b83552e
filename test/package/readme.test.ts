// The README's Quick start as a reader pastes it: it type-checks with
// TypeScript's own `await using` (strict), runs on this Node (TypeScript
// lowers `await using`; Node 20 has Symbol.asyncDispose), and leaves no lock
// held behind it. The last part is checked from another process while the
// example's process still runs: a leaked handle would be released by the
// process's exit and go unnoticed otherwise.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { root, tempDir } from '../helpers.js';

const work = tempDir('kernel-lock-readme-');
const typescript = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
afterAll(work.cleanup);

/** The first ```ts block under the README heading `heading`. */
function example(heading: string): string {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf(`\n## ${heading}\n`));
  const block = /```ts\n([\s\S]*?)```/.exec(section);
  if (!block?.[1]) throw new Error(`README.md: no ts block under "## ${heading}"`);
  return block[1];
}

/** Lock files the example names. */
function lockFiles(code: string): string[] {
  return [...new Set([...code.matchAll(/'([^']+\.lock)'/g)].map((match) => match[1]!))];
}

// Appended to the example: another process tries each lock file while this
// one is still alive; it prints "free" or "held" for each.
const probe = (files: string[]) => `
import { spawnSync as __spawnSync } from 'node:child_process';
const __probe = __spawnSync(process.execPath, ['--input-type=module', '-e', \`
  import { tryLockSync } from 'kernel-lock';
  for (const file of process.argv.slice(1)) {
    const handle = tryLockSync(file);
    console.log(file, handle ? 'free' : 'held');
    handle?.releaseSync();
  }\`, ...${JSON.stringify(files)}], { encoding: 'utf8' });
process.stdout.write(__probe.stdout + __probe.stderr);
`;

describe('README Quick start', () => {
  it('type-checks, runs and releases every lock it takes', () => {
    const code = example('Quick start');
    const files = lockFiles(code);
    expect(files.length).toBeGreaterThan(0);
    const dir = work.dir;
    mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
    symlinkSync(root, path.join(dir, 'node_modules', 'kernel-lock'));
    mkdirSync(path.join(dir, 'sessions'));
    writeFileSync(path.join(dir, 'quickstart.mts'), `${code}\n${probe(files)}`);
    const compilerOptions = {
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'ES2022',
      lib: ['ES2022', 'ESNext.Disposable'],
      strict: true,
      skipLibCheck: false,
      types: ['node'],
      typeRoots: [path.join(root, 'node_modules', '@types')],
    };
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['quickstart.mts'] }));

    const tsc = spawnSync(process.execPath, [typescript, '-p', 'tsconfig.json'], { cwd: dir, encoding: 'utf8' });
    expect(tsc.status, `${tsc.stdout}${tsc.stderr}`).toBe(0);
    const run = spawnSync(process.execPath, ['quickstart.mjs'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
    expect(run.stdout.trim().split('\n').sort()).toEqual(files.map((file) => `${file} free`).sort());
  }, 60_000);
});

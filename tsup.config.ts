import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { defineConfig } from 'tsup';

// The library is compiled ONCE, as CommonJS, and the ESM entry points are
// one-line facades that re-export it. WHY: kernel-lock keeps per-process state
// (the posix one-descriptor-per-inode table, the held-locks table, the result
// buffer registered with the addon). Two separate ESM and CJS bundles would
// give a process that both imports and requires the package two copies of
// that state: the second copy replaces the first's result buffer and each
// copy believes it alone holds the process's POSIX locks, so closing one
// copy's descriptor silently drops the other's lock. With facades there is
// exactly one copy, whichever way the package is loaded (test/package.test.ts
// checks `import` and `require` see the same classes).
const libraryEntries = {
  index: 'src/index.ts',
  session: 'src/session/index.ts',
  'fs-safe': 'src/openclaw/fs-safe/index.ts',
  openclaw: 'src/openclaw/index.ts',
  pg: 'src/pg/index.ts',
};

// The facade names each export (read off the `exports.name = ` lines esbuild
// writes) rather than `export *`, which would also export CommonJS's
// `__esModule` marker; a name the CommonJS module lost fails at import.
async function writeEsmFacades(): Promise<void> {
  for (const name of Object.keys(libraryEntries)) {
    const commonJs = await readFile(`dist/${name}.cjs`, 'utf8');
    const names = new Set([...commonJs.matchAll(/\bexports\.([A-Za-z_$][\w$]*) =/g)].map((match) => match[1]));
    names.delete('__esModule');
    const list = [...names].sort().join(', ');
    await writeFile(`dist/${name}.js`, `export { ${list} } from './${name}.cjs';\n`);
    await writeFile(`dist/${name}.d.ts`, `export * from './${name}.cjs';\n`);
  }
}

// Shipped source maps carry positions only: no embedded sources (src/ is not
// in the package, yet stack traces still map to src/<file>:<line>) and no
// absolute path of the machine that built them. Each build trims the maps
// of its own outputs (`suffix` in `dir`), so no two builds rewrite one file.
async function trimSourceMaps(suffix: string, dir = 'dist'): Promise<void> {
  const dist = path.resolve(dir);
  for (const name of await readdir(dist)) {
    if (!name.endsWith(suffix)) continue;
    const file = path.join(dist, name);
    const map = JSON.parse(await readFile(file, 'utf8')) as { sources: string[]; sourcesContent?: unknown };
    delete map.sourcesContent;
    map.sources = map.sources.map((source) => (path.isAbsolute(source) ? path.relative(dist, source) : source));
    await writeFile(file, JSON.stringify(map));
  }
}

export default defineConfig([
  {
    entry: libraryEntries,
    format: ['cjs'],
    target: 'node20',
    platform: 'node',
    dts: true,
    sourcemap: true,
    clean: false, // tests spawn children that import dist/ while it is rebuilt
    shims: true, // import.meta.url in src/native/binding.ts
    splitting: true, // index and session share one copy of the state
    outDir: 'dist',
    onSuccess: async () => {
      await writeEsmFacades();
      await trimSourceMaps('.cjs.map');
    },
  },
  {
    // The `--import` hook (kernel-lock/openclaw/register) and the hooks file
    // module.register() loads by URL on older Nodes. ESM, as `--import` and
    // module.register() need, and holding no lock state: what they serve the
    // runtime imports the library entry dist/openclaw.js, so the process has
    // one copy of the state. No splitting: each file finds dist/openclaw.js
    // relative to its own URL, so its code must live in dist/openclaw/.
    entry: { 'openclaw/register': 'src/openclaw/register.ts', 'openclaw/hooks': 'src/openclaw/hooks.ts' },
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    sourcemap: true,
    splitting: false,
    clean: false,
    outDir: 'dist',
    onSuccess: () => trimSourceMaps('.js.map', 'dist/openclaw'),
  },
  {
    // The CLI runs in its own process, so its own bundled copy is harmless.
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    sourcemap: true,
    clean: false,
    outDir: 'dist',
    onSuccess: () => trimSourceMaps('.js.map'),
  },
]);

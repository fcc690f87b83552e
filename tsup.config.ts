import { defineConfig } from 'tsup';

// One bundle per public entry, in both module formats, so `import` and
// `require` consumers each get a single module with its own declarations.
export default defineConfig({
  entry: { index: 'src/index.ts', session: 'src/session/index.ts', cli: 'src/cli/main.ts' },
  format: ['esm', 'cjs'],
  target: 'node20',
  platform: 'node',
  dts: { entry: { index: 'src/index.ts', session: 'src/session/index.ts' } },
  sourcemap: true,
  clean: false, // tests spawn children that import dist/ while it is rebuilt
  shims: true,
  splitting: true,
  outDir: 'dist',
});

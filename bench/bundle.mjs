// Bundles part of a checkout's src/ with esbuild, for benches that measure
// internal layers or two builds side by side (bench/hot-path.mjs, bench/ab.mjs).
// The bundle goes to node_modules/.cache, where the linter does not look, and
// its addon loader is pointed at the checkout's package root (its own
// build/Release), wherever the bundle itself sits.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bundleDir = path.join(root, 'node_modules', '.cache', 'kernel-lock-bench');
const require = createRequire(import.meta.url);

/** Bundles the TypeScript `source` (re-exports from `checkout`'s src/) as `name` and imports it. */
export async function importBundled(source, name, checkout = root) {
  fs.mkdirSync(bundleDir, { recursive: true });
  const entry = path.join(bundleDir, `${name}-entry.ts`);
  fs.writeFileSync(entry, source);
  const bundle = path.join(bundleDir, `${name}-bundle.mjs`);
  require('esbuild').buildSync({
    entryPoints: [entry],
    outfile: bundle,
    bundle: true,
    format: 'esm',
    platform: 'node',
    logLevel: 'error',
    banner: { js: `import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);` },
    define: { 'import.meta.url': JSON.stringify(pathToFileURL(path.join(checkout, 'dist', 'x.js')).href) },
  });
  return import(pathToFileURL(bundle).href);
}

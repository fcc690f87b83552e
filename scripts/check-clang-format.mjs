#!/usr/bin/env node
// Checks (or with --fix, applies) clang-format on the C++ sources, using the
// binary shipped in the clang-format npm package so CI needs no system package.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const binary = path.join(
  path.dirname(require.resolve('clang-format/package.json')),
  'bin',
  'linux_x64',
  'clang-format',
);
const dirs = ['native', 'bench', 'scripts'];
const files = dirs.flatMap((dir) => {
  try {
    return readdirSync(path.join(root, dir), { recursive: true })
      .map(String)
      .filter((name) => /\.(cc|h|c)$/.test(name) && !name.includes('node_modules'))
      .map((name) => path.join(root, dir, name));
  } catch {
    return [];
  }
});
const fix = process.argv.includes('--fix');
const args = fix ? ['-i', '--style=file', ...files] : ['--dry-run', '--Werror', '--style=file', ...files];
try {
  execFileSync(binary, args, { stdio: 'inherit', cwd: root });
  console.log(`clang-format: ${files.length} files ${fix ? 'formatted' : 'clean'}`);
} catch {
  console.error('clang-format: run `npm run format` to fix the files above');
  process.exit(1);
}

// A package directory as `npm pack` would ship it (package.json, dist/, the
// four prebuilt binaries), built by the same script prepack runs. The first
// build on a machine downloads zig and compiles its C++ runtime for four
// targets (minutes); later builds hit zig's cache (seconds).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { root } from '../helpers.js';

/** Generous bound for a cold first build on a loaded 2-core machine. */
export const COLD_BUILD_MS = 30 * 60_000;

export const script = (name: string): string => path.join(root, 'scripts', name);

/** Runs one of scripts/ with this Node; returns status and output. */
export function runScript(name: string, args: string[], timeout = COLD_BUILD_MS) {
  const result = spawnSync(process.execPath, [script(name), ...args], { encoding: 'utf8', timeout });
  return { status: result.status, stdout: result.stdout, output: `${result.stdout}${result.stderr}` };
}

/**
 * Builds a packed-package look-alike into `dir` and returns it. The binaries
 * come from the run's one build (test/global-setup.ts) when it made them,
 * else they are built here.
 */
export function buildPackage(dir: string): string {
  if (!existsSync(path.join(root, 'dist', 'index.cjs'))) {
    throw new Error('dist/ is missing: run `npm run build:ts` (npm test does it first)');
  }
  mkdirSync(dir, { recursive: true });
  cpSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  cpSync(path.join(root, 'dist'), path.join(dir, 'dist'), { recursive: true });
  const shared = process.env.KERNEL_LOCK_TEST_PREBUILT;
  if (shared !== undefined && existsSync(path.join(shared, 'prebuilds'))) {
    cpSync(path.join(shared, 'prebuilds'), path.join(dir, 'prebuilds'), { recursive: true });
    return dir;
  }
  const built = runScript('build-prebuilds.mjs', ['--out', dir]);
  if (built.status !== 0) throw new Error(`scripts/build-prebuilds.mjs failed:\n${built.output}`);
  return dir;
}

/** The prebuilds' zig (scripts/prebuild/zig.mjs), fetched into the cache if needed. */
export function zigToolchain(): { bin: string; env: NodeJS.ProcessEnv } {
  const program = 'console.log(JSON.stringify((await import(process.argv[1])).zig()))';
  const found = spawnSync(process.execPath, ['--input-type=module', '-e', program, script('prebuild/zig.mjs')], {
    encoding: 'utf8',
    timeout: COLD_BUILD_MS,
  });
  if (found.status !== 0) throw new Error(`no zig: ${found.stderr}`);
  return JSON.parse(found.stdout) as { bin: string; env: NodeJS.ProcessEnv };
}

/** Compiles C `source` into a shared object for a zig `target` that exports only the N-API entry points. */
export function buildSharedObject(source: string, target: string, output: string, flags: string[] = []): string {
  const exportsMap = `${output}.map`;
  writeFileSync(exportsMap, '{ global: napi_register_module_v1; node_api_module_get_api_version_v1; local: *; };\n');
  const zig = zigToolchain();
  const args = ['cc', '-target', target, '-shared', '-fPIC', '-O2', `-Wl,--version-script=${exportsMap}`, ...flags];
  const built = spawnSync(zig.bin, [...args, source, '-o', output], {
    env: zig.env,
    encoding: 'utf8',
    timeout: COLD_BUILD_MS,
  });
  if (built.status !== 0) throw new Error(`zig cc ${target} failed:\n${built.stderr}`);
  return output;
}

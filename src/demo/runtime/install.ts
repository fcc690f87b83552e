// The published runtime, installed from the npm registry into a cache
// folder outside the repository: `openclaw@<version>` with --ignore-scripts,
// and a Node it supports (the registry package node-linux-<arch>, which
// ships bin/node), because the runtime needs Node ≥ 22.14. A warm cache is
// reused as it is; a cold one is installed into a fresh directory and
// renamed into place, under a kernel lock so that two runs (the e2e suite
// and the demo) never install into the same place at once.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { withLock } from '../../lock/acquire.js';

/** The Node the runtime runs on (exact version: reproducible runs). */
export const RUNTIME_NODE_VERSION = '24.22.3';

/**
 * The bundled plugins the runtime is left to discover (its own
 * OPENCLAW_BUNDLED_PLUGINS_DIR knob): the agent command needs speech-core
 * only, and discovering all 111 costs ~25 s of CPU per invocation, which
 * none of the lock's behaviour depends on. The runtime's code is untouched.
 */
export const RUNTIME_PLUGINS = ['speech-core'] as const;
const PLUGINS_DIR = 'extensions-kernel-lock';

/** A runtime ready to run. */
export interface InstalledRuntime {
  spec: string;
  /** Root of the install (node_modules/ inside). */
  dir: string;
  /** The runtime's entry script (openclaw.mjs). */
  entry: string;
  /** The package directory of the runtime. */
  packageDir: string;
  /** The Node binary to run it with. */
  node: string;
  /** The bundled-plugins directory to pass as OPENCLAW_BUNDLED_PLUGINS_DIR. */
  pluginsDir: string;
  /** Whether this call installed it (false: it was in the cache). */
  installed: boolean;
  /** Seconds the install took (0 when cached). */
  installSeconds: number;
}

/** The cache folder: $KERNEL_LOCK_RUNTIME_CACHE, else $XDG_CACHE_HOME/kernel-lock/runtime, else ~/.cache/kernel-lock/runtime. */
export function runtimeCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KERNEL_LOCK_RUNTIME_CACHE) return path.resolve(env.KERNEL_LOCK_RUNTIME_CACHE);
  return path.join(env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'kernel-lock', 'runtime');
}

const SPEC = /^openclaw@(\d+\.\d+\.\d+(?:-[\w.]+)?)$/;

/** Checks `openclaw@<version>` (an exact version: the hook knows builds, not ranges). */
export function parseRuntimeSpec(spec: string): string {
  const match = SPEC.exec(spec);
  if (match === null)
    throw new Error(`--runtime must be openclaw@<exact version>, e.g. openclaw@2026.4.24; got ${JSON.stringify(spec)}`);
  return spec;
}

function nodePackage(): string {
  if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) {
    throw new Error(
      `the real runtime is run here on Linux x64 or arm64 only (pid namespaces, /proc); this is ${process.platform}-${process.arch}`,
    );
  }
  return `node-linux-${process.arch}`;
}

/**
 * npm's environment: this one, less what an enclosing `npm run` adds about
 * *this* project (its prefix, package and lifecycle), which would redirect
 * the install here. Settings such as npm_config_registry or npm_config_cache
 * pass through.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const project = /^(npm_(lifecycle|package)_|npm_config_(local_)?prefix$|npm_command$|INIT_CWD$)/i;
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !project.test(name)));
}

function run(command: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: npmEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? code}): ${stderr.trim()}`));
    });
  });
}

function layout(spec: string, dir: string, installed: boolean, installSeconds: number): InstalledRuntime {
  const packageDir = path.join(dir, 'node_modules', 'openclaw');
  return {
    spec,
    dir,
    entry: path.join(packageDir, 'openclaw.mjs'),
    packageDir,
    node: path.join(dir, 'node_modules', nodePackage(), 'bin', 'node'),
    pluginsDir: path.join(packageDir, 'dist', PLUGINS_DIR),
    installed,
    installSeconds,
  };
}

const STAMP = '.kernel-lock-install.json';

/** Installs `spec` (and Node) into the cache unless it is there; resolves with where it is. */
export async function ensureRuntime(
  spec: string,
  options: { cacheDir?: string; log?: (line: string) => void } = {},
): Promise<InstalledRuntime> {
  parseRuntimeSpec(spec);
  const cache = options.cacheDir ?? runtimeCacheDir();
  mkdirSync(cache, { recursive: true });
  const dir = path.join(cache, `${spec}-node${RUNTIME_NODE_VERSION}`);
  const stamp = path.join(dir, STAMP);
  if (existsSync(stamp)) return layout(spec, dir, false, 0);
  return withLock(path.join(cache, '.install.lock'), async () => {
    if (existsSync(stamp)) return layout(spec, dir, false, 0);
    const started = performance.now();
    const partial = `${dir}.partial-${process.pid}`;
    rmSync(partial, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true }); // an install interrupted before its stamp
    mkdirSync(partial, { recursive: true });
    writeFileSync(path.join(partial, 'package.json'), `${JSON.stringify({ private: true }, null, 2)}\n`);
    const packages = [spec, `${nodePackage()}@${RUNTIME_NODE_VERSION}`];
    options.log?.(`installing ${packages.join(' and ')} from the npm registry into ${dir} …`);
    try {
      await run(
        'npm',
        ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', ...packages],
        partial,
      );
      const runtime = layout(spec, partial, true, 0);
      for (const plugin of RUNTIME_PLUGINS) {
        cpSync(path.join(runtime.packageDir, 'dist', 'extensions', plugin), path.join(runtime.pluginsDir, plugin), {
          recursive: true,
        });
      }
      renameSync(partial, dir);
    } catch (error) {
      rmSync(partial, { recursive: true, force: true });
      throw error;
    }
    const installSeconds = (performance.now() - started) / 1000;
    writeFileSync(stamp, `${JSON.stringify({ spec, node: RUNTIME_NODE_VERSION, installSeconds }, null, 2)}\n`);
    return layout(spec, dir, true, installSeconds);
  });
}

/** The version a runtime install reports in its package.json. */
export function installedVersion(runtime: InstalledRuntime): string {
  return (JSON.parse(readFileSync(path.join(runtime.packageDir, 'package.json'), 'utf8')) as { version: string })
    .version;
}

// The published runtime, installed from the npm registry into a cache
// folder outside the repository: `openclaw@<version>` with --ignore-scripts,
// and a Node it supports (the registry package node-linux-<arch>, which
// ships bin/node), because the runtime needs a newer Node than kernel-lock.
// Each runtime version gets its own folder; the Node install is one folder
// of its own, shared by every runtime whose `engines.node` it satisfies
// (2026.4.24 wants ≥ 22.14, 2026.9.6 wants >=24.16.0 <25 || >=26.1.0).
// A warm cache is reused as it is; a cold one is installed into a fresh
// directory and renamed into place, under a kernel lock per folder so that
// two runs (the e2e suite's files, the demo) never install into the same
// place at once, while different folders install side by side.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { withLock } from '../../lock/acquire.js';
import { satisfiesNodeRange } from './node-range.js';

/** The Node the runtimes run on (exact version: reproducible runs). */
export const RUNTIME_NODE_VERSION = '24.22.3';

/**
 * The bundled plugins a runtime is left to discover (its own
 * OPENCLAW_BUNDLED_PLUGINS_DIR knob), by runtime: 2026.4.24's agent command
 * needs speech-core only, and discovering all 111 costs ~25 s of CPU per
 * invocation, which none of the lock's behaviour depends on; 2026.9.6's
 * `config set` and `agent --local` need none of its 64. The runtime's code
 * is untouched. A runtime not listed discovers all of its own.
 */
export const RUNTIME_PLUGINS: Readonly<Record<string, readonly string[]>> = {
  'openclaw@2026.4.24': ['speech-core'],
  'openclaw@2026.9.6': [],
};
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
  /** The Node binary to run it with (shared by the runtimes of this cache). */
  node: string;
  /** The bundled-plugins directory to pass as OPENCLAW_BUNDLED_PLUGINS_DIR; null: the runtime's own. */
  pluginsDir: string | null;
  /** Whether this call installed it (false: it was in the cache). */
  installed: boolean;
  /** Seconds the installs of this call took (runtime and, if it was missing, Node; 0 when cached). */
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

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = npmEnv()): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
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

const STAMP = '.kernel-lock-install.json';

/**
 * `packages` installed into `<cache>/<name>` unless its stamp is there;
 * `prepare` runs on the fresh install before it is renamed into place, and
 * `settle` once it is in place, before the stamp says it is ready.
 * Resolves with the seconds it took (0: cached).
 */
async function ensureInstalled(
  cache: string,
  name: string,
  packages: readonly string[],
  log: ((line: string) => void) | undefined,
  prepare: (dir: string) => void = () => {},
  settle: (dir: string) => Promise<void> = async () => {},
): Promise<number> {
  const dir = path.join(cache, name);
  const stamp = path.join(dir, STAMP);
  if (existsSync(stamp)) return 0;
  mkdirSync(cache, { recursive: true });
  return withLock(path.join(cache, `.install-${name}.lock`), async () => {
    if (existsSync(stamp)) return 0;
    const started = performance.now();
    const partial = `${dir}.partial-${process.pid}`;
    rmSync(partial, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true }); // an install interrupted before its stamp
    mkdirSync(partial, { recursive: true });
    writeFileSync(path.join(partial, 'package.json'), `${JSON.stringify({ private: true }, null, 2)}\n`);
    log?.(`installing ${packages.join(' and ')} from the npm registry into ${dir} …`);
    try {
      await run(
        'npm',
        ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', ...packages],
        partial,
      );
      prepare(partial);
      renameSync(partial, dir);
      await settle(dir);
    } catch (error) {
      rmSync(partial, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    const installSeconds = (performance.now() - started) / 1000;
    writeFileSync(stamp, `${JSON.stringify({ packages, installSeconds }, null, 2)}\n`);
    return installSeconds;
  });
}

/**
 * Installed with --ignore-scripts, runtimes from 2026.9 leave their package
 * lifecycle (the postinstall) pending, and their first start completes it
 * under the runtime's package-lifecycle lock. Run alone here once: a
 * lifecycle is not something for the suite's concurrent, SIGKILLed runs to
 * race on (a killed owner leaves the package refusing to start, by design).
 */
async function settleLifecycle(node: string, packageDir: string): Promise<void> {
  const pending = path.join(packageDir, '.openclaw-lifecycle-pending');
  if (!existsSync(pending)) return;
  const home = mkdtempSync(path.join(tmpdir(), 'kernel-lock-runtime-settle-'));
  try {
    const env = {
      PATH: `${path.dirname(node)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      HOME: home,
      OPENCLAW_STATE_DIR: home,
    };
    await run(node, [path.join(packageDir, 'openclaw.mjs'), '--version'], home, env);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
  if (existsSync(pending))
    throw new Error(`${packageDir}: the runtime's first start left its package lifecycle pending`);
}

/** The `engines.node` range of an installed package ('*' when it has none). */
function enginesNode(packageDir: string): string {
  const manifest = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as {
    engines?: { node?: string };
  };
  return manifest.engines?.node ?? '*';
}

/** Throws unless RUNTIME_NODE_VERSION satisfies the runtime's `engines.node`. */
function assertNodeFits(spec: string, packageDir: string): void {
  const range = enginesNode(packageDir);
  if (!satisfiesNodeRange(RUNTIME_NODE_VERSION, range)) {
    throw new Error(
      `${spec} needs Node ${range}; kernel-lock runs runtimes on Node ${RUNTIME_NODE_VERSION} (RUNTIME_NODE_VERSION in src/demo/runtime/install.ts). ` +
        'Add a Node version that satisfies it there.',
    );
  }
}

/** Installs `spec` and the Node it runs on into the cache unless they are there; resolves with where they are. */
export async function ensureRuntime(
  spec: string,
  options: { cacheDir?: string; log?: (line: string) => void } = {},
): Promise<InstalledRuntime> {
  parseRuntimeSpec(spec);
  const cache = options.cacheDir ?? runtimeCacheDir();
  const nodeName = `${nodePackage()}@${RUNTIME_NODE_VERSION}`;
  const plugins = RUNTIME_PLUGINS[spec];
  const node = path.join(cache, nodeName, 'node_modules', nodePackage(), 'bin', 'node');
  // Node and the runtime install side by side (two npm processes, two folders).
  const nodeInstalled = ensureInstalled(cache, nodeName, [nodeName], options.log);
  const [nodeSeconds, runtimeSeconds] = await Promise.all([
    nodeInstalled,
    ensureInstalled(
      cache,
      spec,
      [spec],
      options.log,
      (dir) => {
        const packageDir = path.join(dir, 'node_modules', 'openclaw');
        if (plugins !== undefined) mkdirSync(path.join(packageDir, 'dist', PLUGINS_DIR), { recursive: true });
        for (const plugin of plugins ?? []) {
          cpSync(
            path.join(packageDir, 'dist', 'extensions', plugin),
            path.join(packageDir, 'dist', PLUGINS_DIR, plugin),
            {
              recursive: true,
            },
          );
        }
      },
      async (dir) => {
        assertNodeFits(spec, path.join(dir, 'node_modules', 'openclaw'));
        await nodeInstalled;
        await settleLifecycle(node, path.join(dir, 'node_modules', 'openclaw'));
      },
    ),
  ]);
  const dir = path.join(cache, spec);
  const packageDir = path.join(dir, 'node_modules', 'openclaw');
  assertNodeFits(spec, packageDir);
  return {
    spec,
    dir,
    entry: path.join(packageDir, 'openclaw.mjs'),
    packageDir,
    node,
    pluginsDir: plugins === undefined ? null : path.join(packageDir, 'dist', PLUGINS_DIR),
    installed: nodeSeconds + runtimeSeconds > 0,
    installSeconds: Math.max(nodeSeconds, runtimeSeconds),
  };
}

/** The version a runtime install reports in its package.json. */
export function installedVersion(runtime: InstalledRuntime): string {
  return (JSON.parse(readFileSync(path.join(runtime.packageDir, 'package.json'), 'utf8')) as { version: string })
    .version;
}

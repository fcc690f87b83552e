// One `openclaw agent` invocation of the real runtime, as the report's
// harness ran it (`openclaw agent --to +17777777710 --message … --timeout 300`),
// in its own process group so that it and everything it starts (the
// runtime respawns itself once) can be ended together; optionally in a new
// pid namespace (another container on the same state directory); with or
// without kernel-lock's `--import` hook.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { inPidNamespace } from '../processes.js';
import type { InstalledRuntime } from './install.js';

/** The session every invocation talks to (the report's recipient). */
export const RECIPIENT = '+17777777710';

/** A state directory the runtime runs in: config, state, home. */
export interface RuntimeHome {
  dir: string;
  stateDir: string;
  sessionsDir: string;
  configPath: string;
  env: NodeJS.ProcessEnv;
}

/**
 * The caller's environment the runtime does not get: its npm, vitest and
 * Node setup, and any runtime or hook settings. Under NODE_ENV=test (which
 * vitest sets) the runtime skips its own gateway lock.
 */
const NOT_INHERITED =
  /^(npm_|OPENCLAW_|NODE_OPTIONS$|NODE_ENV$|NODE_COMPILE_CACHE$|INIT_CWD$|VITEST|KERNEL_LOCK_OPENCLAW)/i;

/** Creates a state directory whose config points the runtime at the mock model. */
export function createHome(
  dir: string,
  runtime: InstalledRuntime,
  options: { modelBaseUrl: string; gatewayPort: number; compileCache: string; kernelLockRoot: string },
): RuntimeHome {
  const stateDir = path.join(dir, 'state');
  const home = path.join(dir, 'home');
  mkdirSync(stateDir, { recursive: true });
  mkdirSync(home, { recursive: true });
  // kernel-lock installed where the runtime is started, as a user would have
  // it: `--import=kernel-lock/openclaw/register` resolves from there.
  mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  symlinkSync(options.kernelLockRoot, path.join(dir, 'node_modules', 'kernel-lock'), 'dir');
  const configPath = path.join(dir, 'openclaw.json');
  const config = {
    models: {
      providers: {
        mock: {
          baseUrl: options.modelBaseUrl,
          apiKey: 'kernel-lock-mock',
          api: 'openai-completions',
          models: [{ id: 'mock-1', name: 'mock model', contextWindow: 32_000, maxTokens: 1_000 }],
        },
      },
    },
    agents: { defaults: { model: { primary: 'mock/mock-1' } } },
  };
  writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !NOT_INHERITED.test(name)));
  return {
    dir,
    stateDir,
    sessionsDir: path.join(stateDir, 'agents', 'main', 'sessions'),
    configPath,
    env: {
      ...inherited,
      HOME: home,
      PATH: `${path.dirname(runtime.node)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      OPENCLAW_STATE_DIR: stateDir,
      OPENCLAW_CONFIG_PATH: configPath,
      ...(runtime.pluginsDir === null ? {} : { OPENCLAW_BUNDLED_PLUGINS_DIR: runtime.pluginsDir }),
      OPENCLAW_PLUGIN_STAGE_DIR: path.join(dir, 'plugin-stage'),
      // Nothing listens there: the CLI's gateway attempt fails and it falls
      // back to the embedded runner, as in the report.
      OPENCLAW_GATEWAY_PORT: String(options.gatewayPort),
      OPENCLAW_DISABLE_BONJOUR: '1',
      NODE_COMPILE_CACHE: options.compileCache,
      NO_COLOR: '1',
      FORCE_COLOR: '0',
    },
  };
}

/** How an invocation ended. */
export interface InvocationOutcome {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** A running invocation. */
export class Invocation {
  readonly child: ChildProcess;
  /** The process group (the first process's pid). */
  readonly pgid: number;
  readonly exited: Promise<InvocationOutcome>;
  stdout = '';
  stderr = '';

  constructor(argv: string[], env: NodeJS.ProcessEnv, cwd: string) {
    const started = performance.now();
    this.child = spawn(argv[0]!, argv.slice(1), { env, cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.pgid = this.child.pid ?? -1;
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.stdout.length < 100_000) this.stdout += chunk;
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.stderr.length < 100_000) this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      const finish = (code: number | null, signal: string | null): void =>
        resolve({
          code,
          signal,
          stdout: this.stdout,
          stderr: this.stderr,
          seconds: (performance.now() - started) / 1000,
        });
      this.child.once('close', finish);
      this.child.once('error', (error) => {
        this.stderr += String(error);
        finish(null, null);
      });
    });
  }

  /** SIGKILLs the whole process group (the invocation, its respawned child, a pid namespace's init). */
  killGroup(): void {
    try {
      process.kill(-this.pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  /**
   * SIGKILLs the first process and every descendant it has now, whatever
   * their process group (the runtime's respawned child has its own), then
   * the process group. A descendant in a pid namespace of its own dies with
   * that namespace's init.
   */
  killTree(): void {
    for (let pass = 0; pass < 2; pass++) {
      for (const pid of [this.pgid, ...descendantsOf(this.pgid)]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    this.killGroup();
  }

  /** SIGKILLs only the first process (the wrapper; its respawned child lives on, like a killed `docker exec` client). */
  killWrapper(): void {
    this.child.kill('SIGKILL');
  }
}

/** Pids of the live descendants of `pid` (from /proc/<pid>/task/<tid>/children), parents before children. */
export function descendantsOf(pid: number): number[] {
  const found: number[] = [];
  const visit = (parent: number): void => {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${parent}/task`);
    } catch {
      return; // gone
    }
    for (const task of tasks) {
      let children = '';
      try {
        children = readFileSync(`/proc/${parent}/task/${task}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const child of children.split(' ').filter((word) => word !== '')) {
        found.push(Number(child));
        visit(Number(child));
      }
    }
  };
  visit(pid);
  return found;
}

/** How to start a runtime command. */
export interface RuntimeCommandOptions {
  /** Through kernel-lock's `--import kernel-lock/openclaw/register` hook. */
  hook: boolean;
  /** In a new pid namespace (another container on the same state directory). */
  pidNamespace: boolean;
  /** More modules to `--import` (after the hook), e.g. a test probe. */
  preloads?: readonly string[];
  /** More environment. */
  env?: NodeJS.ProcessEnv;
}

/** Starts `<node> <script> <args…>` in `home` (the runtime's entry unless `script` is given), in its own process group. */
export function startRuntimeCommand(
  runtime: InstalledRuntime,
  home: RuntimeHome,
  args: readonly string[],
  options: RuntimeCommandOptions & { script?: string },
): Invocation {
  const command = [runtime.node, options.script ?? runtime.entry, ...args];
  const argv = options.pidNamespace ? inPidNamespace(command) : command;
  const imports = [...(options.hook ? ['kernel-lock/openclaw/register'] : []), ...(options.preloads ?? [])];
  const env = { ...home.env, ...options.env };
  if (imports.length > 0) env.NODE_OPTIONS = imports.map((specifier) => `--import=${specifier}`).join(' ');
  return new Invocation(argv, env, home.dir);
}

/** Starts `openclaw agent --to <recipient> --message <message> --timeout 300` in `home`. */
export function startInvocation(
  runtime: InstalledRuntime,
  home: RuntimeHome,
  options: { message: string; hook: boolean; pidNamespace: boolean },
): Invocation {
  return startRuntimeCommand(
    runtime,
    home,
    ['agent', '--to', RECIPIENT, '--message', options.message, '--timeout', '300'],
    options,
  );
}

// `kernel-lock demo`: replays the reported barrage (30 agent invocations on
// one session, one of them sabotaged) in a temporary sessions directory,
// with the legacy marker protocol and with kernel-lock, and prints what
// changed. The hidden modes `--invocation`, `--client` and `--gateway` are
// the child processes it starts (see workers.ts).
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { KNOWN_BUILDS, knownRuntimes, SESSION_WRITE_LOCK_MODULE } from '../openclaw/known-modules.js';
import { BACKENDS, type Backend, type DemoConfig, demoConfig } from './config.js';
import { pidNamespacesAvailable } from './processes.js';
import { kernelLockRowOk, renderReport, rowNote } from './report.js';
import { parseRuntimeSpec } from './runtime/install.js';
import { type RuntimeDemoOptions, runRuntimeDemo } from './runtime/main.js';
import { RUNTIME_SCENARIOS } from './runtime/scenarios.js';
import { type RunRow, runScenario, SCENARIOS, type Scenario } from './scenarios.js';
import { clientMain, gatewayMain, invocationMain } from './workers.js';

const HELP = `Usage: kernel-lock demo [--quick] [--timeout MS] [--json] [--scenarios a,b,c,d,e] [--keep]
       kernel-lock demo --runtime openclaw@2026.4.24 [--followers N] [--json] [--scenarios a,b,c,d] [--keep]

Replays the reported failure: sequential agent invocations on one session,
each taking the session write lock, appending a begin line, working, appending
an end line and releasing; one invocation is sabotaged per scenario:
  (a) SIGKILLed while holding            (b) the same, in another pid namespace
  (c) alive in another pid namespace, writing slowly (the others must wait)
  (d) orphaned: its client is killed, it lives on holding the lock
  (e) a gateway runs turns in-process; one hangs and is abandoned
Each scenario runs with a faithful baseline of the legacy marker lock and
with kernel-lock; the table shows invocations succeeded, overlapping writers,
torn transcript lines, fenced writes refused, seconds lost and the first error.
The kernel-lock rows of (d) and (e) run with fencing on (marked *): every
append goes through the lock's fenced write(), so a turn held past its
maxHoldMs is superseded by the next one and its late writes are refused. That
needs the runtime to route its writes so (its later versions do); the other
rows need no runtime change.

  --quick          CI size: 7 invocations (the 3rd sabotaged), 30 ms turns, 1 s lock timeout
  --timeout MS     lock acquisition timeout (default 2000; 10000 is the real one)
  --json           print the results as JSON on stdout (progress stays on stderr)
  --scenarios LIST run only these scenarios (comma-separated letters)
  --keep           keep the temporary sessions directory

(b) and (c) need \`unshare --pid\` (root or user namespaces); elsewhere they are
skipped with a note, except under CI (CI set), where that is a failure.

  --runtime openclaw@VERSION  replay scenarios (a) to (d) in the real runtime
                   instead of the simulation (a version with a session lock
                   file: 2026.4.24; later ones keep sessions in SQLite):
                   installs the runtime and a Node it supports from the npm
                   registry into ~/.cache/kernel-lock/runtime
                   (KERNEL_LOCK_RUNTIME_CACHE to change it) on first use, answers
                   its model calls with a mock on 127.0.0.1, and runs each scenario
                   with the stock lock and with kernel-lock through
                   --import kernel-lock/openclaw/register (Linux, root or user
                   namespaces; a few minutes). Each holder is followed by
  --followers N    N invocations (default 2).
Exit status: 0 when every kernel-lock row shows no overlapping writer, no torn
line, and full success (in (d) and (e) with fencing on); 1 otherwise; 2 on
usage error.`;

function hidden(argv: string[]): Promise<number> | null {
  const [mode, json] = argv;
  if (json === undefined) return null;
  if (mode === '--invocation') return invocationMain(JSON.parse(json));
  if (mode === '--client') return clientMain(JSON.parse(json));
  if (mode === '--gateway') return gatewayMain(JSON.parse(json));
  return null;
}

interface Progress {
  update(text: string): void;
  done(text: string): void;
}

function progress(): Progress {
  const tty = process.stderr.isTTY === true;
  return {
    update(text) {
      if (tty) process.stderr.write(`\r\u001b[2K${text}`);
    },
    done(text) {
      process.stderr.write(tty ? `\r\u001b[2K${text}\n` : `${text}\n`);
    },
  };
}

type Parsed =
  | { help: true }
  | { help: false; runtime: null; config: DemoConfig; json: boolean; keep: boolean; scenarios: Scenario[] }
  | { help: false; runtime: RuntimeDemoOptions };

/** kernel-lock's package root: dist/ (where this bundle lives) is one level below it. */
function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
}

function parseRuntime(values: {
  runtime: string;
  scenarios?: string;
  followers?: string;
  json?: boolean;
  keep?: boolean;
  quick?: boolean;
  timeout?: string;
}): Parsed {
  if (values.quick || values.timeout !== undefined) {
    throw new Error(
      '--quick and --timeout belong to the simulated demo; the real runtime uses its own 10 s lock timeout',
    );
  }
  const spec = parseRuntimeSpec(values.runtime);
  const sessionRuntimes = knownRuntimes(KNOWN_BUILDS.filter((build) => build.module === SESSION_WRITE_LOCK_MODULE));
  if (!sessionRuntimes.includes(spec)) {
    throw new Error(
      `--runtime ${spec}: the demo replays the session lock's scenarios, and kernel-lock serves the session lock of ${sessionRuntimes.join(', ')} only ` +
        '(from 2026.8 the runtime keeps sessions in SQLite and has no session lock file); npm run e2e runs openclaw 2026.9.6 on its file locks',
    );
  }
  let scenarios = [...RUNTIME_SCENARIOS];
  if (values.scenarios !== undefined) {
    const wanted = values.scenarios.split(',').map((s) => s.trim().toLowerCase());
    const unknown = wanted.filter((w) => !RUNTIME_SCENARIOS.some((s) => s.id === w));
    if (unknown.length > 0) {
      throw new Error(
        `--scenarios: ${unknown.join(', ')} not available with --runtime (use a, b, c, d; (e) needs a long-lived gateway: simulated mode only)`,
      );
    }
    scenarios = RUNTIME_SCENARIOS.filter((s) => wanted.includes(s.id));
  }
  const followers = values.followers === undefined ? 2 : Number(values.followers);
  if (!Number.isSafeInteger(followers) || followers < 1 || followers > 10) {
    throw new Error(`--followers must be a whole number from 1 to 10, got ${values.followers}`);
  }
  return {
    help: false,
    runtime: {
      spec,
      scenarios,
      followers,
      json: values.json === true,
      keep: values.keep === true,
      kernelLockRoot: packageRoot(),
    },
  };
}

function parse(argv: string[]): Parsed {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      timeout: { type: 'string' },
      json: { type: 'boolean', default: false },
      scenarios: { type: 'string' },
      keep: { type: 'boolean', default: false },
      runtime: { type: 'string' },
      followers: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return { help: true };
  if (values.runtime !== undefined) return parseRuntime({ ...values, runtime: values.runtime });
  if (values.followers !== undefined) throw new Error('--followers needs --runtime');
  let timeoutMs: number | undefined;
  if (values.timeout !== undefined) {
    timeoutMs = Number(values.timeout);
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 600_000) {
      throw new Error(`--timeout must be a whole number of milliseconds from 100 to 600000, got ${values.timeout}`);
    }
  }
  let scenarios = [...SCENARIOS];
  if (values.scenarios !== undefined) {
    const wanted = values.scenarios.split(',').map((s) => s.trim().toLowerCase());
    const unknown = wanted.filter((w) => !SCENARIOS.some((s) => s.id === w));
    if (unknown.length > 0) throw new Error(`--scenarios: unknown scenario ${unknown.join(', ')} (use a, b, c, d, e)`);
    scenarios = SCENARIOS.filter((s) => wanted.includes(s.id));
  }
  return {
    help: false,
    runtime: null,
    config: demoConfig({ quick: values.quick === true, timeoutMs }),
    json: values.json === true,
    keep: values.keep === true,
    scenarios,
  };
}

function skippedRow(scenario: Scenario, backend: Backend, config: DemoConfig, why: string): RunRow {
  return {
    scenario: scenario.id,
    title: scenario.title,
    backend,
    expected: config.invocations - (scenario.victimExpected ? 0 : 1),
    succeeded: 0,
    overlappingWriters: 0,
    tornLines: 0,
    secondsLost: 0,
    firstError: null,
    transcript: { lines: 0, tornLines: 0, overlappingWriters: 0, overlaps: [] },
    results: [],
    stderr: [],
    skipped: why,
    wallSeconds: 0,
    fencing: scenario.fencing && backend === 'kernel-lock',
    fencedWritesRefused: 0,
    takeoverMs: null,
  };
}

/** Runs `kernel-lock demo` with its arguments; resolves with the exit code. */
export async function runDemo(argv: string[]): Promise<number> {
  const args = argv[0] === 'demo' ? argv.slice(1) : argv;
  const child = hidden(args);
  if (child !== null) return child;
  let options: ReturnType<typeof parse>;
  try {
    options = parse(args);
  } catch (error) {
    process.stderr.write(`kernel-lock demo: ${(error as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (options.runtime !== null) return runRuntimeDemo(options.runtime);
  const { config, scenarios } = options;
  const root = realpathSync(mkdtempSync(path.join(tmpdir(), 'kernel-lock-demo-')));
  const namespaces = scenarios.some((s) => s.needsPidNamespace) ? pidNamespacesAvailable() : true;
  const inCi = Boolean(process.env.CI);
  const noNamespaces =
    'unshare --pid does not work here (it needs root or unprivileged user namespaces); this scenario places the victim in another pid namespace';
  const status = progress();
  const rows: RunRow[] = [];
  let failed = false;
  const total = scenarios.length * BACKENDS.length;
  const started = performance.now();
  try {
    for (const scenario of scenarios) {
      for (const backend of BACKENDS) {
        const label = `[${rows.length + 1}/${total}] (${scenario.id}) ${scenario.title}, ${backend}`;
        if (scenario.needsPidNamespace && !namespaces) {
          rows.push(skippedRow(scenario, backend, config, inCi ? `FAILED in CI: ${noNamespaces}` : noNamespaces));
          if (inCi) failed = true;
          status.done(`${label}: skipped (no pid namespaces)`);
          continue;
        }
        const onInvocation = (inv: number): void => {
          const elapsed = ((performance.now() - started) / 1000).toFixed(0);
          status.update(`${label}: invocation ${inv}/${config.invocations} (${elapsed}s)`);
        };
        const row = await runScenario(scenario, backend, config, root, onInvocation);
        rows.push(row);
        status.done(
          `${label}: ${row.succeeded}/${row.expected} ok, ${row.overlappingWriters} overlapping, ${row.tornLines} torn (${row.wallSeconds.toFixed(1)}s)`,
        );
      }
    }
  } finally {
    if (!options.keep) rmSync(root, { recursive: true, force: true });
  }
  const kernelOk = rows.every(kernelLockRowOk);
  if (!kernelOk) failed = true;
  const header =
    `kernel-lock demo: ${config.invocations} sequential invocations per run, ${config.workMs} ms turns, ` +
    `lock timeout ${config.timeoutMs} ms${config.quick ? ' (quick mode)' : ''}; sessions in ${root}${options.keep ? '' : ' (removed)'}`;
  if (options.json) {
    const payload = {
      config,
      sessionsDir: root,
      ok: !failed,
      wallSeconds: (performance.now() - started) / 1000,
      rows: rows.map((row) => ({ ...row, note: rowNote(row, config) })),
    };
    process.stdout.write(`${JSON.stringify(payload, null, 2)}\n`);
  } else {
    process.stdout.write(`${renderReport(rows, scenarios, config, header)}\n`);
    if (!kernelOk)
      process.stdout.write('\nFAILED: a kernel-lock row shows an overlap, a torn line or a lost invocation.\n');
  }
  return failed ? 1 : 0;
}

// The demo's child processes, run through the CLI's hidden `demo` modes so
// that nothing but the installed package is needed:
//   --invocation <spec>  one agent invocation (one turn), like `openclaw agent`;
//   --client <spec>      a client that runs an invocation and relays it, like
//                        `docker exec` (killing it leaves the invocation running);
//   --gateway <spec>     a long-lived process running every turn in-process.
// Each prints `holding <pid>` once its turn holds the lock and `result <json>`
// per finished turn on stdout.
import { spawn } from 'node:child_process';
import type { DemoConfig } from './config.js';
import { runTurn, type TurnResult, type TurnSpec } from './turn.js';

/** The command that re-enters the demo in a child: this Node, this entry script. */
export function selfCommand(mode: string, payload: unknown): string[] {
  const entry = process.env.KERNEL_LOCK_DEMO_ENTRY ?? process.argv[1];
  if (entry === undefined) throw new Error('kernel-lock demo: cannot tell which script to re-run for child processes');
  return [process.execPath, ...process.execArgv, entry, 'demo', mode, JSON.stringify(payload)];
}

function emit(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** `--invocation`: one turn in this process. Exit 0 when it succeeded. */
export async function invocationMain(spec: TurnSpec & { holdMs?: number }): Promise<number> {
  // Our client may be killed while we run (scenario d); output then has no
  // reader, and that must not kill us: the orphan lives on.
  process.stdout.on('error', () => {});
  const hold = spec.holdMs === undefined ? undefined : () => new Promise<void>((r) => setTimeout(r, spec.holdMs));
  // A slow writer finishes when its driver writes a line to its stdin.
  const streamUntil = spec.slowLines
    ? new Promise<void>((resolve) => {
        process.stdin.once('data', () => resolve());
        process.stdin.once('end', () => resolve());
      })
    : undefined;
  const result = await runTurn(spec, {
    onAcquiring: () => emit(`acquiring ${process.pid}`),
    onHolding: () => emit(`holding ${process.pid}`),
    ...(hold ? { hold } : {}),
    ...(streamUntil ? { streamUntil } : {}),
  });
  process.stdin.destroy();
  emit(`result ${JSON.stringify(result)}`);
  return result.ok ? 0 : 1;
}

/** `--client`: runs an invocation as its child and relays its exit status. */
export async function clientMain(spec: TurnSpec & { holdMs?: number }): Promise<number> {
  const [command, ...args] = selfCommand('--invocation', spec);
  const child = spawn(command!, args, { stdio: 'inherit' });
  emit(`spawned ${child.pid}`);
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
}

/** `--gateway`: every turn in-process, sequentially; the victim's run hangs and is abandoned at the run timeout. */
export async function gatewayMain(spec: {
  backend: TurnSpec['backend'];
  sessionFile: string;
  config: DemoConfig;
  /** Every run appends through lock.write() and may be superseded past maxHoldMs (kernel-lock). */
  fencing?: boolean;
}): Promise<number> {
  const { config } = spec;
  let hung: Promise<TurnResult> | undefined;
  for (let inv = 1; inv <= config.invocations; inv++) {
    const turn: TurnSpec = {
      inv,
      backend: spec.backend,
      sessionFile: spec.sessionFile,
      timeoutMs: config.timeoutMs,
      workMs: config.workMs,
      maxHoldMs: config.maxHoldMs,
      legacyWatchdogIntervalMs: config.legacyWatchdogIntervalMs,
      allowReentrant: false,
      ...(spec.fencing ? { fencing: true } : {}),
    };
    const isVictim = inv === config.victim;
    // The hung run: its model call returns only long after the gateway gave up on it.
    const hold = isVictim ? () => new Promise<void>((r) => setTimeout(r, config.hangWakeMs)) : undefined;
    const running = runTurn(turn, hold ? { hold } : {});
    if (isVictim) hung = running;
    let timer: NodeJS.Timeout | undefined;
    const abandoned = new Promise<null>((r) => {
      timer = setTimeout(() => r(null), config.runTimeoutMs);
    });
    const result = await Promise.race([running, abandoned]);
    clearTimeout(timer);
    emit(
      `result ${JSON.stringify(result ?? { inv, ok: false, waitedMs: 0, abandoned: true, error: `run abandoned after ${config.runTimeoutMs}ms (run timeout)` })}`,
    );
  }
  if (hung) emit(`late ${JSON.stringify(await hung)}`);
  return 0;
}

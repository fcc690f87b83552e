#!/usr/bin/env node
// The `kernel-lock` command: dispatches to status, run, sweep and demo.
// Every failure ends as one line on stderr and an exit status; a usage
// error (2) also points at the command's --help.
import { printable } from '../inspect/format.js';
import { runCommand } from './run.js';
import { statusCommand } from './status.js';
import { sweepCommand } from './sweep.js';
import { EXIT_USAGE, HELP, UsageError, version } from './usage.js';

type Command = (argv: string[]) => Promise<number>;

// --pg (before any `--`) selects the PostgreSQL engine: src/cli/pg.ts, loaded only then.
const pgCommand =
  (kernel: Command, name: 'statusPgCommand' | 'runPgCommand'): Command =>
  async (argv) => {
    const end = argv.indexOf('--');
    const ours = end === -1 ? argv : argv.slice(0, end);
    if (!ours.some((a) => a === '--pg' || a.startsWith('--pg='))) return kernel(argv);
    return (await import('./pg.js'))[name](argv);
  };

const COMMANDS: Record<string, Command> = {
  status: pgCommand(statusCommand, 'statusPgCommand'),
  run: pgCommand(runCommand, 'runPgCommand'),
  sweep: sweepCommand,
  demo: async (argv) => {
    const { runDemo } = await import('../demo/main.js');
    return runDemo(argv);
  },
};

function wantsHelp(argv: readonly string[]): boolean {
  // For run, only options before `--` are ours; the command's own --help is not.
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** Runs the CLI with `argv` (without node and the script); resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' && rest[0] !== undefined && HELP[rest[0]] !== undefined ? rest[0] : 'main';
    process.stdout.write(HELP[topic]!);
    return name === undefined ? EXIT_USAGE : 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  try {
    if (command === undefined) throw new UsageError(`unknown command ${JSON.stringify(printable(name, 40))}`);
    if (name !== 'demo' && wantsHelp(rest)) {
      process.stdout.write(HELP[name]!);
      return 0;
    }
    return await command(rest);
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (error instanceof UsageError || err.code?.startsWith('ERR_PARSE_ARGS')) {
      const topic = error instanceof UsageError ? error.command : name;
      process.stderr.write(
        `kernel-lock: ${printable(err.message, 400)}\nTry 'kernel-lock ${topic === null ? '' : `${topic} `}--help'.\n`,
      );
      return EXIT_USAGE;
    }
    process.stderr.write(`kernel-lock: ${printable(err.message ?? String(error), 2000)}\n`);
    return EXIT_USAGE;
  }
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    process.stderr.write(`kernel-lock: ${String(error)}\n`);
    process.exitCode = EXIT_USAGE;
  },
);

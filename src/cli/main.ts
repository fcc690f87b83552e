#!/usr/bin/env node
// The `kernel-lock` command: dispatches to status, run, sweep and demo, and
// takes flock(1)'s FD form (`kernel-lock -n 9`) when the first word is an
// option or a number. Every failure ends as one line on stderr and an exit
// status; a usage error also points at the command's --help and its
// documentation.
import { existsSync } from 'node:fs';
import { printable } from '../inspect/format.js';
import { isFlockForm } from './flock-args.js';
import { runCommand } from './run.js';
import { statusCommand } from './status.js';
import { sweepCommand } from './sweep.js';
import { docPath, EXIT_USAGE, HELP_TOPICS, helpText, UsageError, version } from './usage.js';

type Command = (argv: string[]) => Promise<number>;

// --pg (before any `--`) selects the PostgreSQL engine of `status`: src/cli/pg.ts, loaded only then.
const statusOrPg: Command = async (argv) => {
  const end = argv.indexOf('--');
  const ours = end === -1 ? argv : argv.slice(0, end);
  if (!ours.some((a) => a === '--pg' || a.startsWith('--pg='))) return statusCommand(argv);
  return (await import('./pg.js')).statusPgCommand(argv);
};

const COMMANDS: Record<string, Command> = {
  status: statusOrPg,
  // run reads its own options (flock(1)'s way: they stop at the lock target), --help and --pg included.
  run: runCommand,
  sweep: sweepCommand,
  demo: async (argv) => {
    const { runDemo } = await import('../demo/main.js');
    return runDemo(argv);
  },
};

function wantsHelp(argv: readonly string[]): boolean {
  return argv.some((a) => a === '--help' || a === '-h');
}

function unknownCommand(name: string): UsageError {
  // `kernel-lock FILE COMMAND` is flock(1)'s habit; kernel-lock spells it `run`.
  const hint =
    name.includes('/') || existsSync(name)
      ? `; to run a command under a lock on ${printable(name, 200)}: kernel-lock run [options] ${printable(name, 200)} COMMAND`
      : '';
  return new UsageError(`unknown command ${JSON.stringify(printable(name, 40))}${hint}`);
}

/** Runs the CLI with `argv` (without node and the script); resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' && rest[0] !== undefined && HELP_TOPICS.includes(rest[0]) ? rest[0] : 'main';
    process.stdout.write(helpText(topic));
    return name === undefined ? EXIT_USAGE : 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const flockForm = isFlockForm(name);
  const command = flockForm ? runCommand : COMMANDS[name];
  const topic = flockForm ? 'run' : name;
  try {
    if (command === undefined) throw unknownCommand(name);
    if (!flockForm && name !== 'run' && name !== 'demo' && wantsHelp(rest)) {
      process.stdout.write(helpText(name));
      return 0;
    }
    return await command(flockForm ? argv : rest);
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (error instanceof UsageError || err.code?.startsWith('ERR_PARSE_ARGS')) {
      const about = error instanceof UsageError ? (error.command ?? null) : topic;
      const doc = docPath('docs/CLI.md', about === null ? '' : `#kernel-lock-${about}`);
      process.stderr.write(
        `kernel-lock: ${printable(err.message, 400)}\n` +
          `Try 'kernel-lock ${about === null ? '' : `${about} `}--help' (documentation: ${doc}).\n`,
      );
      return error instanceof UsageError ? error.status : EXIT_USAGE;
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

// The command line of `kernel-lock run` (and of `kernel-lock [options] FD`),
// read the way util-linux flock(1) reads its own, so flock(1) users' habits
// carry over unchanged:
//
//   run [options] FILE|DIRECTORY COMMAND [ARGS...]
//   run [options] FILE|DIRECTORY -c COMMAND-STRING
//   run [options] FD
//
// Options come first and parsing stops at the first word that is not one
// (getopt's "+" mode), so the command's own options are never taken for
// ours. Long options may be abbreviated to any unambiguous prefix, as
// getopt_long allows (`--nonblock` is flock(1)'s `--nonblocking`). What
// follows the options decides the form, exactly as in flock(1): one word is a
// descriptor number, more are a lock target and a command. kernel-lock adds
// long options only (`--owner`, `--kind`, `--timeout-ms`, `--pg`,
// `--namespace`), and accepts an optional `--` between the target and the
// command (its own syntax before 0.2).
import { EX_USAGE, UsageError } from './usage.js';

/** What `run` was asked to do. */
export interface RunArgs {
  /** A descriptor number (the FD form), or a path (file or directory; with --pg a lock name). */
  target: { fd: number } | { path: string };
  /** The command's argv; null in the FD form. With -c: [$SHELL or /bin/sh, '-c', string]. */
  command: string[] | null;
  mode: 'exclusive' | 'shared' | 'unlock';
  kind: 'flock' | 'ofd' | 'posix';
  /** Milliseconds to wait: Infinity (default), 0 with -n or -w 0. */
  timeoutMs: number;
  /** Exit status when the lock is busy (-n) or the wait timed out (-w). */
  conflictExitCode: number;
  /** -o: the command does not inherit the lock's descriptor; kernel-lock holds the lock while it runs. */
  close: boolean;
  /** -F: accepted for compatibility; the command runs as a child either way (see runCommand). */
  noFork: boolean;
  verbose: boolean;
  owner: string | undefined;
  pg: string | undefined;
  namespace: string | undefined;
}

/** --help or --version among the options: print and exit 0, whatever else is there. */
export type RunRequest = RunArgs | { help: true } | { version: true };

type Value = 'flag' | 'argument';

interface OptionSpec {
  /** The name used below (the long option, or the option it is an alias of). */
  key: string;
  value: Value;
}

const SHORT: Record<string, OptionSpec> = {
  s: { key: 'shared', value: 'flag' },
  x: { key: 'exclusive', value: 'flag' },
  e: { key: 'exclusive', value: 'flag' },
  u: { key: 'unlock', value: 'flag' },
  n: { key: 'nonblock', value: 'flag' },
  w: { key: 'timeout', value: 'argument' },
  E: { key: 'conflict-exit-code', value: 'argument' },
  o: { key: 'close', value: 'flag' },
  F: { key: 'no-fork', value: 'flag' },
  h: { key: 'help', value: 'flag' },
  V: { key: 'version', value: 'flag' },
};

const LONG: Record<string, OptionSpec> = {
  // flock(1)'s, with its aliases.
  shared: SHORT.s!,
  exclusive: SHORT.x!,
  unlock: SHORT.u!,
  nonblocking: SHORT.n!,
  nonblock: SHORT.n!,
  nb: SHORT.n!,
  timeout: SHORT.w!,
  wait: SHORT.w!,
  'conflict-exit-code': SHORT.E!,
  close: SHORT.o!,
  'no-fork': SHORT.F!,
  verbose: { key: 'verbose', value: 'flag' },
  fcntl: { key: 'fcntl', value: 'flag' },
  start: { key: 'start', value: 'argument' },
  length: { key: 'length', value: 'argument' },
  help: SHORT.h!,
  version: SHORT.V!,
  // kernel-lock's own: long only, so no flock(1) option can ever collide.
  owner: { key: 'owner', value: 'argument' },
  kind: { key: 'kind', value: 'argument' },
  'timeout-ms': { key: 'timeout-ms', value: 'argument' },
  pg: { key: 'pg', value: 'argument' },
  namespace: { key: 'namespace', value: 'argument' },
};

const usage = (message: string): UsageError => new UsageError(message, 'run', EX_USAGE);

/** getopt_long's matching: an exact name, else the one option every name with this prefix stands for. */
function longOption(name: string): OptionSpec {
  const exact = LONG[name];
  if (exact !== undefined) return exact;
  const matches = Object.keys(LONG).filter((candidate) => candidate.startsWith(name));
  const specs = new Set(matches.map((candidate) => LONG[candidate]!));
  if (specs.size === 1) return [...specs][0]!;
  if (specs.size === 0) throw usage(`unrecognized option '--${name}'`);
  throw usage(`option '--${name}' is ambiguous; possibilities: ${matches.map((m) => `'--${m}'`).join(' ')}`);
}

/** Splits off the leading options; returns them in order and the words after them. */
function scanOptions(argv: readonly string[]): { options: [string, string | true][]; rest: string[] } {
  const options: [string, string | true][] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') {
      i++;
      break;
    }
    if (!word.startsWith('-') || word === '-') break;
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const name = eq === -1 ? word.slice(2) : word.slice(2, eq);
      const spec = longOption(name);
      if (spec.value === 'flag') {
        if (eq !== -1) throw usage(`option '--${name}' doesn't allow an argument`);
        options.push([spec.key, true]);
      } else if (eq !== -1) {
        options.push([spec.key, word.slice(eq + 1)]);
      } else {
        const value = argv[++i];
        if (value === undefined) throw usage(`option '--${name}' requires an argument`);
        options.push([spec.key, value]);
      }
      continue;
    }
    // A cluster of short options: -sn, -w5, -w 5.
    for (let j = 1; j < word.length; j++) {
      const letter = word[j]!;
      const spec = SHORT[letter];
      if (spec === undefined) throw usage(`invalid option -- '${letter}'`);
      if (spec.value === 'flag') {
        options.push([spec.key, true]);
        continue;
      }
      let value: string | undefined = word.slice(j + 1);
      if (value === '') value = argv[++i];
      if (value === undefined) throw usage(`option requires an argument -- '${letter}'`);
      options.push([spec.key, value]);
      break;
    }
  }
  return { options, rest: argv.slice(i) };
}

/**
 * flock(1)'s -w: seconds as strtod(3) reads them (fractions, exponents and
 * hexadecimal included), not negative, finite. Returns milliseconds.
 */
export function parseSeconds(text: string, option = '--timeout'): number {
  const trimmed = text.trim().replace(/^\+/, '');
  const decimal = /^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(trimmed);
  const value = decimal ? Number(trimmed) : /^0x[0-9a-f]+$/i.test(trimmed) ? Number.parseInt(trimmed, 16) : Number.NaN;
  if (!Number.isFinite(value)) {
    throw usage(`invalid timeout value: '${text}' (${option} takes seconds, e.g. 10 or 0.5)`);
  }
  return value * 1000;
}

function parseMilliseconds(text: string): number {
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(value) || value < 0) {
    throw usage(`invalid timeout value: '${text}' (--timeout-ms takes milliseconds, e.g. 250)`);
  }
  return value;
}

function parseExitCode(text: string): number {
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isInteger(value)) throw usage(`invalid exit code: '${text}'`);
  if (value < 0 || value > 255) throw usage('exit code out of range (expected 0 to 255)');
  return value;
}

/** Reads `run`'s arguments (everything after the word `run`). */
export function parseRunArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): RunRequest {
  const { options, rest } = scanOptions(argv);
  const args: Omit<RunArgs, 'target' | 'command'> = {
    mode: 'exclusive',
    kind: 'flock',
    timeoutMs: Number.POSITIVE_INFINITY,
    conflictExitCode: 1,
    close: false,
    noFork: false,
    verbose: false,
    owner: undefined,
    pg: undefined,
    namespace: undefined,
  };
  let nonblock = false;
  let kindGiven: string | undefined;
  let fcntl = false;
  for (const [key, value] of options) {
    const text = value === true ? '' : value;
    switch (key) {
      case 'help':
        return { help: true };
      case 'version':
        return { version: true };
      case 'shared':
      case 'exclusive':
      case 'unlock':
        // The last one wins, as in flock(1).
        args.mode = key;
        break;
      case 'nonblock':
        nonblock = true;
        break;
      case 'timeout':
        args.timeoutMs = parseSeconds(text);
        break;
      case 'timeout-ms':
        args.timeoutMs = parseMilliseconds(text);
        break;
      case 'conflict-exit-code':
        args.conflictExitCode = parseExitCode(text);
        break;
      case 'close':
        args.close = true;
        break;
      case 'no-fork':
        args.noFork = true;
        break;
      case 'verbose':
        args.verbose = true;
        break;
      case 'fcntl':
        fcntl = true;
        break;
      case 'start':
      case 'length':
        throw usage(`--${key}: byte-range locks are not offered by the CLI (the library's range option is)`);
      case 'owner':
        args.owner = text;
        break;
      case 'kind':
        kindGiven = text;
        break;
      case 'pg':
        args.pg = text;
        break;
      case 'namespace':
        args.namespace = text;
        break;
    }
  }
  // -n wins over -w, as in flock(1) (its non-blocking call fails at once).
  if (nonblock) args.timeoutMs = 0;
  if (fcntl && kindGiven !== undefined && kindGiven !== 'ofd') {
    throw usage(`--fcntl means --kind ofd, but --kind ${kindGiven} was given`);
  }
  const kind = kindGiven ?? (fcntl ? 'ofd' : 'flock');
  if (kind !== 'flock' && kind !== 'ofd' && kind !== 'posix') {
    throw usage(`--kind must be flock or ofd, got ${JSON.stringify(kind)}`);
  }
  args.kind = kind;
  if (args.noFork && args.close) throw usage('the --no-fork and --close options are incompatible');

  if (rest.length === 0) throw usage('requires file descriptor, file or directory');
  const [first, ...after] = rest as [string, ...string[]];
  if (after[0] === '--') after.shift();
  if (after.length === 0) {
    if (args.pg !== undefined) throw usage('run --pg needs a command after the lock name');
    if (!/^\d+$/.test(first)) {
      throw usage(
        `bad file descriptor: '${first}' (one word after the options is a descriptor number; ` +
          `to run a command under a lock on a file: run [options] FILE COMMAND [ARGS...])`,
      );
    }
    return { ...args, target: { fd: Number(first) }, command: null };
  }
  let command: string[];
  if (after[0] === '-c' || after[0] === '--command') {
    if (after.length !== 2) throw usage(`${after[0]} requires exactly one command argument`);
    const shell = env.SHELL !== undefined && env.SHELL !== '' ? env.SHELL : '/bin/sh';
    command = [shell, '-c', after[1]!];
  } else {
    if (after[0]!.startsWith('-')) {
      // flock(1) would try to execute it; what was meant is an option in the wrong place.
      throw usage(
        `options go before the lock target, as in flock(1): run [options] ${first} COMMAND (got ${after[0]})`,
      );
    }
    command = after;
  }
  return { ...args, target: { path: first }, command };
}

/** True when `argv` (the whole command line) starts in flock(1)'s form: an option, or a descriptor number. */
export function isFlockForm(word: string): boolean {
  return /^\d+$/.test(word) || (word.startsWith('-') && word !== '-');
}

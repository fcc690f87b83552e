// Usage errors, help texts and the version: the parts of the CLI that are
// only words. Exit status 2 means "you called it wrong", as in flock(1)'s
// and most Unix tools' conventions for usage errors.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Exit status for usage errors and failures to inspect (status, sweep). */
export const EXIT_USAGE = 2;

// `run` and the FD form speak flock(1)'s language, exit statuses included:
// <sysexits.h> for its own failures, the conflict status (1 or -E) for a busy
// lock, the command's own status otherwise.
/** run: the command line was wrong. */
export const EX_USAGE = 64;
/** run: the lock call failed (a descriptor that is not open, a lock the file system refuses). */
export const EX_DATAERR = 65;
/** run: the lock file could not be opened. */
export const EX_NOINPUT = 66;
/** run: the command could not be executed. */
export const EX_UNAVAILABLE = 69;
/** run: out of memory, descriptors or kernel lock records. */
export const EX_OSERR = 71;
/** run: the lock file could not be created (read-only file system, no space). */
export const EX_CANTCREAT = 73;

/** A mistake in the command line; printed with a pointer to --help. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly command: string | null = null,
    /** The exit status: 2, or flock(1)'s 64 for `run`. */
    readonly status: number = EXIT_USAGE,
  ) {
    super(message);
  }
}

const HELP_TEXT: Record<string, string> = {
  main: `Usage: kernel-lock <command> [options]
       kernel-lock [flock options] FD

Kernel-owned file locks: a lock disappears the instant its owner dies.

Commands:
  status <file|dir>...   who holds these lock files (exit 0 all free, 1 any held)
  run [options] <file|dir> <command> [args...]
  run [options] <file|dir> -c <command string>
                         run a command holding the lock: flock(1)'s options and exit statuses
  [options] FD           lock a descriptor a shell opened: ( kernel-lock -n 9 || exit 1; ... ) 9>file
  sweep <dir>            remove the lock files nobody holds (safe replacement for rm -f *.lock)
  demo                   reproduce the stale-lock barrage and compare with the legacy marker

Options:
  -h, --help             help (also: kernel-lock <command> --help)
  -V, --version          print the version

Documentation: {docs/CLI.md}
`,
  status: `Usage: kernel-lock status <file|dir>... [--json] [--suffix .lock]

Shows, for each lock file (directories are scanned for *<suffix> files),
what the kernel says: state, holder pid, whether it is alive, for how long
it has held the lock, its owner label and command line. File names are
bytes: names that are not UTF-8 are printed escaped (\\xHH, and \\\\ for a
backslash). A missing *<suffix> file in an existing directory is free; any
other argument that names nothing is an error. When a lease file (lease())
is listed, a TOKEN column shows its last token, and a line under the table
names each superseded holder still alive.

States: free (no kernel lock, whatever the file says), held, held-by-self,
orphan-record (no kernel lock; the file's record names a dead process).

Options:
      --json             machine-readable output (schema in docs/CLI.md)
      --suffix <s>       file name suffix when scanning directories (default .lock)
  -h, --help             this help

PostgreSQL advisory locks ({docs/PG.md}):
  kernel-lock status --pg <url> [name...] [--namespace <ns>] [--json]
                         the named locks, or every advisory lock of the database

Exit status: 0 all free, 1 at least one held, 2 usage error, an argument
that names nothing, or failure.

Documentation: {docs/CLI.md#kernel-lock-status}
`,
  run: `Usage: kernel-lock run [options] <file|directory> <command> [args...]
       kernel-lock run [options] <file|directory> -c <command string>
       kernel-lock [options] <fd>          (also: kernel-lock run [options] <fd>)

util-linux flock(1)'s command on kernel-lock: the same options, forms and
exit statuses. Acquires the lock, then runs the command with the locked
descriptor inherited (as fd 3): the lock lasts as long as the command, even
if kernel-lock itself is killed. A directory is opened read-only and locked.
With a descriptor number instead of a command, locks that descriptor (which
a shell opened) and exits; the lock stays with the shell's open file:
  ( kernel-lock -n 9 || exit 1; ...commands under the lock... ) 9>/var/lock/job
Options go before the lock target; an optional \`--\` may follow the target.

Options (flock(1)'s):
  -s, --shared                  shared lock
  -x, -e, --exclusive           exclusive lock (the default)
  -u, --unlock                  drop the lock on <fd>
  -n, --nonblock, --nb          fail rather than wait if the lock is held
  -w, --timeout, --wait <secs>  wait at most this many seconds (fractions allowed; 0 = -n)
  -E, --conflict-exit-code <n>  exit status when -n or -w give up (default 1)
  -o, --close                   do not pass the lock's descriptor to the command
                                (kernel-lock holds the lock until the command ends)
  -c, --command <string>        after the target: run the string with $SHELL -c (or /bin/sh)
  -F, --no-fork                 accepted; the command runs as a child either way
                                and holds the lock through its descriptor
      --fcntl                   an OFD lock (fcntl F_OFD_SETLK), as --kind ofd
      --verbose                 say how long the lock took (on stdout, as flock(1))
  -h, --help                    this help
  -V, --version                 print the version
kernel-lock's own (long only):
      --owner <label>           label written in the lock file's owner record
      --kind <flock|ofd>        lock kind (posix locks are not inherited by a
                                child process, so they are refused)
      --timeout-ms <ms>         -w in milliseconds

When the lock is held, kernel-lock names the holder on stderr (flock(1) says
nothing). The lock file is kept after the command ends (descendants of the
command may still hold the inherited descriptor); \`kernel-lock sweep\`
removes unheld ones. A digit-only target that names no file is refused (it
is a descriptor number mistaken for a file: use ./9 for a file named 9).

Exit status: the command's (128+N if it died of signal N); the -E status
(default 1) when -n or -w gave up; 64 usage error; 65 the lock call failed
(a descriptor that is not open); 66 the lock file could not be opened;
69 the command could not be executed; 71 out of resources; 73 the lock file
could not be created (read-only file system).

PostgreSQL advisory locks ({docs/PG.md}):
  kernel-lock run --pg <url> [--namespace <ns>] [-s] [-n | -w secs] [-E n] [--owner label] <name> <command>
The lock is held by kernel-lock's server session, not inherited: if that
session is lost, the command gets SIGTERM. It finds the fencing token in
KERNEL_LOCK_PG_TOKEN.

Documentation: {docs/CLI.md#kernel-lock-run}
`,
  sweep: `Usage: kernel-lock sweep <dir> [--suffix .lock] [--dry-run] [--json]

Removes every *<suffix> file in <dir> whose lock can be taken without
waiting, unlinking it while holding the lock (the protocol release uses).
Held locks, of any kind and from any process or pid namespace, are kept, and
so is every file that holds anything but a lock record (a script, a
database, somebody's data). The startup step that replaces
\`rm -f sessions/*.lock\`.

Safe only where every locker of these files re-checks the file after
locking, as kernel-lock does (kernel-lock/session included). Do not sweep
files that util-linux flock(1), Python's fcntl.flock/lockf, lockf(3) or
SQLite lock: one of them that opened a file just before the sweep would lock
the removed file while the next locker locks a new one. Legacy O_EXCL
markers are removed like any unheld file: during a rolling upgrade use the
runtime's cleanStaleLockFiles, which keeps a live old writer's marker.

Options:
      --suffix <s>       file name suffix (default .lock)
      --dry-run          report what would be removed; remove nothing
      --json             machine-readable output (schema in docs/CLI.md)
  -h, --help             this help

Exit status: 0 done, 1 some files could not be checked (errors), 2 usage error.

Documentation: {docs/CLI.md#kernel-lock-sweep}
`,
  demo: `Usage: kernel-lock demo [options]

Reproduces the reported barrage (30 agent invocations on one session, one of
them killed while holding the lock) with the legacy marker and with
kernel-lock, and prints a table. Run \`kernel-lock demo --help\` for its options.
`,
};

/** The help topics. */
export const HELP_TOPICS: readonly string[] = Object.keys(HELP_TEXT);

/** The help text of `topic` ('main', 'status', 'run', 'sweep', 'demo'), with its documents' paths filled in. */
export function helpText(topic: string): string {
  return (HELP_TEXT[topic] ?? HELP_TEXT.main!).replace(/\{(docs\/[A-Za-z-]+\.md)(#[a-z-]*)?\}/g, (_m, doc, anchor) =>
    docPath(doc, anchor ?? ''),
  );
}

function packageRoot(): string | null {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'kernel-lock') return dir;
    } catch {
      // not here: one level up
    }
    if (path.dirname(dir) === dir) return null;
    dir = path.dirname(dir);
  }
}

/**
 * Where a document of this package is: its absolute path in the installed
 * package (docs/*.md ship with it), with `anchor` (e.g. '#kernel-lock-run');
 * when it cannot be found, the path inside the package.
 */
export function docPath(doc: string, anchor = ''): string {
  const root = packageRoot();
  if (root !== null && existsSync(path.join(root, doc))) return `${path.join(root, doc)}${anchor}`;
  return `${doc}${anchor} in the kernel-lock package`;
}

/** The package version, read from the package's own package.json. */
export function version(): string {
  const root = packageRoot();
  if (root === null) return 'unknown';
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version?: string };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

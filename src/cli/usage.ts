// Usage errors, help texts and the version: the parts of the CLI that are
// only words. Exit status 2 means "you called it wrong", as in flock(1)'s
// and most Unix tools' conventions for usage errors.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Exit status for usage errors and failures to inspect. */
export const EXIT_USAGE = 2;

/** A mistake in the command line; printed with a pointer to --help. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly command: string | null = null,
  ) {
    super(message);
  }
}

export const HELP: Record<string, string> = {
  main: `Usage: kernel-lock <command> [options]

Kernel-owned file locks: a lock disappears the instant its owner dies.

Commands:
  status <file|dir>...   who holds these lock files (exit 0 all free, 1 any held)
  run <lockfile> -- <command> [args...]
                         run a command holding the lock (like flock(1))
  sweep <dir>            remove the lock files nobody holds (safe replacement for rm -f *.lock)
  demo                   reproduce the stale-lock barrage and compare with the legacy marker

Options:
  -h, --help             help (also: kernel-lock <command> --help)
  -V, --version          print the version

Documentation: docs/CLI.md in the package.
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

PostgreSQL advisory locks (docs/PG.md):
  kernel-lock status --pg <url> [name...] [--namespace <ns>] [--json]
                         the named locks, or every advisory lock of the database

Exit status: 0 all free, 1 at least one held, 2 usage error, an argument
that names nothing, or failure.
`,
  run: `Usage: kernel-lock run [options] <lockfile> -- <command> [args...]

Acquires the lock, then runs the command with the locked descriptor
inherited (as fd 3), like flock(1): the lock lasts as long as the command,
even if kernel-lock itself is killed. The command's exit status is passed
through (death by signal N gives 128+N); signals sent to kernel-lock
(INT, TERM, HUP, QUIT, USR1, USR2, WINCH) are forwarded to the command.

Options:
  -s, --shared                 shared lock (default exclusive)
  -k, --kind <flock|ofd>       lock kind (default flock; posix locks cannot be
                               inherited by a child process, so they are refused)
  -w, --timeout <ms>           give up after this many milliseconds (default: wait forever)
  -n, --nonblock               fail at once when the lock is held
  -E, --conflict-exit-code <n> exit status when the lock is held (default 1)
  -o, --owner <label>          label written in the owner record
  -h, --help                   this help

The lock file is kept after the command ends (descendants of the command may
still hold the inherited descriptor); \`kernel-lock sweep\` removes unheld ones.

PostgreSQL advisory locks (docs/PG.md):
  kernel-lock run --pg <url> [--namespace <ns>] [-s] [-w ms] [-n] [-E n] [-o label] <name> -- <command>
The lock is held by kernel-lock's server session, not inherited: if that
session is lost, the command gets SIGTERM. It finds the fencing token in
KERNEL_LOCK_PG_TOKEN.
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
`,
  demo: `Usage: kernel-lock demo [options]

Reproduces the reported barrage (30 agent invocations on one session, one of
them killed while holding the lock) with the legacy marker and with
kernel-lock, and prints a table. Run \`kernel-lock demo --help\` for its options.
`,
};

/** The package version, read from package.json next to dist/ (or src/). */
export function version(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const candidate of [path.join(here, '..', 'package.json'), path.join(here, '..', '..', 'package.json')]) {
    try {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'kernel-lock' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return 'unknown';
}

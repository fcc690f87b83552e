// What a test needs beyond a normal user's rights, decided in this one place.
//
// `npm test` runs as a normal (non-root) user. Namespaces ("containers" with
// their own pid 1, private mounts, a tmpfs) come from unprivileged user
// namespaces: `unshare --user --map-root-user …`, which the kernel allows a
// normal user (kernel.unprivileged_userns_clone=1 where that knob exists,
// user.max_user_namespaces > 0). A few tests need what no user namespace
// gives: a second real user (a file owned by somebody else, a process
// running as nobody), device nodes (mknod needs CAP_MKNOD on the host),
// network namespaces joined by veth links with a PostgreSQL server in one,
// or a package only root can install. As a normal user those are skipped,
// each with one line saying what it needs. In CI (CI=true) nothing is ever
// skipped: there they run, and a CI machine without root fails them.
import { it } from 'vitest';

/** The tests run as root. */
export const isRoot = process.getuid?.() === 0;

/** Under CI every test runs: nothing may be skipped there. */
export const inCI = process.env.CI === 'true' || process.env.CI === '1';

/**
 * `unshare` with `flags` (e.g. '--pid', '--fork', '--mount-proc'): as a
 * normal user inside a new user namespace too, mapping the user to root
 * there, which is what lets the kernel create the other namespaces.
 */
export function unshare(...flags: string[]): string[] {
  return ['unshare', ...(isRoot ? [] : ['--user', '--map-root-user']), ...flags];
}

type TestBody = () => unknown;
/** The part of vitest's `it` these tests use. */
export type TestFn = (name: string, body: TestBody, timeout?: number) => void;

/**
 * `it` for a test that needs `what`: the real `it` when `available` (or under
 * CI, where it must run and fail if it cannot), else one line on stderr and
 * the test reported as skipped.
 */
export function itNeeds(available: boolean, what: string): TestFn {
  if (available || inCI) return it;
  return (name) => {
    process.stderr.write(`skipped (needs ${what}; runs in CI): ${name}\n`);
    it.skip(name, () => {});
  };
}

/** `it` for a test that needs root for `why` (e.g. "mknod makes device nodes only with CAP_MKNOD"). */
export function itAsRoot(why: string): TestFn {
  return itNeeds(isRoot, `root: ${why}`);
}

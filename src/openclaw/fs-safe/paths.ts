// Where the lock lives. fs-safe's rule, kept exactly because every process of
// a fleet must derive the same lock file from the same target: the target's
// directory is created and resolved through realpath, the lock file is
// `<that>/<basename>.lock` unless `lockPath` says otherwise. The canonical
// target is also the in-process arbitration key of a manager domain.
import { mkdirSync, realpathSync } from 'node:fs';
import { mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { FsSafeError } from './errors.js';
import type { FileLockRoot } from './types.js';

/** The canonical target and its lock file, both absolute. */
export interface LockPaths {
  normalizedTargetPath: string;
  lockPath: string;
}

function assertTarget(targetPath: unknown, api: string): asserts targetPath is string {
  if (typeof targetPath !== 'string' || targetPath.length === 0) {
    throw new TypeError(`${api}: targetPath must be a non-empty string, got ${JSON.stringify(targetPath)}`);
  }
  if (targetPath.includes('\0')) throw new TypeError(`${api}: targetPath must not contain NUL bytes`);
}

function explicitLock(lockPath: string | undefined): string | undefined {
  if (lockPath === undefined) return undefined;
  if (lockPath.includes('\0')) throw new TypeError('lockPath must not contain NUL bytes');
  return path.resolve(lockPath);
}

/** The nearest existing ancestor, resolved, with the missing rest appended (fs-safe, for lockRoot). */
function canonicalFromExistingAncestor(dir: string): string {
  const missing: string[] = [];
  let current = dir;
  for (;;) {
    try {
      const real = realpathSync.native(current);
      return missing.length === 0 ? real : path.join(real, ...missing.reverse());
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return dir;
      missing.push(path.basename(current));
      current = parent;
    }
  }
}

function assertInsideRoot(lockRoot: FileLockRoot, lockPath: string): void {
  const rootReal = lockRoot?.rootReal;
  if (typeof rootReal !== 'string' || !path.isAbsolute(rootReal)) {
    throw new TypeError('lockRoot must be an fs-safe Root (an object with an absolute rootReal)');
  }
  const relative = path.relative(rootReal, lockPath);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new FsSafeError('outside-workspace', `sidecar lock path is outside lockRoot: ${lockPath} (root ${rootReal})`);
  }
}

function withRoot(resolved: string, lockPath: string | undefined, lockRoot: FileLockRoot): LockPaths {
  // The target is only an arbitration key here: its directory is not created.
  const normalizedTargetPath = path.join(
    canonicalFromExistingAncestor(path.dirname(resolved)),
    path.basename(resolved),
  );
  const lock = lockPath ?? `${normalizedTargetPath}.lock`;
  assertInsideRoot(lockRoot, lock);
  mkdirSync(path.dirname(lock), { recursive: true });
  return { normalizedTargetPath, lockPath: lock };
}

/** Resolves the paths of an asynchronous acquisition (creates the target's directory, as fs-safe does). */
export async function resolveLockPaths(
  targetPath: unknown,
  lockPath: string | undefined,
  lockRoot: FileLockRoot | undefined,
  api: string,
): Promise<LockPaths> {
  assertTarget(targetPath, api);
  const resolved = path.resolve(targetPath);
  const explicit = explicitLock(lockPath);
  if (lockRoot !== undefined) return withRoot(resolved, explicit, lockRoot);
  const dir = path.dirname(resolved);
  await mkdir(dir, { recursive: true });
  let parent: string;
  try {
    parent = await realpath(dir);
  } catch {
    return { normalizedTargetPath: resolved, lockPath: explicit ?? `${resolved}.lock` };
  }
  const normalizedTargetPath = path.join(parent, path.basename(resolved));
  return { normalizedTargetPath, lockPath: explicit ?? `${normalizedTargetPath}.lock` };
}

/** The same, synchronously. */
export function resolveLockPathsSync(
  targetPath: unknown,
  lockPath: string | undefined,
  lockRoot: FileLockRoot | undefined,
  api: string,
): LockPaths {
  assertTarget(targetPath, api);
  const resolved = path.resolve(targetPath);
  const explicit = explicitLock(lockPath);
  if (lockRoot !== undefined) return withRoot(resolved, explicit, lockRoot);
  const dir = path.dirname(resolved);
  mkdirSync(dir, { recursive: true });
  let parent: string;
  try {
    parent = realpathSync.native(dir);
  } catch {
    return { normalizedTargetPath: resolved, lockPath: explicit ?? `${resolved}.lock` };
  }
  const normalizedTargetPath = path.join(parent, path.basename(resolved));
  return { normalizedTargetPath, lockPath: explicit ?? `${normalizedTargetPath}.lock` };
}

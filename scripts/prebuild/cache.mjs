// Toolchains and root file systems downloaded once and kept between runs,
// outside the repository: $KERNEL_LOCK_CACHE, else $XDG_CACHE_HOME/kernel-lock,
// else ~/.cache/kernel-lock. Every entry is built in a private directory and
// renamed into place when complete, so a crash leaves no half entry and two
// runs filling the same entry at once both succeed (the loser's copy is
// dropped). Registry packages are fetched with npm itself, by exact version,
// and checked against the integrity pinned here before anything is unpacked.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The cache directory (created on first use). */
export function cacheRoot() {
  const dir =
    process.env.KERNEL_LOCK_CACHE ||
    path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'kernel-lock');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * The cache entry `name`, made by `fill(dir)` if it does not exist yet. `fill`
 * writes into the (empty) directory it is given; it becomes the entry only if
 * `fill` returns without throwing.
 */
export function cached(name, fill) {
  const final = path.join(cacheRoot(), name);
  if (fs.existsSync(final)) return final;
  fs.mkdirSync(path.dirname(final), { recursive: true });
  const partial = `${final}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
  fs.mkdirSync(partial);
  try {
    fill(partial);
    try {
      fs.renameSync(partial, final);
    } catch (error) {
      // Another run finished the same entry first: keep theirs.
      if (!fs.existsSync(final)) throw error;
    }
  } finally {
    fs.rmSync(partial, { recursive: true, force: true });
  }
  return final;
}

/** Runs a command; throws with its output when it fails. */
export function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...options });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-20).join('\n');
    throw new Error(`${command} ${args.join(' ')} exited ${result.status ?? result.signal}:\n${output}`);
  }
  return result.stdout ?? '';
}

// npm run from `npm test` inherits npm_* variables (npm_config_local_prefix
// among them) that would make the child act on this checkout.
function cleanNpmEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));
}

/**
 * A registry package unpacked into the cache: the directory holding its
 * package.json. `spec` is `name@exact-version`; `integrity` its sha512 as
 * the registry lists it (`npm view <spec> dist.integrity`).
 */
export function npmPackage(spec, integrity) {
  const name = `npm/${spec.replace(/^@/, '').replace(/[/@]/g, '-')}`;
  const dir = cached(name, (into) => {
    const download = fs.mkdtempSync(path.join(os.tmpdir(), 'kernel-lock-fetch-'));
    try {
      const packed = JSON.parse(
        run('npm', ['pack', spec, '--json', '--pack-destination', download], {
          cwd: download,
          env: cleanNpmEnv(),
        }),
      );
      const tarball = path.join(download, packed[0].filename);
      const actual = `sha512-${createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`;
      if (actual !== integrity) {
        throw new Error(`${spec}: integrity ${actual} does not match the pinned ${integrity}; refusing to use it`);
      }
      run('tar', ['-xzf', tarball, '-C', into, '--no-same-owner']);
    } finally {
      fs.rmSync(download, { recursive: true, force: true });
    }
  });
  return path.join(dir, 'package');
}

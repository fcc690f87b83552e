// What a user sees when the native binary cannot be used: the error at import
// names what was looked for (platform, arch, libc, N-API) and how to build
// from source; on Windows it says plainly that Windows is not supported.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { root, tempDir } from '../helpers.js';

const work = tempDir('kernel-lock-loader-');
const libc = process.platform === 'linux' && existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
const prebuildName = path.join('prebuilds', `${process.platform}-${process.arch}`, `kernel-lock.${libc}.node`);

/** A copy of the package with dist/ but neither build/ nor prebuilds/. */
function packageWithoutBinary(name: string): string {
  const dir = path.join(work.dir, name);
  mkdirSync(dir);
  cpSync(path.join(root, 'dist'), path.join(dir, 'dist'), { recursive: true });
  cpSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return dir;
}

function importError(dir: string, preload = ''): string {
  const result = spawnSync(process.execPath, ['-e', `${preload}; require('./dist/index.cjs')`], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, PREBUILDS_ONLY: '' },
  });
  expect(result.status).not.toBe(0);
  return result.stderr;
}

afterAll(() => work.cleanup());

describe('loading the native binary', () => {
  it('names the platform, arch, libc and N-API looked for, and how to build from source', () => {
    const dir = packageWithoutBinary('none');
    const message = importError(dir);
    expect(message).toContain('kernel-lock: no native binary for this system');
    expect(message).toContain(path.join(dir, prebuildName));
    expect(message).toContain(path.join(dir, 'build', 'Release', 'kernel_lock.node'));
    expect(message).toContain(`platform ${process.platform}, arch ${process.arch}, libc `);
    expect(message).toContain(`N-API 8 needed / ${process.versions.napi} offered by Node ${process.versions.node}`);
    expect(message).toContain('npm rebuild kernel-lock --build-from-source');
    expect(message).toContain('python3, make and a C++17 compiler');
  });

  it('says which binary was found but does not load, and why', () => {
    const dir = packageWithoutBinary('broken');
    mkdirSync(path.dirname(path.join(dir, prebuildName)), { recursive: true });
    writeFileSync(path.join(dir, prebuildName), 'not an ELF file');
    const message = importError(dir);
    expect(message).toContain(`the native binary ${path.join(dir, prebuildName)} does not load on this system (`);
    expect(message).toMatch(/invalid ELF header|file too short/);
    expect(message).toContain('npm rebuild kernel-lock --build-from-source');
  });

  it('refuses Windows at import with a clear sentence', () => {
    const dir = packageWithoutBinary('windows');
    const message = importError(dir, "Object.defineProperty(process, 'platform', { value: 'win32' })");
    expect(message).toContain('kernel-lock does not support Windows: it is built on flock(2) and fcntl(2)');
    expect(message).toContain('Use it on Linux (WSL included), macOS or another Unix.');
  });
});

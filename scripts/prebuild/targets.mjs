// The prebuilt binaries the package ships, and what each one promises. One
// table, read by the build (scripts/prebuildify.mjs), the gate
// (scripts/check-prebuilds.mjs), the load matrix (scripts/prebuild/load-matrix.mjs)
// and docs/INSTALL.md's claims.

/** Oldest glibc the glibc binaries load on: CentOS/RHEL 7, Amazon Linux 2, Ubuntu 14.04, Debian 8. */
export const GLIBC_FLOOR = '2.17';

/**
 * Libraries a glibc binary may name in DT_NEEDED: glibc's own. No libstdc++.so.6
 * and no libgcc_s.so.1: the C++ runtime (LLVM libc++, libc++abi, libunwind) is
 * linked in statically with its symbols hidden, so the binary makes no libstdc++
 * demand at all, whatever GCC the system has.
 */
export const GLIBC_LIBRARIES = new Set([
  'libc.so.6',
  'libm.so.6',
  'libpthread.so.0',
  'libdl.so.2',
  'librt.so.1',
  'ld-linux-x86-64.so.2',
  'ld-linux-aarch64.so.1',
]);

/** musl's libc (Alpine names it libc.musl-<arch>.so.1; the loader answers to libc.so too). */
export const MUSL_LIBRARIES = new Set(['libc.so', 'libc.musl-x86_64.so.1', 'libc.musl-aarch64.so.1']);

/** The only dynamic symbols a binary may export: the N-API module entry points Node looks up. */
export const EXPORTS = ['napi_register_module_v1', 'node_api_module_get_api_version_v1'];

/**
 * @typedef {object} Target
 * @property {string} id          e.g. "linux-x64-glibc"
 * @property {string} tuple       prebuilds/<tuple>/ as node-gyp-build names it
 * @property {'glibc'|'musl'} libc
 * @property {string} arch        process.arch of the systems it serves
 * @property {string} zig         zig's target triple (glibc version pinned)
 * @property {string} machine     readelf's "Machine:" for this architecture
 * @property {string} file        path below the package root
 */

/** @type {Target[]} */
export const TARGETS = [
  target('x64', 'glibc', `x86_64-linux-gnu.${GLIBC_FLOOR}`, 'Advanced Micro Devices X86-64'),
  target('arm64', 'glibc', `aarch64-linux-gnu.${GLIBC_FLOOR}`, 'AArch64'),
  target('x64', 'musl', 'x86_64-linux-musl', 'Advanced Micro Devices X86-64'),
  target('arm64', 'musl', 'aarch64-linux-musl', 'AArch64'),
];

function target(arch, libc, zig, machine) {
  const tuple = `linux-${arch}`;
  return {
    id: `${tuple}-${libc}`,
    tuple,
    libc,
    arch,
    zig,
    machine,
    file: `prebuilds/${tuple}/kernel-lock.${libc}.node`,
  };
}

/** The target a prebuilds/<tuple>/<name> path stands for, or undefined. */
export function targetOf(relativePath) {
  return TARGETS.find((t) => t.file === relativePath.split('\\').join('/'));
}

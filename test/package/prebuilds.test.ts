// The binaries the tarball ships, as prepack builds them: exactly four
// (linux x64/arm64 × glibc/musl), each keeping docs/INSTALL.md's promise as
// read from the ELF files by the gate (scripts/check-prebuilds.mjs): glibc
// symbol versions no newer than 2.17 and nothing from libstdc++, musl's libc
// alone, the right machine, only the N-API entry points exported. The gate is
// shown to refuse binaries that break each part of the promise. Whether they
// actually load on those systems is test/package/load.test.ts.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root, tempDir } from '../helpers.js';
import { buildPackage, buildSharedObject, COLD_BUILD_MS, runScript } from './prebuilt.js';

// zig builds of a tiny C library: seconds, more the first time a glibc version or musl is targeted.
const BUILD_MS = 5 * 60_000;
const work = tempDir('kernel-lock-prebuilds-');
const pkg = path.join(work.dir, 'package');

const FILES = {
  'linux-x64-glibc': 'prebuilds/linux-x64/kernel-lock.glibc.node',
  'linux-arm64-glibc': 'prebuilds/linux-arm64/kernel-lock.glibc.node',
  'linux-x64-musl': 'prebuilds/linux-x64/kernel-lock.musl.node',
  'linux-arm64-musl': 'prebuilds/linux-arm64/kernel-lock.musl.node',
};

interface GateEntry {
  file: string;
  target: string | null;
  machine: string;
  needed: string[];
  glibc: string | null;
  glibcxx: string | null;
  exports: string[];
  violations: string[];
}

function gate(dir: string, ...flags: string[]): { status: number | null; report: GateEntry[] } {
  const result = runScript('check-prebuilds.mjs', ['--json', ...flags, dir], 60_000);
  return { status: result.status, report: JSON.parse(result.stdout) as GateEntry[] };
}

/** A package directory holding one binary at `file`. */
function packageWith(name: string, binary: string, file: string): string {
  const dir = path.join(work.dir, name);
  mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
  copyFileSync(binary, path.join(dir, file));
  return dir;
}

// A tiny C shared object built with the prebuilds' own zig, to give the gate
// something that breaks one rule at a time.
const tinySource = `
#include <pthread.h>
static void* run(void* arg) { return arg; }
#ifdef IE_TLS
__attribute__((tls_model("initial-exec"))) __thread int slot; // external: the access cannot be optimized away
#endif
__attribute__((visibility("default"))) int napi_register_module_v1(void) {
  pthread_t thread;
  return pthread_create(&thread, 0, run, 0);
}
__attribute__((visibility("default"))) int node_api_module_get_api_version_v1(void) {
#ifdef IE_TLS
  return slot += 8;
#else
  return 8;
#endif
}
`;

function buildTiny(name: string, target: string, flags: string[] = []): string {
  const source = path.join(work.dir, 'tiny.c');
  writeFileSync(source, tinySource);
  return buildSharedObject(source, target, path.join(work.dir, `${name}.so`), flags);
}

beforeAll(() => {
  buildPackage(pkg);
}, COLD_BUILD_MS);

afterAll(() => work.cleanup());

describe('the prebuilt binaries prepack ships', () => {
  it('are exactly linux-x64 and linux-arm64, each for glibc and for musl', () => {
    const { status, report } = gate(pkg, '--complete');
    expect(status).toBe(0);
    expect(Object.fromEntries(report.map((entry) => [entry.target, entry.file]))).toEqual(FILES);
    expect(report.map((entry) => [entry.target, entry.machine])).toEqual(
      expect.arrayContaining([
        ['linux-x64-glibc', 'Advanced Micro Devices X86-64'],
        ['linux-arm64-glibc', 'AArch64'],
        ['linux-x64-musl', 'Advanced Micro Devices X86-64'],
        ['linux-arm64-musl', 'AArch64'],
      ]),
    );
  });

  it('need glibc 2.17 at most and no libstdc++ (glibc), only libc (musl), and export only the N-API entry points', () => {
    const { report } = gate(pkg, '--complete');
    for (const entry of report) {
      expect(entry.violations, entry.file).toEqual([]);
      expect(entry.glibcxx, entry.file).toBeNull();
      expect(
        entry.needed.filter((library) => /stdc\+\+|gcc_s/.test(library)),
        entry.file,
      ).toEqual([]);
      expect([...entry.exports].sort(), entry.file).toEqual([
        'napi_register_module_v1',
        'node_api_module_get_api_version_v1',
      ]);
      if (entry.file.endsWith('glibc.node')) expect(entry.glibc, entry.file).toBe('2.17');
      else expect(entry.glibc, entry.file).toBeNull();
    }
  });

  it.each(Object.entries(FILES))('are what node-gyp-build picks on %s', (id, file) => {
    const [, arch, libc] = id.split('-') as [string, string, string];
    // node-gyp-build reads the platform it serves from npm_config_arch and LIBC.
    const picked = execFileSync(
      process.execPath,
      [
        '-e',
        'console.log(require(process.argv[1]).resolve(process.argv[2]))',
        path.join(root, 'node_modules', 'node-gyp-build'),
        pkg,
      ],
      { encoding: 'utf8', env: { ...process.env, npm_config_arch: arch, LIBC: libc, PREBUILDS_ONLY: '1' } },
    );
    expect(picked.trim()).toBe(path.join(pkg, file));
  });
});

describe('the gate (scripts/check-prebuilds.mjs)', () => {
  it('refuses the binary the system compiler builds: libstdc++, GLIBCXX_ and glibc versions above 2.17', () => {
    const dir = packageWith(
      'system-compiler',
      path.join(root, 'build', 'Release', 'kernel_lock.node'),
      FILES['linux-x64-glibc'],
    );
    const { status, report } = gate(dir);
    expect(status).toBe(1);
    const found = report[0]!.violations.join('\n');
    expect(found).toContain('needs libstdc++.so.6');
    expect(found).toMatch(/requires .*GLIBCXX_3\.4/);
  });

  it(
    'refuses a glibc binary that requires a symbol version newer than GLIBC_2.17',
    () => {
      const dir = packageWith('glibc-2.34', buildTiny('glibc-2.34', 'x86_64-linux-gnu.2.34'), FILES['linux-x64-glibc']);
      const { status, report } = gate(dir);
      expect(status).toBe(1);
      expect(report[0]!.glibc).toBe('2.34');
      expect(report[0]!.violations).toEqual([
        expect.stringMatching(/^requires GLIBC_2\.34: newer than the promised GLIBC_2\.17/),
      ]);

      // The same source pinned to 2.17 passes: the gate reads versions, not the toolchain.
      const pinned = packageWith(
        'glibc-2.17',
        buildTiny('glibc-2.17', 'x86_64-linux-gnu.2.17'),
        FILES['linux-x64-glibc'],
      );
      expect(gate(pinned).status).toBe(0);
    },
    BUILD_MS,
  );

  it(
    "refuses a musl binary with initial-exec TLS, which musl's dlopen() rejects",
    () => {
      const binary = buildTiny('musl-ie-tls', 'x86_64-linux-musl', ['-DIE_TLS']);
      const { status, report } = gate(packageWith('musl-ie-tls', binary, FILES['linux-x64-musl']));
      expect(status).toBe(1);
      expect(report[0]!.violations).toEqual([expect.stringContaining('initial-exec TLS')]);
      expect(
        gate(packageWith('musl-plain', buildTiny('musl-plain', 'x86_64-linux-musl'), FILES['linux-x64-musl'])).status,
      ).toBe(0);
    },
    BUILD_MS,
  );

  it('refuses a binary for another machine, and a file no target names', () => {
    const dir = packageWith('wrong-machine', path.join(pkg, FILES['linux-arm64-glibc']), FILES['linux-x64-glibc']);
    copyFileSync(
      path.join(pkg, FILES['linux-x64-glibc']),
      path.join(dir, 'prebuilds', 'linux-x64', 'kernel-lock.node'),
    );
    const { status, report } = gate(dir);
    expect(status).toBe(1);
    const byFile = Object.fromEntries(report.map((entry) => [entry.file, entry.violations.join('\n')]));
    expect(byFile[FILES['linux-x64-glibc']]).toContain('machine AArch64, expected Advanced Micro Devices X86-64');
    expect(byFile['prebuilds/linux-x64/kernel-lock.node']).toContain('unexpected file');
  });
});

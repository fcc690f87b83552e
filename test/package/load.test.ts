// The load matrix (scripts/prebuild/load-matrix.mjs, docs/INSTALL.md): every
// prebuilt binary runs for real on the oldest systems it is promised to:
//   linux-x64 glibc   on glibc 2.17 + libstdc++ 4.8.5 (CentOS/RHEL 7's
//                     versions) under Node 16, and on Debian 11 under Debian's
//                     own nodejs 12 and under Node 16;
//   linux-arm64 glibc on the aarch64 glibc 2.17 runtime, Node 16 arm64, qemu-user;
//   musl x64/arm64    through musl's own dynamic loader (no musl Node can be had
//                     here), arm64 under qemu-user.
// The library cells lock for real through the prebuild: a flock hand-off
// where the holder's release unlinks the file under the waiter, and an OFD
// conflict. Each system is really that old: the system compiler's build of
// the same code fails there. The first run on a machine downloads the systems
// (about 300 MB from the npm registry and Debian's archive) into the cache.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root, tempDir } from '../helpers.js';
import { buildPackage, buildSharedObject, COLD_BUILD_MS, runScript, script } from './prebuilt.js';

interface Cell {
  id: string;
  target: string;
  system: string;
  probe: 'library' | 'binary' | 'dlopen';
}

interface CellResult extends Cell {
  ok: boolean;
  result: {
    error?: string;
    node?: string;
    arch?: string;
    napi?: number;
    glibc?: string | null;
    musl?: string | null;
    binary?: string;
    steps?: string[];
  };
}

const MATRIX = 'prebuild/load-matrix.mjs';
const cells = JSON.parse(execFileSync(process.execPath, [script(MATRIX), '--list'], { encoding: 'utf8' })) as Cell[];

// Node under qemu-user starts in seconds on an idle machine, tens of seconds on a loaded one.
const CELL_MS = 5 * 60_000;
const work = tempDir('kernel-lock-load-');
const pkg = path.join(work.dir, 'package');

function runCell(id: string, dir = pkg): CellResult {
  const run = runScript(MATRIX, ['--package', dir, '--cell', id, '--json'], 10 * 60_000);
  expect(run.status === 0 || run.status === 1, run.output).toBe(true);
  return (JSON.parse(run.stdout) as CellResult[])[0]!;
}

/** A package like `pkg` whose binary at `file` is replaced by `binary`. */
function packageWithBinary(name: string, file: string, binary: string): string {
  const dir = path.join(work.dir, name);
  mkdirSync(dir);
  for (const entry of ['package.json', 'dist', 'prebuilds'])
    cpSync(path.join(pkg, entry), path.join(dir, entry), { recursive: true });
  copyFileSync(binary, path.join(dir, file));
  return dir;
}

beforeAll(() => {
  buildPackage(pkg);
  const provisioned = runScript(MATRIX, ['--provision'], COLD_BUILD_MS);
  expect(provisioned.status, provisioned.output).toBe(0);
}, COLD_BUILD_MS);

afterAll(() => work.cleanup());

describe('the load matrix', () => {
  it('covers every shipped binary', () => {
    expect([...new Set(cells.map((c) => c.target))].sort()).toEqual([
      'linux-arm64-glibc',
      'linux-arm64-musl',
      'linux-x64-glibc',
      'linux-x64-musl',
    ]);
  });

  it.each(cells.map((c) => [c.id, c] as const))(
    '%s loads and works',
    (_id, c) => {
      const entry = runCell(c.id);
      expect(entry.result.error, JSON.stringify(entry.result)).toBeUndefined();
      expect(entry.ok, JSON.stringify(entry.result)).toBe(true);
      expect(entry.result.arch).toBe(c.target.split('-')[1]);
      if (c.probe === 'dlopen') {
        expect(entry.result.musl).toMatch(/^1\.2\./);
        return;
      }
      expect(entry.result.napi).toBeGreaterThanOrEqual(8);
      expect(entry.result.glibc).toBe(c.system.startsWith('centos7') ? '2.17' : '2.31');
      if (c.probe === 'library') {
        expect(entry.result.binary).toBe(`prebuilds/linux-${entry.result.arch}/kernel-lock.glibc.node`);
        expect(entry.result.steps).toEqual([
          'busy while held',
          'handed off after unlink',
          'ofd busy while held',
          'ofd free after release',
        ]);
      }
    },
    CELL_MS,
  );
});

describe('the systems are really that old: what they refuse', () => {
  const glibcFile = 'prebuilds/linux-x64/kernel-lock.glibc.node';
  const systemBuild = path.join(root, 'build', 'Release', 'kernel_lock.node');

  it(
    'glibc 2.17 and Debian 11 refuse the system compiler’s build of the same code',
    () => {
      const dir = packageWithBinary('system-compiler', glibcFile, systemBuild);
      for (const id of ['linux-x64-glibc@centos7-x64/node16', 'linux-x64-glibc@debian11-x64/distro-node']) {
        const entry = runCell(id, dir);
        expect(entry.ok, id).toBe(false);
        expect(entry.result.error, id).toMatch(/version `(GLIBC|GLIBCXX)_[\d.]+' not found/);
      }
    },
    CELL_MS,
  );

  it(
    "musl's loader refuses a glibc binary and one with initial-exec TLS",
    () => {
      const muslFile = 'prebuilds/linux-x64/kernel-lock.musl.node';
      const glibcInMuslSlot = packageWithBinary('glibc-as-musl', muslFile, path.join(pkg, glibcFile));
      const refused = runCell('linux-x64-musl@musl-x64/harness', glibcInMuslSlot);
      expect(refused.ok).toBe(false);
      expect(refused.result.error).toMatch(/ld-linux-x86-64\.so\.2|symbol not found/);

      // What native/interrupt.cc's initial-exec thread_local did to the musl build.
      const source = path.join(work.dir, 'ie-tls.c');
      writeFileSync(
        source,
        '__attribute__((tls_model("initial-exec"))) __thread int slot;\n' +
          'int napi_register_module_v1(void) { return 0; }\n' +
          'int node_api_module_get_api_version_v1(void) { return slot += 8; }\n',
      );
      const binary = buildSharedObject(source, 'x86_64-linux-musl', path.join(work.dir, 'ie-tls.so'));
      const ieTls = runCell('linux-x64-musl@musl-x64/harness', packageWithBinary('ie-tls', muslFile, binary));
      expect(ieTls.ok).toBe(false);
      expect(ieTls.result.error).toContain('initial-exec TLS resolves to dynamic definition');
    },
    CELL_MS,
  );
});

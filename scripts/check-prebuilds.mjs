#!/usr/bin/env node
// The gate on shipped binaries: reads every prebuilds/<tuple>/*.node with
// readelf and fails when one asks more of a system than docs/INSTALL.md
// promises. For glibc binaries: symbol versions no newer than GLIBC_2.17, no
// GLIBCXX_/CXXABI_/GCC_ requirement and no libstdc++.so.6 or libgcc_s.so.1 at
// all; for musl binaries: musl's libc alone. For both: the right machine, no
// RPATH/RUNPATH, no text relocations, only the N-API entry points exported
// (the static C++ runtime must not interpose on the host's), and a tiny static
// TLS block (a dlopen()ed object with initial-exec TLS draws on glibc's fixed
// reserve; musl's dlopen() refuses initial-exec TLS outright).
// Run by `npm pack` (scripts/prebuildify.mjs) before a binary can ship, and by
// test/package/prebuilds.test.ts.
//
// Usage: node scripts/check-prebuilds.mjs [--json] [--complete] [PACKAGE_DIR]
//   --complete  also fail when one of the four targets is missing
//   exit 0 when every binary keeps the promise, 1 otherwise (each violation named)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareVersions, highestVersion, readElf } from './prebuild/elf.mjs';
import { EXPORTS, GLIBC_FLOOR, GLIBC_LIBRARIES, MUSL_LIBRARIES, TARGETS, targetOf } from './prebuild/targets.mjs';

/** Bytes of static TLS a binary may use (glibc keeps at least 1664 spare for dlopen()ed objects). */
export const MAX_TLS = 256;

/** Every violation of the promise by one binary; empty when it keeps it. */
export function violations(relativePath, facts) {
  const target = targetOf(relativePath);
  if (!target) return [`unexpected file: not one of ${TARGETS.map((t) => t.file).join(', ')}`];
  const found = [];
  if (facts.elfClass !== 'ELF64') found.push(`ELF class ${facts.elfClass}, expected ELF64`);
  if (!facts.type.startsWith('DYN')) found.push(`ELF type ${facts.type}, expected a shared object`);
  if (facts.machine !== target.machine) found.push(`machine ${facts.machine}, expected ${target.machine}`);
  if (facts.runpath.length > 0) found.push(`RPATH/RUNPATH ${facts.runpath.join(', ')}`);
  if (facts.textrel) found.push('text relocations (DT_TEXTREL)');
  if (facts.tlsSize > MAX_TLS) found.push(`static TLS of ${facts.tlsSize} bytes, more than ${MAX_TLS}`);
  const extraExports = facts.exports.filter((name) => !EXPORTS.includes(name));
  const missingExports = EXPORTS.filter((name) => !facts.exports.includes(name));
  if (extraExports.length > 0) found.push(`exports more than the N-API entry points: ${extraExports.join(', ')}`);
  if (missingExports.length > 0) found.push(`does not export ${missingExports.join(', ')}`);

  const allowed = target.libc === 'glibc' ? GLIBC_LIBRARIES : MUSL_LIBRARIES;
  for (const library of facts.needed) {
    if (!allowed.has(library))
      found.push(`needs ${library} (a ${target.libc} binary may need only ${[...allowed].join(', ')})`);
  }
  if (target.libc === 'musl') {
    if (facts.staticTls) found.push("initial-exec TLS (DF_STATIC_TLS): musl's dlopen() refuses to load it");
    for (const need of facts.versionNeeds)
      found.push(`requires symbol version ${need.version} of ${need.file} (musl has none)`);
    return found;
  }
  const tooNew = new Set();
  const foreign = new Map(); // library -> versions of other families (GLIBCXX_, CXXABI_, GCC_, …)
  for (const need of facts.versionNeeds) {
    const glibc = need.version.match(/^GLIBC_([\d.]+)$/);
    if (glibc && compareVersions(glibc[1], GLIBC_FLOOR) > 0) tooNew.add(glibc[1]);
    if (!glibc) foreign.set(need.file, [...(foreign.get(need.file) ?? []), need.version]);
  }
  if (tooNew.size > 0) {
    const list = [...tooNew].sort(compareVersions).map((version) => `GLIBC_${version}`);
    found.push(`requires ${list.join(', ')}: newer than the promised GLIBC_${GLIBC_FLOOR}`);
  }
  for (const [library, versions] of foreign) {
    const list = versions.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    found.push(`requires ${list.join(', ')} of ${library}: only GLIBC_ versions up to ${GLIBC_FLOOR} are promised`);
  }
  return found;
}

/** Facts and violations for every binary under `packageDir`/prebuilds. */
export function checkPackage(packageDir, { complete = false } = {}) {
  const prebuilds = path.join(packageDir, 'prebuilds');
  const files = fs.existsSync(prebuilds)
    ? fs
        .readdirSync(prebuilds, { recursive: true })
        .map((entry) => path.join('prebuilds', String(entry)))
        .filter((file) => fs.statSync(path.join(packageDir, file)).isFile())
        .sort()
    : [];
  const report = files.map((file) => {
    const facts = readElf(path.join(packageDir, file));
    return {
      file,
      target: targetOf(file)?.id ?? null,
      machine: facts.machine,
      needed: facts.needed,
      glibc: highestVersion(facts, 'GLIBC') ?? null,
      glibcxx: highestVersion(facts, 'GLIBCXX') ?? null,
      exports: facts.exports,
      tlsSize: facts.tlsSize,
      violations: violations(file, facts),
    };
  });
  if (complete) {
    for (const target of TARGETS) {
      if (!files.includes(path.join(...target.file.split('/')))) {
        report.push({ file: target.file, target: target.id, violations: ['missing: the package must ship it'] });
      }
    }
  }
  return report;
}

function main() {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const complete = args.includes('--complete');
  const dir = path.resolve(
    args.find((arg) => !arg.startsWith('--')) ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'),
  );
  const report = checkPackage(dir, { complete });
  const failed = report.filter((entry) => entry.violations.length > 0);
  if (json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    for (const entry of report) {
      const needs = entry.glibc ? `GLIBC_${entry.glibc}` : 'no symbol versions';
      const cxx = entry.glibcxx ? `, GLIBCXX_${entry.glibcxx}` : '';
      const status = entry.violations.length === 0 ? 'ok' : 'FAILS';
      console.log(
        `${status.padEnd(5)} ${entry.file}: ${entry.machine ?? '-'}; ${needs}${cxx}; needs ${entry.needed?.join(' ') ?? '-'}`,
      );
      for (const violation of entry.violations) console.log(`      ${violation}`);
    }
    if (report.length === 0) console.log(`no prebuilt binaries under ${path.join(dir, 'prebuilds')}`);
    console.log(
      failed.length === 0
        ? `check-prebuilds: ${report.length} binaries keep the promise (glibc ≥ ${GLIBC_FLOOR}, no libstdc++; musl)`
        : `check-prebuilds: ${failed.length} of ${report.length} binaries break the promise`,
    );
  }
  process.exitCode = failed.length > 0 || (complete && report.length === 0) ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (error) {
    console.error(`check-prebuilds: ${error.message}`);
    process.exitCode = 2;
  }
}

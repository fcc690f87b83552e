// What a shared object asks of the system that loads it, read with binutils'
// readelf (any architecture's ELF, from any host): its machine, the libraries
// it names (DT_NEEDED), the symbol versions it requires (.gnu.version_r, the
// table the dynamic loader checks before anything runs), what it exports and
// imports, and its static TLS size.
import { spawnSync } from 'node:child_process';

/**
 * @typedef {object} ElfFacts
 * @property {string} elfClass     "ELF64"
 * @property {string} type         "DYN (Shared object file)"
 * @property {string} machine      e.g. "AArch64"
 * @property {string[]} needed     DT_NEEDED, in order
 * @property {string[]} runpath    DT_RPATH and DT_RUNPATH entries
 * @property {boolean} textrel     DT_TEXTREL (text relocations) present
 * @property {boolean} staticTls   DF_STATIC_TLS: initial-exec TLS, which musl's dlopen() refuses
 * @property {{file: string, version: string}[]} versionNeeds  one per required symbol version
 * @property {string[]} exports    defined dynamic symbols of default visibility
 * @property {string[]} imports    undefined dynamic symbols (without their @VERSION)
 * @property {number} tlsSize      memory size of the PT_TLS segment, 0 when none
 */

/** @returns {ElfFacts} */
export function readElf(file) {
  const result = spawnSync('readelf', ['-h', '-l', '-d', '-V', '--dyn-syms', '-W', file], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error?.code === 'ENOENT') {
    throw new Error('readelf not found: install binutils (apt-get install binutils) to inspect prebuilt binaries');
  }
  if (result.status !== 0) throw new Error(`readelf ${file} failed: ${result.stderr.trim()}`);
  return parse(result.stdout);
}

function parse(text) {
  const facts = {
    elfClass: field(text, 'Class'),
    type: field(text, 'Type'),
    machine: field(text, 'Machine'),
    needed: [],
    runpath: [],
    textrel: false,
    staticTls: false,
    versionNeeds: [],
    exports: [],
    imports: [],
    tlsSize: 0,
  };
  let needsFile = '';
  let inVersionNeeds = false;
  for (const line of text.split('\n')) {
    const needed = line.match(/\(NEEDED\)\s+Shared library: \[(.+)\]/);
    if (needed) facts.needed.push(needed[1]);
    const runpath = line.match(/\((?:RPATH|RUNPATH)\)\s+Library r(?:un)?path: \[(.*)\]/);
    if (runpath) facts.runpath.push(runpath[1]);
    if (/\(TEXTREL\)/.test(line) || /\(FLAGS\).*\bTEXTREL\b/.test(line)) facts.textrel = true;
    if (/\(FLAGS\).*\bSTATIC_TLS\b/.test(line)) facts.staticTls = true;
    const tls = line.match(/^\s+TLS\s+(?:0x[0-9a-f]+\s+){4}(0x[0-9a-f]+)/i);
    if (tls) facts.tlsSize = Number.parseInt(tls[1], 16);

    // .gnu.version_r: "Version needs section" lists, per library, the versions required.
    if (/^Version needs section/.test(line)) inVersionNeeds = true;
    else if (/^(Version (symbols|definition) section|Symbol table|Dynamic section|Program Headers)/.test(line)) {
      inVersionNeeds = false;
    }
    if (inVersionNeeds) {
      const file = line.match(/\bFile: (\S+)/);
      if (file) needsFile = file[1];
      const name = line.match(/\bName: (\S+)\s+Flags:/);
      if (name) facts.versionNeeds.push({ file: needsFile, version: name[1] });
    }

    // .dynsym rows: "Num: Value Size Type Bind Vis Ndx Name"
    const sym = line.match(/^\s*\d+: [0-9a-f]+\s+\d+\s+(\w+)\s+(\w+)\s+(\w+)\s+(\w+)\s+(\S+)(?:\s+\(\d+\))?$/i);
    if (sym) {
      const [, type, bind, visibility, ndx, rawName] = sym;
      const name = rawName.split('@')[0];
      if (bind === 'LOCAL' || !name) continue;
      if (ndx === 'UND') facts.imports.push(name);
      else if (visibility === 'DEFAULT' && type !== 'SECTION') facts.exports.push(name);
    }
  }
  return facts;
}

function field(text, name) {
  return text.match(new RegExp(`^\\s+${name}:\\s+(.+)$`, 'm'))?.[1].trim() ?? '';
}

/** Compares dotted versions numerically ("2.17" < "2.3.4" is false): negative, 0 or positive. */
export function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const diff = (x[i] ?? 0) - (y[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

/** The highest version of a family ("GLIBC", "GLIBCXX", …) required, or undefined when none is. */
export function highestVersion(facts, family) {
  const prefix = `${family}_`;
  return facts.versionNeeds
    .map((need) => need.version)
    .filter((version) => version.startsWith(prefix) && /^[\d.]+$/.test(version.slice(prefix.length)))
    .map((version) => version.slice(prefix.length))
    .sort(compareVersions)
    .at(-1);
}

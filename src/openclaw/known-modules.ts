// The runtime modules kernel-lock knows how to replace, build by build.
//
// A runtime module is recognised in two steps, by content only (bundlers
// give chunks hashed file names and minified export names):
//   1. a *family* says "this source is (or contains) the runtime's lock
//      module X", from a marker its bundler leaves in the text;
//   2. the sha256 of the whole source must then be one of the *builds*
//      below, each of which says which runtime release ships it, which
//      implementation serves it, and under which export names.
// A family match with an unknown hash is refused: the runtime keeps its own
// module, and one line on stderr says so. To support a new runtime release,
// add a build here (and, if its contract changed, an implementation in
// implementations.ts); to support a new kind of module, add a family.
//
// Some lock modules are not runtime chunks but a file of their own npm
// package (`@openclaw/fs-safe/dist/file-lock.js`). Such a file can be a thin
// facade whose bytes stay the same while the package behind it changes its
// contract (fs-safe 0.13.1 and 0.18.1 ship the same file-lock.js), so its
// builds also name the package releases (`name@version`, immutable on the
// registry) whose contract the implementation was checked against.

/** A kind of runtime module, recognised by a marker in its source. */
export interface ModuleFamily {
  /** The runtime's source module, as its maintainers name it. */
  module: string;
  /** Text whose presence says a source is this module (checked on bytes, before any decoding). */
  marker: string;
}

/** One published build of a runtime module that kernel-lock serves. */
export interface KnownBuild {
  /** The runtime release(s) that ship this exact build, e.g. `openclaw@2026.4.24`. */
  runtime: string;
  /** The family (ModuleFamily.module) it belongs to. */
  module: string;
  /** sha256 of the module's source text, hex. */
  sha256: string;
  /**
   * For a file of its own npm package: the package releases (`name@version`,
   * from the package.json above the file) it is served from. Omitted for
   * runtime chunks, whose hash pins everything.
   */
  packages?: readonly string[];
  /** The implementation that serves it (a key of IMPLEMENTATIONS in implementations.ts). */
  implementation: string;
  /** Export name in the runtime's build → member of the implementation. */
  exports: Readonly<Record<string, string>>;
  /** Local names the original module imports from the runtime and the implementation needs (its error classes). */
  runtimeImports: readonly string[];
}

/** The runtime's session lock module (2026.4.24; a no-op from 2026.8, under another name). */
export const SESSION_WRITE_LOCK_MODULE = 'src/agents/session-write-lock.ts';

/** The file lock of `@openclaw/fs-safe`, which the runtime's remaining file locks go through from 2026.8. */
export const FS_SAFE_FILE_LOCK_MODULE = '@openclaw/fs-safe/file-lock';

/** The seven exports of `@openclaw/fs-safe/file-lock`, unminified (it is a package file, not a bundle chunk). */
const FS_SAFE_FILE_LOCK_EXPORTS = Object.fromEntries(
  [
    'acquireFileLock',
    'acquireFileLockSync',
    'createFileLockManager',
    'drainFileLockManagerForTest',
    'resetFileLockManagerForTest',
    'withFileLock',
    'withFileLockSync',
  ].map((name) => [name, name]),
);

/** The families kernel-lock recognises. */
export const MODULE_FAMILIES: readonly ModuleFamily[] = [
  {
    module: SESSION_WRITE_LOCK_MODULE,
    // rolldown's region marker; the newline keeps session-write-lock-error.ts out.
    marker: '//#region src/agents/session-write-lock.ts\n',
  },
  {
    module: FS_SAFE_FILE_LOCK_MODULE,
    // The default manager key of file-lock.js (0.5.6 … 0.21.0). No other file of
    // the runtime 2026.9.6 has it, the self-contained managed-handoff bundle included.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: source text to find, not a template
    marker: 'return managerKey ?? `fs-safe.file-lock:${targetPath}`;',
  },
];

/** Every build kernel-lock serves. */
export const KNOWN_BUILDS: readonly KnownBuild[] = [
  {
    runtime: 'openclaw@2026.4.24',
    module: SESSION_WRITE_LOCK_MODULE,
    sha256: '22001ba416be5bafa87da499205de13a9c7f3c44cd06323f0229c4a7b18142c7',
    implementation: 'session-write-lock@2026.4.24',
    exports: {
      a: 'resetSessionWriteLockStateForTest',
      i: 'drainSessionWriteLockStateForTest',
      n: 'acquireSessionWriteLock',
      o: 'resolveSessionLockMaxHoldFromTimeout',
      r: 'cleanStaleLockFiles',
      t: '__testing',
    },
    runtimeImports: ['SessionWriteLockTimeoutError'],
  },
  {
    // openclaw 2026.9.6 pins @openclaw/fs-safe 0.18.1; 0.21.0 (the latest) ships the
    // same file-lock.js and the same declarations. test/openclaw/fs-safe/contract.test.ts
    // checks kernel-lock/fs-safe against both. Earlier runtimes pin other releases:
    // 2026.9.5 → 0.13.1 (same file-lock.js, other declarations: refused by package),
    // 2026.8.1 … 2026.9.4 → 0.5.6 … 0.8.5 (another file-lock.js: refused by hash).
    runtime: 'openclaw@2026.9.6',
    module: FS_SAFE_FILE_LOCK_MODULE,
    sha256: '1d5d0ddd401675289e5ec54dd5b128bbcb3997c87a6d497c0fffaf1a6b185be9',
    packages: ['@openclaw/fs-safe@0.18.1', '@openclaw/fs-safe@0.21.0'],
    implementation: 'fs-safe/file-lock@0.18.1',
    exports: FS_SAFE_FILE_LOCK_EXPORTS,
    runtimeImports: [],
  },
];

/** The runtime releases with at least one module kernel-lock serves, in table order. */
export function knownRuntimes(builds: readonly KnownBuild[] = KNOWN_BUILDS): string[] {
  return [...new Set(builds.map((build) => build.runtime))];
}

/** What a set of builds covers, for messages: `openclaw@2026.4.24`, or `@openclaw/fs-safe@0.18.1, … (openclaw@2026.9.6)`. */
export function describeBuilds(builds: readonly KnownBuild[]): string {
  const parts = builds.map((build) =>
    build.packages === undefined ? build.runtime : `${build.packages.join(', ')} (${build.runtime})`,
  );
  return [...new Set(parts)].join(', ') || 'none';
}

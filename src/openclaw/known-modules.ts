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
  /** The implementation that serves it (a key of IMPLEMENTATIONS in implementations.ts). */
  implementation: string;
  /** Export name in the runtime's build → member of the implementation. */
  exports: Readonly<Record<string, string>>;
  /** Local names the original module imports from the runtime and the implementation needs (its error classes). */
  runtimeImports: readonly string[];
}

/** The families kernel-lock recognises. */
export const MODULE_FAMILIES: readonly ModuleFamily[] = [
  {
    module: 'src/agents/session-write-lock.ts',
    // rolldown's region marker; the newline keeps session-write-lock-error.ts out.
    marker: '//#region src/agents/session-write-lock.ts\n',
  },
];

/** Every build kernel-lock serves. */
export const KNOWN_BUILDS: readonly KnownBuild[] = [
  {
    runtime: 'openclaw@2026.4.24',
    module: 'src/agents/session-write-lock.ts',
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
];

/** The runtime releases with at least one module kernel-lock serves, in table order. */
export function knownRuntimes(builds: readonly KnownBuild[] = KNOWN_BUILDS): string[] {
  return [...new Set(builds.map((build) => build.runtime))];
}

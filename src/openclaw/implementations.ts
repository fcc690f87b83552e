// What serves each recognised runtime module (known-modules.ts names them):
// a function from the runtime's own classes the original module imported
// (none for fs-safe, whose errors are plain Errors with a code) to the
// members the runtime expects. Served modules call
// bindRuntimeModule() from kernel-lock's library entry, so every runtime
// module and any direct use of kernel-lock in the process share one copy
// of the lock state.

import type { SessionWriteLockTimeoutParams } from '../session/error.js';
import { createSessionWriteLockModule } from '../session/module.js';
import * as fsSafe from './fs-safe/index.js';
import { sessionEngineFromEnvironment } from './session-engine.js';

type Implementation = (runtime: Readonly<Record<string, unknown>>) => object;

type ErrorClass<P> = new (params: P) => Error;

function runtimeClass<P>(runtime: Readonly<Record<string, unknown>>, name: string): ErrorClass<P> {
  const value = runtime[name];
  if (typeof value !== 'function') {
    throw new TypeError(`kernel-lock/openclaw: the runtime's ${name} is not a class (got ${typeof value})`);
  }
  return value as ErrorClass<P>;
}

/** Every implementation, by the name known builds refer to. */
export const IMPLEMENTATIONS: Readonly<Record<string, Implementation>> = {
  // openclaw 2026.4.24: src/agents/session-write-lock.ts, throwing the
  // runtime's SessionWriteLockTimeoutError (src/agents/session-write-lock-error.ts).
  'session-write-lock@2026.4.24': (runtime) => {
    const TimeoutError = runtimeClass<SessionWriteLockTimeoutParams>(runtime, 'SessionWriteLockTimeoutError');
    return createSessionWriteLockModule((params) => new TimeoutError(params), {
      engine: sessionEngineFromEnvironment(),
    });
  },
  // @openclaw/fs-safe 0.18.1 / 0.21.0: dist/file-lock.js, i.e. kernel-lock/fs-safe.
  // Its state (managers, held locks) lives in process-wide tables, so the
  // runtime and any direct import of kernel-lock/fs-safe share it.
  'fs-safe/file-lock@0.18.1': () => fsSafe,
};

/**
 * Builds the members of a served runtime module: `implementation` bound to
 * the runtime's own `runtimeImports`, checked to have every member in `members`.
 */
export function bindRuntimeModule(
  implementation: string,
  runtimeImports: Readonly<Record<string, unknown>>,
  members: readonly string[],
): Record<string, unknown> {
  const make = IMPLEMENTATIONS[implementation];
  if (make === undefined) {
    throw new Error(
      `kernel-lock/openclaw: no implementation named ${JSON.stringify(implementation)} in this kernel-lock`,
    );
  }
  const bound = make(runtimeImports) as Record<string, unknown>;
  const missing = members.filter((member) => !(member in bound));
  if (missing.length > 0) {
    throw new Error(`kernel-lock/openclaw: ${implementation} lacks ${missing.join(', ')}`);
  }
  return bound;
}

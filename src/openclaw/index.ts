// kernel-lock/openclaw: what the `--import` hook (kernel-lock/openclaw/register)
// serves the runtime with, and the table of runtime builds it knows.

export { bindRuntimeModule, IMPLEMENTATIONS } from './implementations.js';
export type { KnownBuild, ModuleFamily } from './known-modules.js';
export {
  describeBuilds,
  FS_SAFE_FILE_LOCK_MODULE,
  KNOWN_BUILDS,
  knownRuntimes,
  MODULE_FAMILIES,
  SESSION_WRITE_LOCK_MODULE,
} from './known-modules.js';
export type { Recognition, RecognizeOptions } from './recognize.js';
export { recognize, sourceHash } from './recognize.js';
export { SESSION_PG_URL_ENV } from './session-engine.js';

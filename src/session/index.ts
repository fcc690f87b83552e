// kernel-lock/session: a drop-in replacement for the agent runtime's session
// write lock (same names, shapes and messages), built on kernel locks.
export type { SessionWriteLock, SessionWriteLockOptions } from './acquire.js';
export { acquireSessionWriteLock } from './acquire.js';
export type { CleanStaleLockFilesOptions, SessionLockInspection } from './clean.js';
export { cleanStaleLockFiles } from './clean.js';
export { resolveSessionLockMaxHoldFromTimeout } from './durations.js';
export { SessionWriteLockError } from './error.js';
export type { LegacyMarkerPolicy } from './legacy-markers.js';

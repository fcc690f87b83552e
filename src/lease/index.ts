// Fenced leases: a lock whose holder can be superseded safely.
export { lease } from './acquire.js';
export type { LeaseStaleReason } from './errors.js';
export { ELEASESTALE, ENOTLEASEFILE, LeaseStaleError } from './errors.js';
export { Lease } from './lease.js';
export type { LeaseOptions, LeaseWriteOptions } from './options.js';

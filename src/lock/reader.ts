// Descriptors opened only to read a lock file: a probe, an owner record.
// Closing any descriptor of a file drops this process's POSIX locks on it, so
// these are closed through the process-wide posix table (posix-table.ts), and
// therefore opened by the addon as well, never with node:fs. In a
// worker_thread Node tracks every descriptor fs.open() returns until
// fs.close() closes it; one closed behind its back stays tracked, so the next
// open that reused its number printed "File descriptor N opened in unmanaged
// mode twice", and Node closes the numbers it still tracks when the worker
// exits (trackUnmanagedFds), whatever they may have come to name by then.
import { type NativePath, native } from '../native/binding.js';
import { type SystemError, systemError } from './errors.js';
import { closeDescriptor } from './posix-table.js';

/**
 * Opens an existing file read-only (O_NOFOLLOW, O_NONBLOCK, close-on-exec; never creates it): the descriptor, or a
 * negative errno (-ENOENT when it is gone). Close it with closeReader().
 */
export function openReader(path: NativePath): number {
  try {
    return native.openReader(path);
  } catch (error) {
    // A path too long for the addon's buffer: reported like open(2)'s own failures.
    const errno = (error as { errno?: unknown }).errno;
    if (typeof errno === 'number') return errno;
    throw error;
  }
}

/** The error for a failed openReader() (its negative errno) on `path`. */
export function openReaderError(errno: number, path: NativePath): SystemError {
  return systemError(errno, 'open', typeof path === 'string' ? path : path.toString());
}

/** Closes a descriptor from openReader() without dropping a posix lock of this process. */
export const closeReader: (fd: number) => void = closeDescriptor;

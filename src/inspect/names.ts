// The lock files of a directory, by their raw names. A name is bytes: it is
// read with readdir's 'buffer' encoding and joined to the directory as bytes,
// so `sess-\xff\xfe.lock` is inspected at its real path (decoding it as
// UTF-8 would name a file that does not exist, and a held lock would read
// as free). Listing and sorting run as steps, sliced for the event loop.
import path from 'node:path';
import { checkpoint, readdirRaw, type Steps } from '../proc/steps.js';

/** Merges per checkpoint while sorting: a few microseconds of work each. */
const MERGES_PER_CHECKPOINT = 64;

/** Names filtered or joined per checkpoint. */
const NAMES_PER_CHECKPOINT = 512;

/** Whether `name` is longer than `ending` and ends with it. */
function endsWith(name: Buffer, ending: Buffer): boolean {
  const offset = name.length - ending.length;
  if (offset <= 0) return false;
  for (let i = 0; i < ending.length; i++) if (name[offset + i] !== ending[i]) return false;
  return true;
}

/** The absolute directory as bytes, without a trailing slash (except for "/"). */
function directoryBytes(dir: string | Buffer): Buffer {
  if (typeof dir === 'string') return Buffer.from(path.resolve(dir));
  const absolute = dir[0] === 0x2f ? dir : Buffer.concat([Buffer.from(`${process.cwd()}/`), dir]);
  let end = absolute.length;
  while (end > 1 && absolute[end - 1] === 0x2f) end--;
  return absolute.subarray(0, end);
}

/** Sorts byte strings in byte order (bottom-up merge sort, giving the loop back between merges). */
export function* sortNames(names: readonly Buffer[]): Steps<Buffer[]> {
  let from = names.slice();
  let to = new Array<Buffer>(from.length);
  let merges = 0;
  for (let width = 1; width < from.length; width *= 2) {
    for (let low = 0; low < from.length; low += 2 * width) {
      const middle = Math.min(low + width, from.length);
      const high = Math.min(low + 2 * width, from.length);
      let i = low;
      let j = middle;
      for (let k = low; k < high; k++) {
        to[k] = j >= high || (i < middle && Buffer.compare(from[i]!, from[j]!) <= 0) ? from[i++]! : from[j++]!;
      }
      if (++merges % MERGES_PER_CHECKPOINT === 0) yield* checkpoint();
    }
    [from, to] = [to, from];
  }
  return from;
}

/** The paths (as bytes) of the names in `dir` ending with `suffix`, sorted; throws like readdir (ENOENT, ENOTDIR). */
export function* lockFilePaths(dir: string | Buffer, suffix: string): Steps<Buffer[]> {
  if (typeof suffix !== 'string') {
    throw new TypeError(`kernel-lock: option suffix must be a string, got ${typeof suffix}`);
  }
  const ending = Buffer.from(suffix);
  const base = directoryBytes(dir);
  const names = yield* readdirRaw(base);
  const matching: Buffer[] = [];
  for (let i = 0; i < names.length; i++) {
    if (endsWith(names[i]!, ending)) matching.push(names[i]!);
    if (i % NAMES_PER_CHECKPOINT === 0) yield* checkpoint();
  }
  const separator = Buffer.from(base.length === 1 && base[0] === 0x2f ? '' : '/');
  const sorted = yield* sortNames(matching);
  const paths: Buffer[] = [];
  for (const name of sorted) {
    paths.push(Buffer.concat([base, separator, name]));
    if (paths.length % NAMES_PER_CHECKPOINT === 0) yield* checkpoint();
  }
  return paths;
}

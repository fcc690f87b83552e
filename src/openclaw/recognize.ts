// Recognition of runtime modules by content: is this module source one kernel-lock
// replaces, and if so, which known build is it (see known-modules.ts)? Pure:
// it reads nothing but its arguments, so the loader hook and the
// `kernel-lock openclaw` command decide exactly alike.
import { createHash } from 'node:crypto';
import { describeBuilds, KNOWN_BUILDS, type KnownBuild, MODULE_FAMILIES, type ModuleFamily } from './known-modules.js';
import { replacementSource } from './replacement.js';

/** What to do with one module. */
export type Recognition =
  /** Not a module kernel-lock replaces. */
  | { kind: 'none' }
  /** A known build: serve `source` instead. */
  | { kind: 'serve'; build: KnownBuild; sha256: string; source: string }
  /** A module kernel-lock replaces, in a build it does not know: leave it alone and say so. */
  | { kind: 'refuse'; module: string; sha256: string; reason: string };

/** Where recognition looks, and what it serves from. */
export interface RecognizeOptions {
  /** URL of kernel-lock's `kernel-lock/openclaw` library entry (what served modules import). */
  libraryUrl: string;
  families?: readonly ModuleFamily[];
  builds?: readonly KnownBuild[];
  /**
   * `name@version` of the npm package the module's file belongs to, or null
   * if none; asked only when a family matched and a build names packages.
   */
  packageOf?: () => string | null;
}

type Source = string | Uint8Array;

function contains(source: Source, marker: string): boolean {
  if (typeof source === 'string') return source.includes(marker);
  return Buffer.from(source.buffer, source.byteOffset, source.byteLength).includes(marker);
}

function text(source: Source): string {
  return typeof source === 'string'
    ? source
    : Buffer.from(source.buffer, source.byteOffset, source.byteLength).toString('utf8');
}

/** The family whose marker `source` carries, if any (a cheap byte search). */
export function familyOf(
  source: Source,
  families: readonly ModuleFamily[] = MODULE_FAMILIES,
): ModuleFamily | undefined {
  return families.find((family) => contains(source, family.marker));
}

/** sha256 of a module's source, hex. */
export function sourceHash(source: Source): string {
  return createHash('sha256')
    .update(typeof source === 'string' ? Buffer.from(source, 'utf8') : source)
    .digest('hex');
}

/** Decides what to do with one module source. */
export function recognize(source: Source, options: RecognizeOptions): Recognition {
  const family = familyOf(source, options.families);
  if (family === undefined) return { kind: 'none' };
  const builds = (options.builds ?? KNOWN_BUILDS).filter((b) => b.module === family.module);
  const sha256 = sourceHash(source);
  const sameHash = builds.filter((b) => b.sha256 === sha256);
  if (sameHash.length === 0) {
    return {
      kind: 'refuse',
      module: family.module,
      sha256,
      reason: `its build (sha256 ${sha256.slice(0, 16)}…) is not one kernel-lock knows (it knows ${describeBuilds(builds)})`,
    };
  }
  let origin: string | null | undefined;
  const build = sameHash.find((b) => {
    if (b.packages === undefined) return true;
    origin ??= options.packageOf?.() ?? null;
    return origin !== null && b.packages.includes(origin);
  });
  if (build === undefined) {
    return {
      kind: 'refuse',
      module: family.module,
      sha256,
      reason:
        `it belongs to ${origin ?? 'no package kernel-lock can find'}, not a release kernel-lock was checked against ` +
        `(it knows ${describeBuilds(sameHash)}; this file is the same in releases with another contract)`,
    };
  }
  try {
    return { kind: 'serve', build, sha256, source: replacementSource(build, text(source), options.libraryUrl, sha256) };
  } catch (error) {
    return { kind: 'refuse', module: family.module, sha256, reason: (error as Error).message };
  }
}

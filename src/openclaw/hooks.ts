// The module loader hook: every ES module the process loads passes through
// `load`; a runtime module kernel-lock recognises (recognize.ts) is served
// by kernel-lock, one it recognises in an unknown build is left alone with
// one line on stderr, everything else is untouched. Used in-thread through
// module.registerHooks() (Node ≥ 22.15) or off-thread through
// module.register() (older Nodes), which loads this file by its URL.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { recognize } from './recognize.js';

/** kernel-lock's library entry (dist/openclaw.js), which served modules import. */
const LIBRARY_URL = new URL('../openclaw.js', import.meta.url).href;

const said = new Set<string>();

/** Writes a line once per process (refusals would otherwise repeat for every importer). */
function sayOnce(line: string): void {
  if (said.has(line)) return;
  said.add(line);
  process.stderr.write(`${line}\n`);
}

/** `name@version` of the package a file belongs to, for messages; null if none is found. */
function packageOf(file: string): string | null {
  let dir = path.dirname(file);
  for (let depth = 0; depth < 12; depth++) {
    try {
      const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (typeof manifest.name === 'string') return `${manifest.name}@${String(manifest.version)}`;
    } catch {
      // no manifest here (or unreadable): look further up
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return null;
}

/** What a load hook returns. */
export interface LoadResult {
  format?: string | null | undefined;
  source?: string | ArrayBuffer | Uint8Array | null | undefined;
  shortCircuit?: boolean;
}

/** The hook's decision for one loaded module; never throws (a failure leaves the module as it was). */
export function transform(url: string, result: LoadResult): LoadResult {
  if (result.format !== 'module' || result.source == null || !url.startsWith('file:')) return result;
  const source = result.source instanceof ArrayBuffer ? new Uint8Array(result.source) : result.source;
  try {
    let origin: string | null | undefined;
    const packageOfUrl = (): string | null => {
      if (origin === undefined) origin = packageOf(fileURLToPath(url));
      return origin;
    };
    const decision = recognize(source, { libraryUrl: LIBRARY_URL, packageOf: packageOfUrl });
    if (decision.kind === 'none') return result;
    const file = fileURLToPath(url);
    const from = packageOfUrl();
    if (decision.kind === 'refuse') {
      sayOnce(
        `kernel-lock/openclaw: not replacing ${decision.module}${from === null ? '' : ` of ${from}`} (${file}): ` +
          `${decision.reason}; the runtime keeps its own lock. Upgrade kernel-lock, or run without --import ${'kernel-lock/openclaw/register'}.`,
      );
      return result;
    }
    if (process.env.KERNEL_LOCK_OPENCLAW_VERBOSE === '1') {
      const of =
        from === null || from === decision.build.runtime
          ? decision.build.runtime
          : `${from} (${decision.build.runtime})`;
      sayOnce(`kernel-lock/openclaw: serving ${decision.build.module} of ${of} from kernel-lock (${file})`);
    }
    return { ...result, source: decision.source };
  } catch (error) {
    sayOnce(`kernel-lock/openclaw: could not examine ${url}, left as it is: ${(error as Error).message}`);
    return result;
  }
}

type NextLoadSync = (url: string, context?: unknown) => LoadResult;
type NextLoad = (url: string, context?: unknown) => Promise<LoadResult>;

/** The synchronous load hook (module.registerHooks). */
export function loadSync(url: string, context: unknown, nextLoad: NextLoadSync): LoadResult {
  return transform(url, nextLoad(url, context));
}

/** The asynchronous load hook (module.register). */
export async function load(url: string, context: unknown, nextLoad: NextLoad): Promise<LoadResult> {
  return transform(url, await nextLoad(url, context));
}

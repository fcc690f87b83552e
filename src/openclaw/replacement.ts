// The module served in place of a recognised runtime module: it keeps the
// original's imports of the runtime's own error classes (so errors we throw
// are instances of the classes the runtime checks against), binds the
// implementation from kernel-lock's library entry (one copy of the lock
// state per process, shared with any other use of kernel-lock), and exports
// its members under the build's minified export names.
import type { KnownBuild } from './known-modules.js';

/** One named import of a module: `import { <imported> as <local> } from "<specifier>"`. */
interface NamedImport {
  imported: string;
  local: string;
  specifier: string;
}

const IMPORT_LINE = /^import \{([^}]*)\} from ("[^"\n]+"|'[^'\n]+');?$/gm;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** The named imports of an ES module's top-level `import { … } from "…"` lines. */
export function namedImports(source: string): NamedImport[] {
  const found: NamedImport[] = [];
  for (const match of source.matchAll(IMPORT_LINE)) {
    const quoted = match[2]!;
    const specifier = quoted.slice(1, -1);
    for (const part of match[1]!.split(',')) {
      const words = part.trim().split(/\s+/);
      if (words.length === 1 && IDENTIFIER.test(words[0]!)) {
        found.push({ imported: words[0]!, local: words[0]!, specifier });
      } else if (words.length === 3 && words[1] === 'as' && IDENTIFIER.test(words[0]!) && IDENTIFIER.test(words[2]!)) {
        found.push({ imported: words[0]!, local: words[2]!, specifier });
      }
    }
  }
  return found;
}

/**
 * The source of the module that replaces `original` (a build of `build`),
 * importing the implementation from `libraryUrl`. Throws when the original
 * lacks an import the implementation needs (then the module is refused).
 */
export function replacementSource(build: KnownBuild, original: string, libraryUrl: string, sha256: string): string {
  const imports = namedImports(original);
  const kept = build.runtimeImports.map((local) => {
    const found = imports.find((i) => i.local === local);
    if (found === undefined) throw new Error(`the module does not import ${local}`);
    return found;
  });
  const members = Object.entries(build.exports);
  return [
    `// kernel-lock: ${build.module} of ${build.runtime} (sha256 ${sha256}), served by kernel-lock (${build.implementation}).`,
    ...kept.map((i) => `import { ${i.imported} as ${i.local} } from ${JSON.stringify(i.specifier)};`),
    `import { bindRuntimeModule } from ${JSON.stringify(libraryUrl)};`,
    `const served = bindRuntimeModule(${JSON.stringify(build.implementation)}, { ${kept.map((i) => i.local).join(', ')} }, ${JSON.stringify(members.map(([, member]) => member))});`,
    `export const { ${members.map(([name, member]) => `${member}: ${name}`).join(', ')} } = served;`,
    '',
  ].join('\n');
}

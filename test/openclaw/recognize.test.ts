// Recognition of the runtime's lock modules by content: the family marker,
// then the sha256 of a known build; unknown builds are refused, never served.
import { describe, expect, it } from 'vitest';
import { bindRuntimeModule, IMPLEMENTATIONS } from '../../src/openclaw/implementations.js';
import { KNOWN_BUILDS, type KnownBuild, knownRuntimes, MODULE_FAMILIES } from '../../src/openclaw/known-modules.js';
import { recognize, sourceHash } from '../../src/openclaw/recognize.js';
import { namedImports } from '../../src/openclaw/replacement.js';
import { createSessionWriteLockModule } from '../../src/session/module.js';

const LIBRARY = 'file:///opt/kernel-lock/dist/openclaw.js';

/** A chunk shaped like the runtime's (rolldown output): imports, region marker, minified exports. */
const chunk = (body = 'function acquire() {}') =>
  [
    'import { n as isPidAlive, t as getProcessStartTime } from "./pid-alive-AAAA.js";',
    'import { t as SessionWriteLockTimeoutError } from "./session-write-lock-error-BBBB.js";',
    'import fs from "node:fs";',
    '//#region src/agents/session-write-lock.ts',
    body,
    '//#endregion',
    'export { acquire as n, other as t };',
    '',
  ].join('\n');

const buildOf = (source: string, overrides: Partial<KnownBuild> = {}): KnownBuild => ({
  runtime: 'openclaw@0.0.0-test',
  module: 'src/agents/session-write-lock.ts',
  sha256: sourceHash(source),
  implementation: 'session-write-lock@2026.4.24',
  exports: { n: 'acquireSessionWriteLock', t: '__testing' },
  runtimeImports: ['SessionWriteLockTimeoutError'],
  ...overrides,
});

describe('recognize', () => {
  it('ignores modules without a family marker, including the error module next to the lock module', () => {
    expect(recognize('export const x = 1;\n', { libraryUrl: LIBRARY })).toEqual({ kind: 'none' });
    const errorModule = '//#region src/agents/session-write-lock-error.ts\nclass E extends Error {}\n//#endregion\n';
    expect(recognize(errorModule, { libraryUrl: LIBRARY })).toEqual({ kind: 'none' });
    // The marker must be the region line itself, not a mention of the module name.
    expect(recognize('// see src/agents/session-write-lock.ts\n', { libraryUrl: LIBRARY })).toEqual({ kind: 'none' });
  });

  it('serves a known build: keeps its import of the runtime error class, exports under the minified names', () => {
    const source = chunk();
    const build = buildOf(source);
    const decision = recognize(source, { libraryUrl: LIBRARY, builds: [build] });
    expect(decision.kind).toBe('serve');
    if (decision.kind !== 'serve') return;
    expect(decision.build).toBe(build);
    const lines = decision.source.split('\n');
    expect(lines).toContain('import { t as SessionWriteLockTimeoutError } from "./session-write-lock-error-BBBB.js";');
    expect(lines).toContain(`import { bindRuntimeModule } from "${LIBRARY}";`);
    expect(lines).toContain('export const { acquireSessionWriteLock: n, __testing: t } = served;');
    // None of the original's code or other imports is kept.
    expect(decision.source).not.toContain('pid-alive');
    expect(decision.source).not.toContain('function acquire');
  });

  it('bytes and text give the same decision (the hook sees Buffers)', () => {
    const source = chunk();
    const build = buildOf(source);
    const fromText = recognize(source, { libraryUrl: LIBRARY, builds: [build] });
    const fromBytes = recognize(new TextEncoder().encode(source), { libraryUrl: LIBRARY, builds: [build] });
    expect(fromBytes).toEqual(fromText);
  });

  it('refuses a build it does not know, even one byte away from a known one', () => {
    const known = chunk();
    const changed = chunk('function acquire() { }');
    const decision = recognize(changed, { libraryUrl: LIBRARY, builds: [buildOf(known)] });
    expect(decision).toMatchObject({
      kind: 'refuse',
      module: 'src/agents/session-write-lock.ts',
      sha256: sourceHash(changed),
    });
    if (decision.kind !== 'refuse') return;
    expect(decision.reason).toContain(sourceHash(changed).slice(0, 16));
    expect(decision.reason).toContain('openclaw@0.0.0-test');
  });

  it('refuses a known hash whose source lacks an import the implementation needs', () => {
    const source = chunk().replace(/^import \{ t as SessionWriteLockTimeoutError.*\n/m, '');
    const decision = recognize(source, { libraryUrl: LIBRARY, builds: [buildOf(source)] });
    expect(decision).toMatchObject({ kind: 'refuse' });
    if (decision.kind === 'refuse')
      expect(decision.reason).toBe('the module does not import SessionWriteLockTimeoutError');
  });
});

describe('namedImports', () => {
  it('reads `import { a as b, c } from "x"` lines and nothing else', () => {
    const source = [
      'import { n as isPidAlive, t as getProcessStartTime } from "./pid-alive.js";',
      "import { plain } from './plain.js';",
      'import fs from "node:fs";',
      'import * as ns from "./ns.js";',
      'const s = "import { fake } from \'nope\'";',
    ].join('\n');
    expect(namedImports(source)).toEqual([
      { imported: 'n', local: 'isPidAlive', specifier: './pid-alive.js' },
      { imported: 't', local: 'getProcessStartTime', specifier: './pid-alive.js' },
      { imported: 'plain', local: 'plain', specifier: './plain.js' },
    ]);
  });
});

describe('the table of known builds', () => {
  it('lists the runtime releases it knows', () => {
    expect(knownRuntimes()).toEqual(['openclaw@2026.4.24', 'openclaw@2026.9.6']);
  });

  it('every build names a family, an implementation, and members that implementation has', () => {
    class RuntimeError extends Error {}
    for (const build of KNOWN_BUILDS) {
      expect(MODULE_FAMILIES.map((f) => f.module)).toContain(build.module);
      expect(build.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(Object.keys(IMPLEMENTATIONS)).toContain(build.implementation);
      const runtime = Object.fromEntries(build.runtimeImports.map((name) => [name, RuntimeError]));
      const bound = bindRuntimeModule(build.implementation, runtime, Object.values(build.exports));
      for (const member of Object.values(build.exports)) expect(bound).toHaveProperty(member);
    }
  });

  it('openclaw 2026.4.24: the six exports of its session-write-lock chunk', () => {
    const build = KNOWN_BUILDS.find((b) => b.runtime === 'openclaw@2026.4.24');
    expect(Object.values(build!.exports).sort()).toEqual(Object.keys(createSessionWriteLockModule()).sort());
  });

  it('bindRuntimeModule refuses what it cannot serve, with the reason', () => {
    expect(() => bindRuntimeModule('nope@1', {}, [])).toThrow(/no implementation named "nope@1"/);
    expect(() => bindRuntimeModule('session-write-lock@2026.4.24', {}, [])).toThrow(
      /the runtime's SessionWriteLockTimeoutError is not a class/,
    );
    expect(() =>
      bindRuntimeModule('session-write-lock@2026.4.24', { SessionWriteLockTimeoutError: Error }, ['fencingToken']),
    ).toThrow(/lacks fencingToken/);
  });
});

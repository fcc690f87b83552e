// Which native binary this run tests. The normal run must use the regular
// build; the sanitizer run (.ci/extra sets KERNEL_LOCK_PREBUILD to
// build-asan/ and preloads libasan) must really be running the ASan+UBSan
// build, or its green result would mean nothing.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import '../../src/index.js'; // loads the addon
import { root } from '../helpers.js';

const maps = (): string => readFileSync('/proc/self/maps', 'utf8');

describe('native build under test', () => {
  const asanDir = process.env.KERNEL_LOCK_PREBUILD;
  if (asanDir) {
    it('the sanitizer run loads the ASan+UBSan addon from build-asan with libasan and libubsan mapped', () => {
      const mapped = maps();
      expect(mapped).toContain(path.join(asanDir, 'build', 'Release', 'kernel_lock.node'));
      expect(mapped).toMatch(/libasan\.so/);
      expect(mapped).toMatch(/libubsan\.so/);
      expect(mapped).not.toContain(path.join(root, 'build', 'Release', 'kernel_lock.node'));
    });
  } else {
    it('the normal run loads the regular addon, without sanitizers', () => {
      const mapped = maps();
      expect(mapped).toMatch(/kernel[-_]lock[^\n]*\.node/);
      expect(mapped).not.toMatch(/libasan\.so/);
    });
  }
});

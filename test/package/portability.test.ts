// macOS and the BSDs build kernel-lock from source. They have flock(2) and
// POSIX fcntl(2) locks but neither OFD locks nor real-time signals, and no
// raw syscall() numbers: the native code keeps those behind #if. This compiles
// it with the Linux-only definitions hidden, so a Linux-only call that slips
// outside its #if fails here rather than on a user's Mac.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from '../helpers.js';

describe('native sources on a Unix without Linux extensions', () => {
  it('compile without __linux__, F_OFD_* and SIGRTMIN/SIGRTMAX', () => {
    const result = spawnSync(process.execPath, [path.join(root, 'scripts', 'check-native-portability.mjs')], {
      encoding: 'utf8',
    });
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^portable: \d+ native sources compile/m);
  });
});

#!/usr/bin/env node
// Compiles native/*.cc (syntax and types only) as a non-Linux Unix would see
// it: no __linux__, no OFD locks (F_OFD_*), no real-time signals (SIGRTMIN /
// SIGRTMAX). macOS and the BSDs lack all three, so this catches a Linux-only
// construct that slipped outside its #if before a macOS user does. It is not a
// macOS build (no macOS SDK here): libc headers are still glibc's or musl's.
//
// Usage: node scripts/check-native-portability.mjs   (exit 0 when it compiles)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeHeaders } from './lib/node-headers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

// Header shims found before the system's: include the real header, then take
// away what a non-Linux system does not define.
const shims = {
  'fcntl.h': '#include_next <fcntl.h>\n#undef F_OFD_SETLK\n#undef F_OFD_SETLKW\n#undef F_OFD_GETLK\n',
  'signal.h': '#include_next <signal.h>\n#undef SIGRTMIN\n#undef SIGRTMAX\n',
};

// Proves the shims took effect; if they did not, the check would prove nothing.
const probe = `#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#if defined(__linux__) || defined(F_OFD_SETLK) || defined(SIGRTMIN)
#error "portability shims did not hide the Linux-only definitions"
#endif
int main() { return LOCK_EX + F_SETLK; }
`;

function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kernel-lock-portability-'));
  try {
    for (const [name, text] of Object.entries(shims)) fs.writeFileSync(path.join(work, name), text);
    fs.writeFileSync(path.join(work, 'probe.cc'), probe);
    const compiler = process.env.CXX || 'c++';
    const flags = [
      '-std=c++17',
      '-fsyntax-only',
      '-Wall',
      '-Wextra',
      '-Werror',
      '-U__linux__',
      '-U__linux',
      '-U__gnu_linux__',
      '-Ulinux',
      `-I${work}`,
      `-I${require('node-addon-api').include_dir}`,
      `-I${nodeHeaders()}`,
      '-DNAPI_VERSION=8',
      '-DNAPI_DISABLE_CPP_EXCEPTIONS',
      '-DNODE_ADDON_API_DISABLE_DEPRECATED',
    ];
    const sources = [
      path.join(work, 'probe.cc'),
      ...fs
        .readdirSync(path.join(root, 'native'))
        .filter((name) => name.endsWith('.cc'))
        .map((name) => path.join(root, 'native', name)),
    ];
    let failed = 0;
    for (const source of sources) {
      const result = spawnSync(compiler, [...flags, source], { stdio: 'inherit' });
      if (result.status !== 0) {
        failed++;
        console.error(
          `not portable: ${path.relative(root, source)} (${compiler} exit ${result.status ?? result.error})`,
        );
      }
    }
    if (failed > 0) throw new Error(`${failed} of ${sources.length} files fail to compile without Linux-only APIs`);
    console.log(`portable: ${sources.length - 1} native sources compile without __linux__, F_OFD_* and SIGRTMIN`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

try {
  main();
} catch (error) {
  console.error(`scripts/check-native-portability.mjs: ${error.message}`);
  process.exitCode = 1;
}

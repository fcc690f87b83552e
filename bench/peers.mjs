// Peers of the bench that compile native code when installed (fs-ext,
// os-lock) live in bench/peers/ with their own lockfile, and are installed
// by the bench on first use, never by the project's `npm install`: a peer
// whose build breaks (no compiler, no Node headers, a Node release it does
// not support yet) can then cost a bench run, not a contributor's set-up.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const peersDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'peers');
const manifest = JSON.parse(fs.readFileSync(path.join(peersDir, 'package.json'), 'utf8'));

/** Names of the packages installed in bench/peers/. */
export const peers = Object.keys(manifest.dependencies);

/** `require` for bench/peers/'s packages. */
export const requirePeer = createRequire(path.join(peersDir, 'package.json'));

/** Installed version of a peer, or null. */
export function peerVersion(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(peersDir, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

function loadable(name) {
  try {
    requirePeer(name);
    return true;
  } catch {
    return false;
  }
}

/** Installs (and compiles) bench/peers/ unless every peer already loads; throws naming the fix when it cannot. */
export function ensurePeers(log = () => {}) {
  if (peers.every(loadable)) return;
  log(`installing the bench's native peers (${peers.join(', ')}) into bench/peers/ …`);
  const lockfile = fs.existsSync(path.join(peersDir, 'package-lock.json'));
  const result = spawnSync('npm', [lockfile ? 'ci' : 'install', '--no-audit', '--no-fund', '--foreground-scripts'], {
    cwd: peersDir,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const broken = peers.filter((name) => !loadable(name));
  if (result.status !== 0 || broken.length > 0) {
    throw new Error(
      `the bench's peers ${broken.join(', ') || peers.join(', ')} could not be installed in bench/peers/ ` +
        `(npm exit ${result.status ?? result.signal}). They compile native code: they need python3, make, ` +
        'a C++ compiler and Node headers (set npm_config_nodedir=<prefix with include/node>, e.g. /usr, to build offline). ' +
        'Or leave them out: npm run bench -- --only=<ids without fs-ext-*, os-lock>.',
    );
  }
}

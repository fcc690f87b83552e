#!/usr/bin/env node
// The package's `install` script: node-gyp-build, which keeps a prebuilt
// binary that loads and otherwise builds from native/ with node-gyp. Before
// handing over, it points node-gyp at the C headers of the very Node that
// runs it when they are installed next to it (<prefix>/include/node, as the
// official tarballs, nvm, NodeSource and Debian's libnode-dev install them)
// and match its version. node-gyp would otherwise download them from
// nodejs.org, which an offline machine, a firewalled CI or a registry-only
// mirror cannot do. An explicit npm_config_nodedir (or `npm config set
// nodedir`) always wins. See docs/INSTALL.md ("Offline builds: nodedir").
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** The version <prefix>/include/node/node_version.h declares, or null. */
function headerVersion(prefix) {
  try {
    const text = readFileSync(path.join(prefix, 'include', 'node', 'node_version.h'), 'utf8');
    const part = (name) => new RegExp(`#define NODE_${name}_VERSION (\\d+)`).exec(text)?.[1];
    return `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`;
  } catch {
    return null;
  }
}

if (!process.env.npm_config_nodedir) {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (
    existsSync(path.join(prefix, 'include', 'node', 'common.gypi')) &&
    headerVersion(prefix) === process.versions.node
  ) {
    process.env.npm_config_nodedir = prefix;
  }
}

// node-gyp-build's own command line: test the prebuild, else build.
createRequire(import.meta.url)('node-gyp-build/bin.js');

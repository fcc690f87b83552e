// Where Node's C headers (node_api.h) are on this machine, without a download:
// npm_config_nodedir when set, else next to the running Node (official builds
// and distribution packages install them under <prefix>/include/node), else
// node-gyp's download cache.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The directory holding node_api.h; throws naming every place looked in. */
export function nodeHeaders() {
  const candidates = [
    process.env.npm_config_nodedir && path.join(process.env.npm_config_nodedir, 'include', 'node'),
    path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
    path.join(os.homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node'),
  ];
  const found = candidates.find((dir) => dir && fs.existsSync(path.join(dir, 'node_api.h')));
  if (!found) throw new Error(`Node's headers (node_api.h) not found in ${candidates.filter(Boolean).join(', ')}`);
  return found;
}

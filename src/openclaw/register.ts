// kernel-lock/openclaw/register: run the agent runtime on kernel-lock without
// forking it.
//
//   node --import kernel-lock/openclaw/register "$(command -v openclaw)" agent …
//   NODE_OPTIONS=--import=kernel-lock/openclaw/register openclaw agent …
//
// Installs the module loader hook (hooks.ts): the runtime's lock modules, in
// the builds kernel-lock knows (known-modules.ts), are served by kernel-lock;
// any other build is left alone with one line on stderr. The runtime's
// self-respawn keeps the hook: it passes on its Node options, and this file
// pins itself in NODE_OPTIONS by absolute URL for children started elsewhere.
import module from 'node:module';
import { loadSync } from './hooks.js';
import { pinSelf } from './node-options.js';

type RegisterHooks = (hooks: { load: typeof loadSync }) => unknown;
const { registerHooks, register } = module as unknown as {
  registerHooks?: RegisterHooks;
  register?: typeof module.register;
};

if (process.env.NODE_OPTIONS)
  process.env.NODE_OPTIONS = pinSelf(process.env.NODE_OPTIONS, import.meta.url, process.cwd());

if (typeof registerHooks === 'function') {
  registerHooks({ load: loadSync });
} else if (typeof register === 'function') {
  register(new URL('./hooks.js', import.meta.url));
} else {
  process.stderr.write(
    `kernel-lock/openclaw: Node ${process.version} cannot hook module loading (module.register needs Node 20.6 or later); the runtime keeps its own locks.\n`,
  );
}

// Exploration only (NOT the supported hook, which is kernel-lock/openclaw/register):
// serves `@openclaw/fs-safe/file-lock` from kernel-lock/fs-safe when imported
// from inside an openclaw install, so the explore script can measure the same
// runtime commands on both backends. FS_SAFE_KERNEL_LOCK_DIST names the
// kernel-lock dist/fs-safe.js to serve.
import { register } from 'node:module';

register(
  `data:text/javascript,${encodeURIComponent(`
const target = ${JSON.stringify(process.env.FS_SAFE_KERNEL_LOCK_DIST)};
export async function resolve(specifier, context, next) {
  if (specifier === '@openclaw/fs-safe/file-lock' && context.parentURL && context.parentURL.includes('/openclaw/dist/')) {
    return { url: 'file://' + target, shortCircuit: true };
  }
  return next(specifier, context);
}`)}`,
);

// `NODE_OPTIONS=--import=kernel-lock/openclaw/register` names the hook by a
// bare specifier, which Node resolves from each process's working directory.
// The runtime starts child Node processes elsewhere (npm installing plugin
// dependencies in a staging directory, for one), where that name does not
// resolve and the child would die before running. So the hook rewrites its
// own entry in NODE_OPTIONS to its absolute file URL: children inherit a
// name that resolves anywhere. Nothing else in NODE_OPTIONS changes.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The specifier users write. */
export const REGISTER_SPECIFIER = 'kernel-lock/openclaw/register';

interface Token {
  value: string;
  start: number;
  end: number;
}

/** NODE_OPTIONS split as Node splits it: on whitespace, with double quotes and backslash escapes inside them. */
export function tokenize(options: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < options.length) {
    while (i < options.length && /\s/.test(options[i]!)) i++;
    if (i >= options.length) break;
    const start = i;
    let value = '';
    let quoted = false;
    while (i < options.length && (quoted || !/\s/.test(options[i]!))) {
      const c = options[i]!;
      if (c === '"') quoted = !quoted;
      else if (c === '\\' && quoted && i + 1 < options.length) value += options[++i];
      else value += c;
      i++;
    }
    tokens.push({ value, start, end: i });
  }
  return tokens;
}

function namesSelf(specifier: string, selfPath: string, cwd: string): boolean {
  if (specifier === REGISTER_SPECIFIER || specifier === `${REGISTER_SPECIFIER}.js`) return true;
  if (!specifier.startsWith('./') && !specifier.startsWith('../')) return false;
  return path.resolve(cwd, specifier) === selfPath;
}

/**
 * NODE_OPTIONS with every `--import` of this hook by a bare or relative name
 * replaced by `--import=<selfUrl>`; returned unchanged when there is none.
 */
export function pinSelf(options: string, selfUrl: string, cwd: string): string {
  const selfPath = fileURLToPath(selfUrl);
  const tokens = tokenize(options);
  const edits: Array<{ start: number; end: number }> = [];
  tokens.forEach((token, index) => {
    if (token.value.startsWith('--import=')) {
      if (namesSelf(token.value.slice('--import='.length), selfPath, cwd)) edits.push(token);
    } else if (token.value === '--import' && index + 1 < tokens.length) {
      const next = tokens[index + 1]!;
      if (namesSelf(next.value, selfPath, cwd)) edits.push({ start: token.start, end: next.end });
    }
  });
  let out = options;
  for (const edit of edits.reverse()) out = `${out.slice(0, edit.start)}--import=${selfUrl}${out.slice(edit.end)}`;
  return out;
}

// The hook pins itself in NODE_OPTIONS by absolute URL, so child processes
// the runtime starts in other directories still find it.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { pinSelf, tokenize } from '../../src/openclaw/node-options.js';

const self = '/opt/app/node_modules/kernel-lock/dist/openclaw/register.js';
const selfUrl = pathToFileURL(self).href;
const cwd = '/opt/app';

describe('pinSelf', () => {
  it.each([
    ['--import=kernel-lock/openclaw/register', `--import=${selfUrl}`],
    ['--import kernel-lock/openclaw/register', `--import=${selfUrl}`],
    ['--import="kernel-lock/openclaw/register"', `--import=${selfUrl}`],
    [
      '--max-old-space-size=4096  --import=kernel-lock/openclaw/register --no-warnings',
      `--max-old-space-size=4096  --import=${selfUrl} --no-warnings`,
    ],
    [`--import=./node_modules/kernel-lock/dist/openclaw/register.js`, `--import=${selfUrl}`],
  ])('%s', (options, expected) => {
    expect(pinSelf(options, selfUrl, cwd)).toBe(expected);
  });

  it('leaves everything else alone', () => {
    for (const options of [
      '--import=tsx',
      `--import=${selfUrl}`,
      '--require ./kernel-lock/openclaw/register',
      '--import=./other/register.js',
      '--title "a b" --import=other',
    ]) {
      expect(pinSelf(options, selfUrl, cwd)).toBe(options);
    }
    expect(pinSelf('--import=./register.js', selfUrl, path.dirname(self))).toBe(`--import=${selfUrl}`);
  });
});

describe('tokenize', () => {
  it('splits like Node: whitespace, double quotes, backslash escapes inside quotes', () => {
    expect(tokenize(' --a  "--b c" --d="e \\" f"\t--g ').map((t) => t.value)).toEqual([
      '--a',
      '--b c',
      '--d=e " f',
      '--g',
    ]);
  });
});
